/**
 * @module The client side of the distribution API, against one upstream registry: what a pull
 * needs (manifests, blobs, referrers), the Docker token dance against the realm the upstream names
 * (Basic credentials where configured, anonymous otherwise), `Basic` where that is what it asks,
 * redirects (blob bytes often come from a CDN, without our Authorization), and one timeout that
 * covers connecting, the head and every pause of the body. Bodies stay streams.
 */
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { metrics } from '../observe/metrics.js'
import type { Digest } from '../oci/digest.js'

export interface UpstreamSettings {
  /** For metrics and messages (the prefix, or the host). */
  name: string
  /** Base URL: `https://registry-1.docker.io`. */
  url: string
  username?: string
  password?: string
  /** Longest wait for the upstream to connect, answer, or send the next bytes of a body. */
  timeoutMs: number
}

/** unreachable, timeout, ratelimited (429), denied (401/403 after authenticating), server (5xx, garbage). */
export type UpstreamFailure = 'unreachable' | 'timeout' | 'ratelimited' | 'denied' | 'server'

export class UpstreamError extends Error {
  constructor(readonly kind: UpstreamFailure, message: string, readonly retryAfter?: string) {
    super(message)
    this.name = 'UpstreamError'
  }
}

export interface UpstreamManifest {
  /** The upstream's Docker-Content-Digest, when it sent one. */
  digest?: string
  mediaType?: string
  /** GET only. */
  bytes?: Buffer
}

export interface UpstreamBlob {
  /** Content-Length; undefined when the upstream streams without one. */
  size?: number
  body: IncomingMessage
}

export interface UpstreamClient {
  readonly name: string
  /** undefined: the upstream has no such manifest (404). */
  manifest(repo: string, reference: string, method: 'GET' | 'HEAD', maxBytes: number): Promise<UpstreamManifest | undefined>
  blob(repo: string, digest: Digest): Promise<UpstreamBlob | undefined>
  /** HEAD: the size, or undefined when the upstream's repository has no such blob. */
  blobSize(repo: string, digest: Digest): Promise<number | undefined>
  /** The referrers index JSON; undefined when the upstream has no referrers API (404). */
  referrers(repo: string, digest: Digest, artifactType: string | undefined, maxBytes: number): Promise<Buffer | undefined>
}

