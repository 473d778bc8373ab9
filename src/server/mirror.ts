/**
 * @module The pull-through cache a config asks for (`mirror.upstreams`, or distribution's
 * `proxy.remoteurl`): the mirrored registry, the refusal of pushes into mirrored names, and GC's
 * eviction of cached repositories.
 */
import type { MiddlewareHandler } from 'hono'
import type { Config } from '../config/schema.js'
import type { AppEnv } from '../http/env.js'
import { cachedOnlyBytes, createEviction } from '../mirror/eviction.js'
import { createMirror, type Mirror } from '../mirror/registry.js'
import { createRouter, isDockerHub, type MirrorUpstream, retentionNamesRepository, type Router } from '../mirror/routes.js'
import { createUpstreamClient } from '../mirror/upstream.js'
import type { Logger } from '../observe/log.js'
import { RegistryError } from '../oci/errors.js'
import type { Eviction, GcOptions } from '../registry/gc.js'
import type { Registry } from '../registry/index.js'
import type { StorageDriver } from '../storage/driver.js'

/** `docker.io` is where people say Docker Hub is; its registry API is at registry-1.docker.io. */
function registryUrl(url: string): string {
  const u = new URL(url)
  if (u.hostname === 'docker.io' || u.hostname === 'index.docker.io') u.hostname = 'registry-1.docker.io'
  return u.toString().replace(/\/+$/, '')
}

export function mirrorUpstreams(config: Config): MirrorUpstream[] {
  const listed = config.mirror.upstreams.map((u) => ({ ...u, url: registryUrl(u.url) }))
  const proxy = config.proxy
  if (proxy.remoteurl) {
    listed.push({
      prefix: '', url: registryUrl(proxy.remoteurl), username: proxy.username, password: proxy.password,
      ttl: 10 * 60_000, registrymirror: false, library: undefined, timeout: 15_000,
    })
  }
  return listed.map((u) => ({
    prefix: u.prefix,
    client: createUpstreamClient({ name: u.prefix || new URL(u.url).host, url: u.url, username: u.username, password: u.password, timeoutMs: u.timeout }),
    ttlMs: u.ttl,
    timeoutMs: u.timeout,
    registryMirror: u.registrymirror,
    library: u.library ?? isDockerHub(u.url),
  }))
}

/** The registry with mirrored names pulled through; undefined when no upstream is configured. */
export function createMirrorFor(config: Config, registry: Registry, log: Logger): Mirror | undefined {
  const upstreams = mirrorUpstreams(config)
  if (upstreams.length === 0) return undefined
  return createMirror(registry, { upstreams, manifestMaxSize: config.limits.manifestsize, log: log.child({ component: 'mirror' }) })
}

/** GC's eviction of cached repositories, when a limit is configured. */
export function mirrorEviction(config: Config, driver: StorageDriver): Eviction | undefined {
  const upstreams = mirrorUpstreams(config)
  const evictAfterMs = config.mirror.evictafter || config.proxy.ttl || 0
  if (upstreams.length === 0 || (config.mirror.maxsize === undefined && evictAfterMs === 0)) return undefined
  const router = createRouter(upstreams, async () => false)
  return createEviction(driver, { isCopy: router.isCopy, maxBytes: config.mirror.maxsize, evictAfterMs })
}

/**
 * What `quotas.total` leaves out: blobs only mirrored copies hold, which `mirror.maxsize` bounds
 * (undefined without a mirror). In proxy mode everything is a copy: the total counts nothing.
 */
export function mirrorCachedBytes(config: Config, driver: StorageDriver): (() => Promise<number>) | undefined {
  const upstreams = mirrorUpstreams(config)
  if (upstreams.length === 0 || config.quotas.total === undefined) return undefined
  const router = createRouter(upstreams, async () => false)
  return () => cachedOnlyBytes(driver, router.isCopy)
}

/** GC's retention with a pull-through cache: policies leave its copies alone unless they name its prefix. */
export function mirrorRetention(config: Config): GcOptions['retentionApplies'] {
  const upstreams = mirrorUpstreams(config)
  if (upstreams.length === 0) return undefined
  const names = retentionNamesRepository(upstreams)
  return (policy, repo) => names(policy.repositories, repo)
}

/** Pushes (and upload sessions, mounts, manifest PUTs) into a mirrored name: 405 UNSUPPORTED, before any body is read. */
export function refusePushesToMirrors(router: Router): MiddlewareHandler<AppEnv> {
  return async function refusePushesToMirrors(c, next) {
    const endpoint = c.var.endpoint
    const writes = c.req.method === 'POST' || c.req.method === 'PUT' || c.req.method === 'PATCH'
    if (writes && endpoint && 'name' in endpoint) {
      const upstream = router.mirroredBy(endpoint.name)
      if (upstream) {
        const where = upstream.prefix === '' ? 'this registry mirrors' : `repositories under ${upstream.prefix}/ mirror`
        throw new RegistryError('UNSUPPORTED', `${where} ${upstream.client.name === upstream.prefix ? 'an upstream registry' : upstream.client.name}: pushes to ${endpoint.name} are refused; push to a repository outside the mirrored prefixes`, { name: endpoint.name })
      }
    }
    await next()
  }
}
