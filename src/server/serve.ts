/** @module serve(): builds the registry from a config and listens; drains in-flight requests on stop. */
import { getRequestListener } from '@hono/node-server'
import cluster from 'node:cluster'
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createApp } from './app.js'
import { configFileProblems } from './preflight.js'
import { ConfigError } from '../config/load.js'
import { createAuth } from './auth.js'
import { createDriver } from './storage.js'
import { splitAddr } from './address.js'
import { EDGE_SERVER_OPTIONS, guardRequests, installClientErrors, requestErrorResponse } from '../http/client-error.js'
import { type Config } from '../config/schema.js'
import { metricsSettings } from '../config/settings.js'
import { installClusterMetrics, startMetricsServer } from '../observe/metrics-cluster.js'
import type { Logger } from '../observe/log.js'
import { createRegistry, type Registry } from '../registry/index.js'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { createNotifier } from '../observe/notifications.js'
import type { StorageDriver } from '../storage/driver.js'
import { collectGarbage, formatSummary } from '../registry/gc.js'
import { metrics } from '../observe/metrics.js'
import { createUiAccess } from './ui-access.js'
import { createMirrorFor, mirrorCachedBytes, mirrorEviction, mirrorRetention } from './mirror.js'
import { createCluster } from './instances.js'

export interface RunningRegistry {
  url: string
  port: number
  registry: Registry
  /** The metrics listener's URL, when this process serves one (metrics.addr without --workers). */
  metricsUrl?: string
  /** Stops accepting, waits for in-flight requests up to the drain timeout, then closes the rest. */
  close(): Promise<void>
}

/**
 * distribution's `http.headers`: set on every response before the app answers, so they reach
 * responses written on the raw Node response too (blob GETs); Node lets `writeHead`'s own headers win.
 */
function withHeaders(listener: RequestListener, headers: Record<string, string[]>): RequestListener {
  const entries = Object.entries(headers)
  if (entries.length === 0) return listener
  return (req, res) => {
    for (const [name, values] of entries) res.setHeader(name, values)
    return listener(req, res)
  }
}