/** What enlil can store and serve, best first: an index stays an index. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.artifact.manifest.v1+json',
].join(', ')

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 64 }), https: new https.Agent({ keepAlive: true, maxSockets: 64 }) }

/** `Bearer realm="…",service="…"` → scheme and parameters. */
export function parseChallenge(header: string | undefined): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header)
  if (!m) return undefined
  const params: Record<string, string> = {}
  for (const p of m[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = p[2] ?? p[3] ?? ''
  return { scheme: m[1]!.toLowerCase(), params }
}

export function createUpstreamClient(settings: UpstreamSettings): UpstreamClient {
  const base = settings.url.replace(/\/+$/, '')
  const basic = settings.username !== undefined ? `Basic ${Buffer.from(`${settings.username}:${settings.password ?? ''}`).toString('base64')}` : undefined
  /** scope → Authorization header, and when it stops being good. */
  const tokens = new Map<string, { header: string; until: number }>()
  /** The upstream asked for Basic once: every request sends it from then on (no 401 round trip each). */
  let basicAsked = false
  const count = (kind: string) => metrics.mirrorUpstreamRequests.inc([settings.name, kind])
  const fail = (kind: UpstreamFailure, message: string, retryAfter?: string): UpstreamError => {
    metrics.mirrorUpstreamErrors.inc([settings.name, kind])
    return new UpstreamError(kind, `upstream ${settings.name}: ${message}`, retryAfter)
  }

  function send(url: URL, method: string, headers: Record<string, string>): Promise<IncomingMessage> {
    const lib = url.protocol === 'https:' ? https : http
    return new Promise((ok, reject) => {
      const req = lib.request(url, { method, headers: { 'User-Agent': 'enlil-mirror', ...headers }, agent: url.protocol === 'https:' ? agents.https : agents.http }, (res) => {
        // From here on the same timer watches the body's pauses.
        res.on('error', () => {})
        ok(res)
      })
      req.setTimeout(settings.timeoutMs, () => req.destroy(fail('timeout', `no answer from ${url.host} within ${Math.round(settings.timeoutMs / 1000)} s`)))
      req.on('error', (err) => reject(err instanceof UpstreamError ? err : fail('unreachable', `${url.host}: ${err.message}`)))
      req.end()
    })
  }

  /** Follows redirects; our credentials go only to the upstream's own origin. */
  async function follow(url: URL, method: string, headers: Record<string, string>): Promise<IncomingMessage> {
    for (let hops = 0; hops < 6; hops++) {
      const res = await send(url, method, url.origin === new URL(base).origin ? headers : withoutAuth(headers))
      const location = res.headers.location
      if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location) return res
      res.resume()
      url = new URL(location, url)
    }
    throw fail('server', `too many redirects from ${url.host}`)
  }

  async function authorize(challenge: string | undefined, scope: string): Promise<string | undefined> {
    const parsed = parseChallenge(challenge)
    if (parsed?.scheme === 'basic') {
      basicAsked = basic !== undefined
      return basic
    }
    if (parsed?.scheme !== 'bearer' || !parsed.params.realm) return undefined
    let realm: URL
    try {
      realm = new URL(parsed.params.realm)
    } catch {
      throw fail('server', `its challenge names an invalid realm "${parsed.params.realm.slice(0, 100)}"`)
    }
    if (parsed.params.service) realm.searchParams.set('service', parsed.params.service)
    realm.searchParams.set('scope', scope)
    count('token')
    const res = await follow(realm, 'GET', basic ? { Authorization: basic } : {})
    const body = await readAll(res, 1024 * 1024).catch(() => Buffer.alloc(0))
    if (res.statusCode === 429) throw fail('ratelimited', 'its token service is rate-limiting', header(res, 'retry-after'))
    if (res.statusCode === 401 || res.statusCode === 403) throw fail('denied', `its token service refused ${basic ? `the credentials of ${settings.username}` : 'an anonymous token'} (${res.statusCode})`)
    if (res.statusCode !== 200) throw fail('server', `its token service answered ${res.statusCode}`)
    let token: string | undefined
    let expiresIn = 60
    try {
      const json = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown; expires_in?: unknown }
      token = typeof json.token === 'string' ? json.token : typeof json.access_token === 'string' ? json.access_token : undefined
      if (typeof json.expires_in === 'number' && json.expires_in > 0) expiresIn = json.expires_in
    } catch {
      // handled below
    }
    if (!token) throw fail('server', 'its token service answered without a token')
    const authorization = `Bearer ${token}`
    tokens.set(scope, { header: authorization, until: Date.now() + Math.max(5, expiresIn - 10) * 1000 })
    if (tokens.size > 10_000) tokens.delete(tokens.keys().next().value!)
    return authorization
  }

  /** A request on `/v2/<repo>/<path>`, authenticating once when challenged. */
  async function request(kind: string, method: string, repo: string, path: string, accept?: string): Promise<IncomingMessage> {
    const scope = `repository:${repo}:pull`
    const cached = tokens.get(scope)
    let auth = basicAsked ? basic : cached && cached.until > Date.now() ? cached.header : undefined
    const url = new URL(`${base}/v2/${repo}/${path}`)
    for (let attempt = 0; ; attempt++) {
      count(kind)
      const res = await follow(url, method, { ...(accept ? { Accept: accept } : {}), ...(auth ? { Authorization: auth } : {}) })
      if (res.statusCode !== 401 || attempt > 0) return check(res)
      res.resume()
      auth = await authorize(header(res, 'www-authenticate'), scope)
      if (!auth) throw fail('denied', `it asks for authentication enlil can't give (${(header(res, 'www-authenticate') ?? 'no challenge').slice(0, 80)})`)
    }
  }

  /** Refuses what is not a 2xx or a 404 (404s are answered by the caller). */
  function check(res: IncomingMessage): IncomingMessage {
    const status = res.statusCode ?? 0
    if ((status >= 200 && status < 300) || status === 404) return res
    res.resume()
    if (status === 429) throw fail('ratelimited', 'rate limit reached (429)', header(res, 'retry-after'))
    if (status === 401 || status === 403) throw fail('denied', `access refused (${status})`)
    throw fail('server', `answered ${status}`)
  }

  return {
    name: settings.name,

    async manifest(repo, reference, method, maxBytes) {
      const res = await request('manifest', method, repo, `manifests/${reference}`, MANIFEST_ACCEPT)
      if (res.statusCode === 404) {
        res.resume()
        return undefined
      }
      const out: UpstreamManifest = { digest: header(res, 'docker-content-digest'), mediaType: header(res, 'content-type')?.split(';')[0]?.trim() }
      if (method === 'HEAD') {
        res.resume()
        return out
      }
      try {
        out.bytes = await readAll(res, maxBytes)
      } catch (err) {
        throw err instanceof UpstreamError ? err : fail('server', `manifest ${repo}:${reference}: ${(err as Error).message}`)
      }
      metrics.mirrorUpstreamBytes.inc([settings.name], out.bytes.length)
      return out
    },

    async blob(repo, digest) {
      const res = await request('blob', 'GET', repo, `blobs/${digest.value}`)
      if (res.statusCode === 404) {
        res.resume()
        return undefined
      }
      const length = header(res, 'content-length')
      return { size: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined, body: res }
    },

    async blobSize(repo, digest) {
      const res = await request('blob-head', 'HEAD', repo, `blobs/${digest.value}`)
      res.resume()
      if (res.statusCode === 404) return undefined
      const length = header(res, 'content-length')
      return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined
    },

    async referrers(repo, digest, artifactType, maxBytes) {
      const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''
      const res = await request('referrers', 'GET', repo, `referrers/${digest.value}${query}`)
      if (res.statusCode === 404) {
        res.resume()
        return undefined
      }
      return readAll(res, maxBytes).catch((err: unknown) => { throw fail('server', `referrers: ${(err as Error).message}`) })
    },
  }

  function readAll(res: IncomingMessage, max: number): Promise<Buffer> {
    return new Promise((ok, reject) => {
      const chunks: Buffer[] = []
      let total = 0
      res.on('data', (chunk: Buffer) => {
        total += chunk.length
        if (total > max) res.destroy(fail('server', `sent more than ${max} bytes where a manifest was expected`))
        else chunks.push(chunk)
      })
      res.on('end', () => ok(Buffer.concat(chunks, total)))
      res.on('error', reject)
      res.on('aborted', () => reject(fail('unreachable', 'the connection broke off')))
    })
  }
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function withoutAuth(headers: Record<string, string>): Record<string, string> {
  const { Authorization: _, ...rest } = headers
  return rest
}
