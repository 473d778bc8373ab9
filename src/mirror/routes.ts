/**
 * @module Which upstream answers for a repository name, under which name there, and under which
 * name its copy is stored here.
 *
 * - `hub/alpine` with an upstream of prefix `hub`: `library/alpine` upstream when it is Docker Hub
 *   (single names are its official images), stored as `hub/library/alpine`.
 * - The upstream marked `registrymirror` also answers names outside every prefix that no local
 *   repository has (docker's `registry-mirrors` asks `/v2/library/busybox/…`), stored under its
 *   prefix: a pushed repository of that name always wins.
 * - An upstream without prefix (distribution's `proxy.remoteurl`) is the whole registry, as in
 *   distribution's proxy mode: every name is mirrored, stored as it is named, and nothing is pushed.
 */
import { isName } from '../oci/names.js'
import type { UpstreamClient } from './upstream.js'

export interface MirrorUpstream {
  /** '' for the whole registry (proxy mode). */
  prefix: string
  client: UpstreamClient
  /** How long a tag's digest is believed before the upstream is asked again. */
  ttlMs: number
  /** Longest pause of the upstream before it counts as down (a live transfer is never paused longer). */
  timeoutMs: number
  registryMirror: boolean
  /** Single names get `library/`. */
  library: boolean
}

export interface Route {
  upstream: MirrorUpstream
  /** The name at the upstream. */
  remote: string
  /** The name of the copy in this registry's store. */
  store: string
  /**
   * Routed by docker's registry-mirrors path: a name outside every prefix that no local repository
   * has yet. A blob HEAD there is how docker starts a push of a new repository, so it is answered
   * from the store alone (mirror/registry.ts): pulls GET their blobs.
   */
  fallback: boolean
}

export interface Router {
  /** undefined: a local repository, served as pushed. */
  resolve(name: string): Promise<Route | undefined>
  /** The upstream whose prefix holds this name: pushes there are refused. */
  mirroredBy(name: string): MirrorUpstream | undefined
  /** Whether a stored repository is a mirror's copy (eviction may drop it). */
  isCopy(store: string): boolean
}

/** Docker Hub's registry hosts: the ones whose single names are official images. */
export function isDockerHub(url: string): boolean {
  const host = new URL(url).hostname
  return ['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com'].includes(host)
}

export function createRouter(upstreams: readonly MirrorUpstream[], hasLocalRepository: (name: string) => Promise<boolean>): Router {
  const whole = upstreams.find((u) => u.prefix === '')
  const registryMirror = upstreams.find((u) => u.registryMirror)
  const under = (name: string) => upstreams.find((u) => u.prefix !== '' && name.startsWith(`${u.prefix}/`))

  const route = (upstream: MirrorUpstream, remoteName: string, fallback = false): Route | undefined => {
    const remote = upstream.library && !remoteName.includes('/') ? `library/${remoteName}` : remoteName
    const store = upstream.prefix === '' ? remote : `${upstream.prefix}/${remote}`
    return isName(remote) && isName(store) ? { upstream, remote, store, fallback } : undefined
  }

  return {
    async resolve(name) {
      if (whole) return route(whole, name)
      const upstream = under(name)
      if (upstream) return route(upstream, name.slice(upstream.prefix.length + 1))
      if (!registryMirror || (await hasLocalRepository(name))) return undefined
      return route(registryMirror, name, true)
    },
    mirroredBy: (name) => whole ?? under(name),
    isCopy: (store) => whole !== undefined || under(store) !== undefined,
  }
}

/**
 * Which retention policies may remove tags of a stored repository: every policy for a pushed one;
 * for a mirror's copy only a policy whose `repositories` pattern starts with its prefix (`hub/*`,
 * `/^hub\/library\/.*$/`), because eviction manages the cache and a catch-all (`/.+/`) was written
 * for pushed repositories. In proxy mode (no prefix) every repository is a copy, and every policy
 * names them.
 */
export function retentionNamesRepository(upstreams: readonly MirrorUpstream[]): (pattern: string, repo: string) => boolean {
  const router = createRouter(upstreams, async () => false)
  return (pattern, repo) => {
    const upstream = router.mirroredBy(repo)
    if (!upstream || upstream.prefix === '') return true
    const isRegex = pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/')
    // The literal start of a regex: without its anchor and escapes (`hub\/x` is `hub/x`).
    const literal = isRegex ? pattern.slice(1, -1).replace(/^\^/, '').replace(/\\(.)/g, '$1') : pattern
    return literal.startsWith(`${upstream.prefix}/`)
  }
}