export async function serve(config: Config, log: Logger): Promise<RunningRegistry> {
  // The files the config names, checked as `enlil config check` checks them: each problem names its option.
  const problems = await configFileProblems(config)
  if (problems.length > 0) throw new ConfigError(problems)
  const driver = await createDriver(config, log)
  const registry = createRegistry(driver, {
    redirect: !config.storage.redirect.disable,
    readOnly: config.storage.maintenance.readonly.enabled,
    uploadWriterLeaseMs: config.storage.maintenance.uploadwriterlease,
    quotas: { total: config.quotas.total, repositories: config.quotas.repositories, refreshMs: config.quotas.refresh, cached: mirrorCachedBytes(config, driver) },
  })
  const mirror = createMirrorFor(config, registry, log)
  const notifier = createNotifier(config.notifications.endpoints, { addr: `${hostname()}:${splitAddr(config.http.addr).port}` }, log)
  const auth = await createAuth(config, log)
  const processes = createCluster(config, driver, log)
  const app = createApp({
    forwarding: processes,
    registry: mirror?.registry ?? registry, mirror: mirror?.router, log, authorizer: auth.authorizer,
    tokenService: auth.tokenService, tokenPath: config.auth.token?.path,
    deleteEnabled: config.storage.delete.enabled,
    manifestMaxSize: config.limits.manifestsize,
    publicUrl: config.http.host,
    trustedProxies: config.http.trustedproxies,
    accessLog: !config.log.accesslog.disabled,
    notifier,
    publicMetricsPath: metricsSettings(config).public ? metricsSettings(config).path : undefined,
    ui: config.ui.enabled ? {
      path: config.ui.path, access: await createUiAccess(config, auth, log),
      gc: { graceMs: config.gc.grace, deleteUntagged: config.gc.deleteuntagged, retention: config.retention },
      quotas: { total: config.quotas.total, repositories: config.quotas.repositories },
    } : undefined,
  })
  const tls = config.http.tls
  // The Hono adaptor's listener (what createAdaptorServer builds), given an errorHandler so that the
  // requests it cannot turn into a Request get the envelope too; requests Node refuses: client-error.ts.
  const listener = withHeaders(guardRequests(getRequestListener(app.fetch, { autoCleanupIncoming: false, errorHandler: requestErrorResponse })), config.http.headers)
  const server: Server = tls.certificate && tls.key
    ? createHttpsServer({ ...EDGE_SERVER_OPTIONS, cert: readFileSync(tls.certificate), key: readFileSync(tls.key) }, listener)
    : createHttpServer(EDGE_SERVER_OPTIONS, listener)
  installClientErrors(server)
  // A blob upload of tens of GiB takes as long as it takes: no whole-request deadline.
  server.requestTimeout = 0
  server.keepAliveTimeout = 75_000

  const { host, port } = splitAddr(config.http.addr)
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      ok()
    })
  })
  const bound = (server.address() as AddressInfo).port
  // Upload requests that land here for an upload another process holds are relayed to it (http/forwarding.ts).
  await processes?.start(listener).catch((err: unknown) => {
    server.close()
    throw err
  })
  const url = `${tls.certificate ? 'https' : 'http'}://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${bound}`

  // Metrics on a listener of their own; with --workers the primary serves it (main.ts).
  if (cluster.isWorker) installClusterMetrics()
  const metricsAt = metricsSettings(config)
  const metricsServer = metricsAt.addr && !cluster.isWorker
    ? await startMetricsServer(splitAddr(metricsAt.addr).host, splitAddr(metricsAt.addr).port, metricsAt.path, log).catch((err: unknown) => {
        server.close()
        throw err
      })
    : undefined

  const purging = config.storage.maintenance.uploadpurging
  const purge = async () => {
    try {
      const n = await registry.uploads.purge(registry.catalog.walk(), new Date(Date.now() - purging.age))
      if (n > 0) log.info('purged stale upload sessions', { count: n })
      const fetches = await mirror?.purge(purging.age)
      if (fetches) log.info('purged temporary fetches of the pull-through cache that crashed processes left', { count: fetches })
    } catch (err) {
      log.warn('upload purge failed', { err })
    }
  }
  // First pass soon after start (a restart is when abandoned sessions pile up), then on the interval.
  // With --workers, one of them purges: the work is shared state, doing it N times gains nothing.
  const purges = purging.enabled && (cluster.worker === undefined || cluster.worker.id === 1)
  const first = purges ? setTimeout(purge, Math.min(60_000, purging.interval)) : undefined
  const timer = purges ? setInterval(purge, purging.interval) : undefined
  first?.unref()
  timer?.unref()
  const gcTimer = scheduleGc(config, registry.driver, log)
  // Say at once when the store is out of reach (a wrong endpoint, DNS, a folder enlil may not
  // write), instead of letting the first push find out; serving goes on, as the store may come back.
  if (cluster.worker === undefined || cluster.worker.id === 1) void checkStore(registry, log)

  return {
    url, port: bound, registry, metricsUrl: metricsServer?.url,
    async close() {
      await metricsServer?.close()
      clearTimeout(first)
      clearInterval(timer)
      clearInterval(gcTimer)
      const closed = new Promise<void>((ok) => server.close(() => ok()))
      // Keep-alive connections turn idle as their last response goes out: close them as they do.
      const sweeper = setInterval(() => server.closeIdleConnections(), 100)
      server.closeIdleConnections()
      const deadline = setTimeout(() => server.closeAllConnections(), config.http.draintimeout)
      await closed
      clearInterval(sweeper)
      clearTimeout(deadline)
      await processes?.stop(config.http.draintimeout)
      notifier?.close()
    },
  }
}

async function checkStore(registry: Registry, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([registry.ready(), new Promise((_, fail) => { timer = setTimeout(() => fail(new Error('no answer within 10 s')), 10_000) })])
  } catch (err) {
    log.error('the store cannot be reached or written: requests that need it answer 503 UNAVAILABLE, /readyz 503, until it can', { reason: (err as Error).message.split('\n')[0] })
  } finally {
    clearTimeout(timer)
  }
}

/**
 * `gc.schedule.interval`: retention and GC inside `serve`, on one worker (as upload purging), never
 * two runs at once in this process. Other instances on the same store may run it too: GC is safe
 * alongside another GC, it only repeats the work.
 */
function scheduleGc(config: Config, driver: StorageDriver, log: Logger): NodeJS.Timeout | undefined {
  const interval = config.gc.schedule.interval
  if (interval <= 0 || (cluster.worker !== undefined && cluster.worker.id !== 1)) return undefined
  let running = false
  const timer = setInterval(async () => {
    if (running) return
    running = true
    try {
      const summary = await collectGarbage(driver, {
        graceMs: config.gc.grace, deleteUntagged: config.gc.deleteuntagged, retention: config.retention,
        progress: (message) => log.debug(message),
        onBatch: (blobs, bytes) => {
          metrics.gcBlobsDeleted.inc([], blobs)
          metrics.gcBytesFreed.inc([], bytes)
        },
        evict: mirrorEviction(config, driver),
        retentionApplies: mirrorRetention(config),
      })
      log.info(formatSummary(summary), { gc: summary })
      metrics.gcRuns.inc(['ok'])
    } catch (err) {
      metrics.gcRuns.inc(['failed'])
      log.warn('scheduled garbage collection failed; the next run will retry', { err })
    } finally {
      running = false
    }
    // Node's timers overflow past 2^31 ms (24.8 days).
  }, Math.min(interval, 2 ** 31 - 1))
  timer.unref()
  return timer
}
