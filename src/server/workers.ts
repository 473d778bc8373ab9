/**
 * @module `--workers N`: the primary forks N processes that share the port (node:cluster), replaces
 * those that die, drains them on SIGTERM and replaces them one at a time on SIGHUP.
 */
import cluster, { type Worker } from 'node:cluster'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { type Config } from '../config/schema.js'
import { ConfigError, loadConfig } from '../config/load.js'
import { metricsSettings } from '../config/settings.js'
import type { Logger } from '../observe/log.js'
import { installClusterMetrics, startMetricsServer } from '../observe/metrics-cluster.js'
import { installThrottleHub } from '../auth/throttle-cluster.js'
import { splitAddr } from './address.js'
import { AUTH_OFF_WARNING, startupSummary } from './startup.js'

/**
 * Token mode with enlil as the issuer and no key configured: one key for all workers (each would
 * otherwise generate its own, and refuse the tokens of the others). It lives as long as the primary.
 */
function shareGeneratedSigningKey(config: Config, log: Logger): void {
  const token = config.auth.mode === 'token' ? config.auth.token : undefined
  if (!token || token.signingkey || token.signingkeyb64 || token.rootcertbundle || token.jwks) return
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  process.env.JWT_KEY_B64 = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string).toString('base64')
  log.warn('no token signing key configured (auth.token.signingkey or JWT_KEY_B64): generated one for the workers; tokens end with this process and other instances cannot verify them')
}

/**
 * No cluster.secret configured: one for the workers of this primary, so that an upload request
 * landing on another worker than the one holding its digest is relayed there (http/forwarding.ts)
 * rather than finished with a read-back. Instances elsewhere have other secrets and ignore these.
 */
function shareGeneratedClusterSecret(config: Config): void {
  if (!config.cluster.secret) process.env.ENLIL_CLUSTER_SECRET = randomBytes(32).toString('hex')
}

/**
 * The primary of `--workers N`: N processes share the port (node:cluster); nothing they need is
 * in memory, so any of them takes any request. A worker that dies is replaced; SIGTERM drains all;
 * SIGHUP replaces the workers one at a time (each new one listening before an old one drains), so
 * a changed config file or a new build takes effect without refusing a request.
 */
export function runWorkers(config: Config, file: string | undefined, log: Logger): number {
  let stopping = false
  let reloading = false
  const retiring = new Set<number>()
  /** Workers that reached listening; one that exits without it failed to start. */
  const listened = new Set<number>()
  let servedOnce = false
  const reloadStarted = new Set<number>()
  let retryMs = 1_000
  /** Workers that listened since start: the first one's listening is when the startup summary is said, once. */
  let startedWorkers = 0
  let metricsUrl: string | undefined
  shareGeneratedSigningKey(config, log)
  shareGeneratedClusterSecret(config)
  installClusterMetrics()
  // One login throttle for all workers: the same limit whatever their number.
  installThrottleHub()
  const metricsAt = metricsSettings(config)
  if (metricsAt.addr) {
    const { host, port } = splitAddr(metricsAt.addr)
    startMetricsServer(host, port, metricsAt.path, log).then((m) => { metricsUrl = m.url }, (err: unknown) => {
      console.error(`enlil: cannot listen for metrics on ${metricsAt.addr}: ${(err as Error).message}`)
      process.exit(1)
    })
  }
  for (let i = 0; i < config.http.workers; i++) cluster.fork()
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (liveWorkers() === 0) {
        log.info('stopped')
        process.exit(process.exitCode ?? 0)
      }
      return
    }
    if (retiring.delete(worker.id)) return
    // A worker started by a reload that failed to start: the reload stops and reports it.
    if (reloadStarted.delete(worker.id)) return
    if (!listened.delete(worker.id)) {
      // It died before serving: a setting that only a worker checks (an unreadable htpasswd file,
      // a bad key) fails in every worker alike. At startup that stops enlil, as one process would;
      // later (a file removed since), replacements are retried slowly instead of in a tight loop.
      if (listened.size === 0 && !servedOnce) {
        log.error('a worker could not start (its error is above); stopping', { code, signal })
        stopping = true
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM')
        process.exitCode = 1
        setTimeout(() => process.exit(1), 5_000).unref()
        if (liveWorkers() === 0) process.exit(1)
        return
      }
      log.error('a replacement worker could not start; retrying', { code, signal, retryInMs: retryMs })
      setTimeout(() => { if (!stopping) cluster.fork() }, retryMs) // not unref'd: it may be all that is left to wait for
      retryMs = Math.min(retryMs * 2, 60_000)
      return
    }
    retryMs = 1_000
    log.warn('worker exited; starting another', { pid: worker.process.pid, code, signal })
    cluster.fork()
  })
  cluster.on('listening', (worker, address) => {
    listened.add(worker.id)
    reloadStarted.delete(worker.id)
    servedOnce = true
    // The workers do not say it: one line as the first of them serves, not one per worker.
    if (++startedWorkers === 1) {
      log.info('enlil is serving', startupSummary(config, { file, port: address.port, metricsUrl }))
      if ((config.auth.mode ?? 'none') === 'none') log.warn(AUTH_OFF_WARNING)
    }
  })
  let stopSignal: NodeJS.Signals | undefined
  const stop = (signal: NodeJS.Signals) => {
    if (stopSignal) {
      // A second Ctrl-C or SIGTERM: the user will not wait for the drain.
      log.warn('stopping now, without waiting for the requests in flight', { signal })
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
    }
    stopSignal = signal
    stopping = true
    log.info('stopping workers: draining in-flight requests; send the signal again to stop at once', { signal, timeoutMs: config.http.draintimeout })
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    setTimeout(() => process.exit(1), config.http.draintimeout + 5_000).unref()
  }
  const reload = async () => {
    if (stopping || reloading) return
    try {
      loadConfig(process.env, file) // a broken file keeps the running workers
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message]
      log.error('reload refused: the configuration is invalid; the workers keep running', { problems })
      return
    }
    reloading = true
    const old = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    log.info('reloading workers one at a time', { workers: old.length })
    for (const worker of old) {
      if (stopping) break
      const fresh = cluster.fork()
      reloadStarted.add(fresh.id)
      const started = await Promise.race([once(fresh, 'listening').then(() => true), once(fresh, 'exit').then(() => false)])
      if (!started) {
        log.error('reload stopped: a new worker did not start; the old ones keep serving')
        break
      }
      retiring.add(worker.id)
      worker.process.kill('SIGTERM') // it drains its requests, then exits
    }
    reloading = false
    log.info('reload done')
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => void reload())
  return -1
}

/**
 * Workers still running. A worker whose process exited before its IPC channel disconnected stays in
 * `cluster.workers` until the disconnect: counting it would keep a stopping primary waiting.
 */
function liveWorkers(): number {
  return Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead()).length
}
