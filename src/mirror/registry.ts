/**
 * @module The pull-through cache as a Registry: the same interface as the core's, whose manifests
 * and blobs answer for mirrored names from the store and, on a miss, from the upstream (storing what
 * they fetched). Names no upstream holds go straight to the core: the HTTP routes don't know.
 *
 * - A manifest by digest is fetched once and kept (its digest verified). A tag is believed for the
 *   upstream's `ttl` (the time of its link in the store says when it was last checked); past it, a
 *   HEAD asks the upstream for the digest and the manifest is fetched only when it changed. An index
 *   stays an index: its platform manifests are fetched as clients ask for them.
 * - Upstream down, slow or rate-limited: what is cached is served (a tag past its TTL with a
 *   `Warning` header); with nothing cached the client gets 503 UNAVAILABLE, or 429 TOOMANYREQUESTS
 *   with the upstream's Retry-After.
 * - Referrers come from the upstream's referrers API (the local index when it is unreachable); an
 *   upstream without the API answers 404, and so does enlil, so clients fall back to the
 *   `sha256-<hex>` tag, which is pulled through like any tag.
 * - Each pull rewrites `_enlil/mirror/repositories/<name>/_pulled` (at most once a minute per
 *   process): eviction (eviction.ts) drops the repositories pulled longest ago.
 */
import { createHash } from 'node:crypto'
import { type Digest, digestOf, tryParseDigest } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import { type Descriptor, mediaTypeOf, parseManifest } from '../oci/manifest.js'
import type { Reference } from '../oci/names.js'
import type { Logger } from '../observe/log.js'
import { metrics } from '../observe/metrics.js'
import type { BlobStore } from '../registry/blobs.js'
import { LruCache } from '../registry/cache.js'
import type { Registry } from '../registry/index.js'
import type { ManifestStore, ReferrersResult, StoredManifest } from '../registry/manifests.js'
import { paths } from '../registry/paths.js'
import { BlobDigestError, createBlobFetcher, purgeFetching } from './blob-fetch.js'
import { createLeases, type LeaseOptions } from './leases.js'
import { createRouter, type MirrorUpstream, type Route, type Router } from './routes.js'
import { UpstreamError } from './upstream.js'

export interface MirrorSettings {
  upstreams: MirrorUpstream[]
  /** Manifests larger than this are refused (limits.manifestsize). */
  manifestMaxSize: number
  log: Logger
  leases?: LeaseOptions
}

export interface Mirror {
  /** The core, with mirrored names pulled through. */
  registry: Registry
  router: Router
  /**
   * Removes what crashed processes left: temporary fetches no live lease covers, older than
   * `maxAgeMs` (at most an hour, at least ten upstream timeouts). The upload purge calls it.
   */
  purge(maxAgeMs: number): Promise<number>
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms))

/** Upstream trouble in the words of the spec's error codes: never a 500. */
export function upstreamFailure(err: unknown, what: string): unknown {
  if (err instanceof UpstreamError) {
    if (err.kind === 'ratelimited') return new RegistryError('TOOMANYREQUESTS', `${err.message}; nothing cached to serve for ${what}`, undefined, { headers: { 'Retry-After': err.retryAfter ?? '60' } })
    if (err.kind === 'denied') return new RegistryError('NAME_UNKNOWN', `${err.message}: ${what} is not there, or the configured credentials may not pull it`, undefined, { status: 404 })
    return new RegistryError('UNAVAILABLE', `${err.message}; nothing cached to serve for ${what}: retry later`, undefined, { headers: { 'Retry-After': '5' } })
  }
  if (err instanceof BlobDigestError) return new RegistryError('UNAVAILABLE', `${err.message}; retry later`, undefined, { headers: { 'Retry-After': '5' } })
  return err
}

