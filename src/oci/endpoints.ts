/**
 * @module The spec's endpoints (end-1 … end-13) read from a raw request path, once. What this
 * returns is the one name and reference that are authorised, routed, served and logged: nothing
 * downstream decodes or normalises a path again.
 *
 * A repository name is taken as it is sent. Its grammar has no `%`, so a percent-encoded name
 * (`public/secret%2fx`, `public/%70`) is refused rather than decoded into another name; so are the
 * route's own words (`%6danifests`), which a router that decodes would route differently. Only the
 * last segment of a manifest, blob, upload or referrers path is decoded (clients may send
 * `sha256%3A…`), and it names one object inside the repository already decided.
 */
import { RegistryError } from './errors.js'
import { parseName } from './names.js'

export type Endpoint =
  | { kind: 'base' }
  | { kind: 'catalog' }
  /** `reference` is decoded but unchecked: the route decides which error a bad one gets. */
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  /** `session` is '' for the POST that starts an upload. */
  | { kind: 'upload'; name: string; session: string; mount?: string; from?: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string }
  /** Not an endpoint of the spec (under /v2/ or elsewhere): routing answers it. */
  | { kind: 'other' }

export type RepositoryEndpoint = Extract<Endpoint, { name: string }>

/** `.`/`..` segments, raw or percent-encoded in any case, and backslashes: a URL parser would rewrite them. */
const REWRITTEN = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)|\\/i

/**
 * The endpoint of a raw request path (no query) and its query string. Throws NAME_INVALID for a
 * name outside the grammar, a percent-encoded name or route word, and any path a URL parser would
 * rewrite into another one.
 */
export function parseEndpoint(path: string, query = ''): Endpoint {
  if (REWRITTEN.test(path)) throw rewritten(path)
  if (path !== '/v2' && !path.startsWith('/v2/')) return { kind: 'other' }
  const segments = path.slice(4).split('/')
  if (path === '/v2' || path === '/v2/') return { kind: 'base' }
  if (path === '/v2/_catalog') return { kind: 'catalog' }
  const n = segments.length
  const at = (i: number) => segments[n - i]
  let endpoint: { kind: RepositoryEndpoint['kind']; words: number; last?: string }
  if (n >= 4 && at(3) === 'blobs' && at(2) === 'uploads') endpoint = { kind: 'upload', words: 3, last: at(1) }
  else if (n >= 3 && at(2) === 'blobs') endpoint = { kind: 'blob', words: 2, last: at(1) }
  else if (n >= 3 && at(2) === 'manifests') endpoint = { kind: 'manifest', words: 2, last: at(1) }
  else if (n >= 3 && at(2) === 'referrers') endpoint = { kind: 'referrers', words: 2, last: at(1) }
  else if (n >= 3 && at(2) === 'tags' && at(1) === 'list') endpoint = { kind: 'tags', words: 2 }
  else {
    if (path.includes('%')) throw encoded(path)
    return { kind: 'other' }
  }
  const head = segments.slice(0, n - endpoint.words).join('/')
  if (head.includes('%')) throw encoded(path)
  const name = parseName(head)
  const last = decodeSegment(endpoint.last ?? '', path)
  switch (endpoint.kind) {
    case 'manifest': return { kind: 'manifest', name, reference: last }
    case 'blob': return { kind: 'blob', name, digest: last }
    case 'referrers': return { kind: 'referrers', name, digest: last }
    case 'tags': return { kind: 'tags', name }
    case 'upload': {
      const params = new URLSearchParams(query)
      const from = params.get('from') ?? undefined
      return {
        kind: 'upload', name, session: last,
        ...(params.has('mount') ? { mount: params.get('mount')! } : {}),
        // A mount's source is authorised too (pull), so it is parsed here, once, like the name.
        ...(from !== undefined ? { from: parseName(from) } : {}),
      }
    }
  }
}

function decodeSegment(segment: string, path: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw encoded(path)
  }
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s
}

function rewritten(path: string): RegistryError {
  return new RegistryError('NAME_INVALID', `the path "${clip(path)}" has a "." or ".." segment or a backslash: it is refused, never normalised into another name`, { path: clip(path) })
}

function encoded(path: string): RegistryError {
  return new RegistryError('NAME_INVALID', `the path "${clip(path)}" percent-encodes a repository name or a route word: names are sent as they are ([a-z0-9._-] and "/"), never encoded`, { path: clip(path) })
}