export function createMirror(base: Registry, settings: MirrorSettings): Mirror {
  const { driver, gcFence: fence } = base
  const leases = createLeases(driver, settings.leases)
  /**
   * Names of local repositories, believed 5 s. Only a yes is remembered: a push starts a repository
   * at any moment (its first blob, before any manifest), and its next request must not go upstream.
   */
  const local = new LruCache<string, number>(10_000)
  const router = createRouter(settings.upstreams, async (name) => {
    const at = local.get(name)
    if (at !== undefined && Date.now() - at < 5_000) return true
    // Its own folders, not its path alone: a nested repository (library/busybox/x) is another one.
    const found = await Promise.all([`${paths.repository(name)}/_manifests`, paths.layers(name), paths.uploads(name)].map((p) => driver.stat(p)))
    const yes = found.some((f) => f !== undefined)
    if (yes) local.set(name, Date.now())
    return yes
  })
  const fetcher = createBlobFetcher({ driver, blobs: base.blobs, fence, leases, log: settings.log })
  const pulled = new LruCache<string, number>(10_000)
  /** `key` → the one fetch of a manifest in this process. */
  const flights = new Map<string, Promise<StoredManifest | undefined>>()

  const touchPulled = (store: string) => {
    if (Date.now() - (pulled.get(store) ?? 0) < 60_000) return
    pulled.set(store, Date.now())
    driver.putContent(paths.mirrorPulled(store), new Date().toISOString()).catch((err: unknown) => settings.log.warn('mirror: could not record a pull', { repository: store, err }))
  }

  /**
   * One fetch per key at a time: in this process a promise, across processes a lease; `fresh`
   * says whether what another fetcher stored is good enough.
   */
  function single(key: string, fresh: () => Promise<StoredManifest | undefined>, work: () => Promise<StoredManifest | undefined>, timeoutMs: number): Promise<StoredManifest | undefined> {
    const running = flights.get(key)
    if (running) return running
    const flight = (async () => {
      const deadline = Date.now() + timeoutMs
      for (let round = 0; ; round++) {
        const lease = await leases.acquire(`m-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`)
        if (lease) {
          try {
            return (await fresh()) ?? (await work())
          } finally {
            await lease.release()
          }
        }
        await sleep(Math.min(500, 50 + round * 50))
        const found = await fresh()
        if (found) return found
        if (Date.now() > deadline) return work()
      }
    })()
    flights.set(key, flight)
    flight.finally(() => flights.delete(key)).catch(() => {})
    return flight
  }

  /** Stores a fetched manifest as a push would, without asking for its blobs (they come when pulled). */
  async function save(route: Route, ref: Reference, bytes: Buffer, announced: string | undefined): Promise<StoredManifest> {
    const digest = digestOf(bytes, ref.kind === 'digest' ? ref.digest.algorithm : 'sha256')
    const claimed = announced ? tryParseDigest(announced) : undefined
    if ((ref.kind === 'digest' && ref.digest.hex !== digest.hex) || (claimed && claimed.algorithm === digest.algorithm && claimed.hex !== digest.hex)) {
      metrics.mirrorUpstreamErrors.inc([route.upstream.client.name, 'digest'])
      throw new BlobDigestError(`upstream ${route.upstream.client.name} sent a manifest of digest ${digest.value} for ${route.remote}@${ref.kind === 'digest' ? ref.digest.value : claimed!.value}: refused, nothing stored`)
    }
    const mediaType = mediaTypeOf(bytes)
    let referrer: { subject: Digest; descriptor: Descriptor } | undefined
    try {
      const parsed = parseManifest(bytes, mediaType)
      if (parsed.subject) {
        referrer = {
          subject: parsed.subject,
          descriptor: {
            mediaType: parsed.mediaType, digest: digest.value, size: bytes.length,
            ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
            ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
          },
        }
      }
    } catch {
      // Served as received; only a referrer entry needs it parsed.
    }
    await fence.use([digest], async (doomed) => {
      if (doomed.has(digest.value)) await fence.awaitDeletion(digest)
      if (!(await driver.stat(paths.blobData(digest), 'file'))) await driver.putContent(paths.blobData(digest), bytes)
      await driver.putOnce(paths.revisionLink(route.store, digest), digest.value)
      if (referrer) await driver.putOnce(paths.referrer(route.store, referrer.subject, digest), JSON.stringify(referrer.descriptor))
    })
    // The link's time says when the upstream was last asked.
    if (ref.kind === 'tag') await driver.putContent(paths.tagCurrentLink(route.store, ref.tag), digest.value)
    metrics.mirrorPulls.inc([route.upstream.client.name, 'manifest', 'miss'])
    return { digest, mediaType, bytes }
  }

  async function fetchManifest(route: Route, ref: Reference): Promise<StoredManifest | undefined> {
    const reference = ref.kind === 'tag' ? ref.tag : ref.digest.value
    const got = await route.upstream.client.manifest(route.remote, reference, 'GET', settings.manifestMaxSize)
    if (!got?.bytes) return undefined
    return save(route, ref, got.bytes, got.digest)
  }

  async function freshTag(route: Route, tag: string): Promise<StoredManifest | undefined> {
    const link = await driver.stat(paths.tagCurrentLink(route.store, tag), 'file')
    if (!link || Date.now() - link.modifiedAt.getTime() >= route.upstream.ttlMs) return undefined
    return base.manifests.get(route.store, { kind: 'tag', tag })
  }

  /** Asks the upstream what the tag is now: the cached manifest when unchanged, else the new one. */
  async function refreshTag(route: Route, tag: string, cached: StoredManifest | undefined): Promise<StoredManifest | undefined> {
    if (cached) {
      const head = await route.upstream.client.manifest(route.remote, tag, 'HEAD', settings.manifestMaxSize)
      if (!head) return undefined
      if (head.digest === cached.digest.value) {
        await driver.putContent(paths.tagCurrentLink(route.store, tag), cached.digest.value)
        metrics.mirrorPulls.inc([route.upstream.client.name, 'manifest', 'hit'])
        return cached
      }
    }
    return fetchManifest(route, { kind: 'tag', tag })
  }

  async function getManifest(route: Route, ref: Reference): Promise<StoredManifest | undefined> {
    touchPulled(route.store)
    const upstream = route.upstream.client.name
    const timeoutMs = 60_000
    if (ref.kind === 'digest') {
      const found = await base.manifests.get(route.store, ref)
      if (found) {
        metrics.mirrorPulls.inc([upstream, 'manifest', 'hit'])
        return found
      }
      const fresh = () => base.manifests.get(route.store, ref)
      try {
        return await single(`${route.store}@${ref.digest.value}`, fresh, () => fetchManifest(route, ref), timeoutMs)
      } catch (err) {
        throw upstreamFailure(err, `${route.store}@${ref.digest.value}`)
      }
    }
    const link = await driver.stat(paths.tagCurrentLink(route.store, ref.tag), 'file')
    const cached = link ? await base.manifests.get(route.store, ref) : undefined
    if (cached && link && Date.now() - link.modifiedAt.getTime() < route.upstream.ttlMs) {
      metrics.mirrorPulls.inc([upstream, 'manifest', 'hit'])
      return cached
    }
    try {
      return await single(`${route.store}:${ref.tag}`, () => freshTag(route, ref.tag), () => refreshTag(route, ref.tag, cached), timeoutMs)
    } catch (err) {
      if (!cached || !(err instanceof UpstreamError || err instanceof BlobDigestError)) throw upstreamFailure(err, `${route.store}:${ref.tag}`)
      metrics.mirrorPulls.inc([upstream, 'manifest', 'stale'])
      settings.log.warn('mirror: upstream failed; serving the cached tag', { repository: route.store, tag: ref.tag, err: (err as Error).message })
      return { ...cached, warning: `110 - "Response is Stale: ${(err as Error).message.replace(/["\\]/g, "'")}"` }
    }
  }

  async function referrers(route: Route, subject: Digest, artifactType: string | undefined): Promise<ReferrersResult> {
    let body: Buffer | undefined
    try {
      body = await route.upstream.client.referrers(route.remote, subject, artifactType, settings.manifestMaxSize)
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err
      // Unreachable: what was pulled through so far.
      return base.manifests.referrers(route.store, subject, artifactType)
    }
    if (body === undefined) {
      throw new RegistryError('NAME_UNKNOWN', `upstream ${route.upstream.client.name} has no referrers API: look for the tag ${subject.algorithm}-${subject.hex}`, undefined, { status: 404 })
    }
    let listed: Descriptor[] = []
    try {
      const json = JSON.parse(body.toString('utf8')) as { manifests?: unknown }
      if (Array.isArray(json.manifests)) listed = json.manifests.filter((d): d is Descriptor => typeof d === 'object' && d !== null && typeof (d as Descriptor).digest === 'string')
    } catch {
      throw upstreamFailure(new UpstreamError('server', `upstream ${route.upstream.client.name}: its referrers answer is not JSON`), `the referrers of ${subject.value}`)
    }
    if (artifactType === undefined) return { descriptors: listed, filtered: false }
    return { descriptors: listed.filter((d) => d.artifactType === artifactType), filtered: true }
  }

  const blobs: BlobStore = {
    ...base.blobs,
    async stat(repo, digest) {
      const route = await router.resolve(repo)
      if (!route) return base.blobs.stat(repo, digest)
      try {
        return await fetcher.ensure(route, digest)
      } catch (err) {
        throw upstreamFailure(err, `blob ${digest.value} of ${route.store}`)
      }
    },
    async statForReuse(repo, digest) {
      const route = await router.resolve(repo)
      // docker's first request of a push to a new repository (docker push registry/app): never
      // upstream, which may be down or hold a blob the push would then skip and its manifest lack.
      if (!route || route.fallback) return base.blobs.statForReuse(repo, digest)
      try {
        return await fetcher.peek(route, digest)
      } catch (err) {
        throw upstreamFailure(err, `blob ${digest.value} of ${route.store}`)
      }
    },
    open: (digest, range) => fetcher.open(digest, range),
  }

  const manifests: ManifestStore = {
    ...base.manifests,
    async get(repo, ref) {
      const route = await router.resolve(repo)
      return route ? getManifest(route, ref) : base.manifests.get(repo, ref)
    },
    async delete(repo, ref) {
      const route = await router.resolve(repo)
      return base.manifests.delete(route?.store ?? repo, ref)
    },
    async tags(repo, page) {
      const route = await router.resolve(repo)
      return base.manifests.tags(route?.store ?? repo, page)
    },
    async referrers(repo, subject, artifactType) {
      const route = await router.resolve(repo)
      return route ? referrers(route, subject, artifactType) : base.manifests.referrers(repo, subject, artifactType)
    },
  }

  // `from=hub/busybox` names the copy stored as hub/library/busybox: mount from there.
  const mounts: Registry['mounts'] = {
    async mount(request) {
      const route = request.from === undefined ? undefined : await router.resolve(request.from)
      return base.mounts.mount(route ? { ...request, from: route.store } : request)
    },
  }

  const longestTimeout = Math.max(...settings.upstreams.map((u) => u.timeoutMs))
  const purge = (maxAgeMs: number) => purgeFetching(driver, leases, new Date(Date.now() - Math.max(Math.min(maxAgeMs, 3_600_000), 10 * longestTimeout)))

  return { registry: { ...base, blobs, manifests, mounts }, router, purge }
}
