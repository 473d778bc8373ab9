#!/usr/bin/env node
/** @module Entry: `enlil serve [config.yml]`. Reads process.env once, here. */
import './threadpool.js'
import cluster, { type Worker } from 'node:cluster'
import { generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { type Config, ConfigError, loadConfig, metricsSettings } from './config.js'
import { createLogger, type Logger } from './log.js'
import { installClusterMetrics, startMetricsServer } from './metrics-cluster.js'
import { createDriver, serve, splitAddr } from './server.js'
import { startupSummary } from './startup.js'
import { configConvert, keysGenerate, maskSecrets, readOnlyCommand, usersAdd } from './cli.js'
import { localHealthUrl, probeHealth } from './healthcheck.js'
import { gcCommand } from './gc-command.js'
import { installThrottleHub } from './auth/throttle-cluster.js'

const USAGE = `usage: enlil serve [CONFIG.yml] [--config CONFIG.yml] [--workers N]
       enlil gc [CONFIG.yml] [--dry-run] [--delete-untagged] [--grace 1h]   (retention, then garbage collection)
       enlil config check [CONFIG.yml]          (validates; prints the effective settings, secrets masked)
       enlil config convert [--distribution config.yml] [--auth auth_config.yml] [--out enlil.yml]
                                                (distribution's and docker_auth's configs → enlil's; notes on stderr)
       enlil users add NAME --file HTPASSWD     (password from stdin, or asked for)
       enlil keys generate [--type ec|rsa|ed25519] > token.pem
       enlil healthcheck [CONFIG.yml]           (exit 0 when the local /healthz answers 200: for HEALTHCHECK)
       enlil readonly on|off|status [CONFIG.yml] [--reason TEXT]   (every instance on the store follows)
       enlil --version

Serves the OCI distribution API. Configuration: defaults, then the optional YAML/JSON file
(also REGISTRY_CONFIG or ENLIL_CONFIG), then the environment (REGISTRY_HTTP_ADDR,
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, ...: see README.md).`

/** The config file named by the environment (REGISTRY_CONFIG, as distribution, or ENLIL_CONFIG). */
const defaultConfigFile = () => process.env.REGISTRY_CONFIG || process.env.ENLIL_CONFIG || undefined

/** The first argument that is not an option, else the environment's file. */
const configFileIn = (args: string[]) => args.find((a) => !a.startsWith('-')) ?? defaultConfigFile()

/** A bad configuration: one line per problem, and exit status 1. Other errors go on. */
function configProblems(err: unknown): number {
  if (!(err instanceof ConfigError)) throw err
  for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
  return 1
}

async function reportingConfigProblems(command: () => Promise<number>): Promise<number> {
  return command().catch(configProblems)
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === '--version' || command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    console.log(pkg.version)
    return 0
  }
  if (command === 'users' && rest[0] === 'add') return usersAdd(rest.slice(1))
  if (command === 'keys' && rest[0] === 'generate') return keysGenerate(rest.slice(1))
  if (command === 'healthcheck') {
    return reportingConfigProblems(async () => {
      const url = localHealthUrl(loadConfig(process.env, configFileIn(rest)))
      const healthy = await probeHealth(url)
      if (!healthy) console.error(`enlil: ${url} did not answer 200`)
      return healthy ? 0 : 1
    })
  }
  if (command === 'config' && rest[0] === 'convert') return configConvert(rest.slice(1))
  if (command === 'readonly') {
    const configFor = (file: string | undefined) => loadConfig(process.env, file ?? defaultConfigFile())
    return reportingConfigProblems(() => readOnlyCommand(rest, (file) => createDriver(configFor(file)), (file) => configFor(file).storage.maintenance.readonly.enabled))
  }
  if (command === 'gc') return gcCommand(rest)
  if (command === 'config' && rest[0] === 'check') {
    const file = configFileIn(rest.slice(1))
    return reportingConfigProblems(async () => {
      console.log(JSON.stringify(maskSecrets(loadConfig(process.env, file)), null, 2))
      console.error(`enlil: configuration ${file ? `in ${file} ` : ''}is valid`)
      return 0
    })
  }
  if (command !== 'serve') {
    console.error(command && command !== 'help' && command !== '--help' ? `unknown command "${command}"\n\n${USAGE}` : USAGE)
    return command && command !== 'help' && command !== '--help' ? 2 : 0
  }

  let file = defaultConfigFile()
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    if (arg === '--config') file = rest[++i]
    else if (arg.startsWith('--config=')) file = arg.slice('--config='.length)
    // Through the environment, so that forked workers see it as the primary does.
    else if (arg === '--workers') process.env.ENLIL_WORKERS = rest[++i] ?? ''
    else if (arg.startsWith('--workers=')) process.env.ENLIL_WORKERS = arg.slice('--workers='.length)
    else if (!arg.startsWith('-')) file = arg
    else {
      console.error(`unknown option "${arg}"\n\n${USAGE}`)
      return 2
    }
  }

  let config
  try {
    config = loadConfig(process.env, file)
  } catch (err) {
    return configProblems(err)
  }

  const log = createLogger(config.log.level)
  if (config.http.workers > 1 && cluster.isPrimary) return runWorkers(config, file, log)
  let running
  try {
    running = await serve(config, log)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    console.error(e.syscall === 'listen' ? `enlil: cannot listen on ${config.http.addr}: ${e.message}` : `enlil: cannot start: ${e.message}`)
    return 1
  }
  log.info('enlil is serving', { url: running.url, ...startupSummary(config), metrics: running.metricsUrl ?? (metricsSettings(config).public ? `${running.url}${metricsSettings(config).path}` : undefined) })
  if ((config.auth.mode ?? 'none') === 'none') log.warn('authentication is off: anyone who can reach this port can push and pull')
  // One bad request must not take every other client's transfer down with it.
  process.on('unhandledRejection', (err) => log.error('unhandled rejection (a bug: please report it)', { err }))

  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('draining in-flight requests', { signal, timeoutMs: config.http.draintimeout })
    running.close().then(() => {
      log.info('stopped')
      process.exit(0)
    }, () => process.exit(1))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // SIGHUP's default is to exit: a single process stays up instead, and says what reload needs.
  if (cluster.isPrimary) process.on('SIGHUP', () => log.warn('SIGHUP ignored: reloading needs 2 or more workers (http.workers); restart enlil to apply changes'))
  return -1
}

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
 * The primary of `--workers N`: N processes share the port (node:cluster); nothing they need is
 * in memory, so any of them takes any request. A worker that dies is replaced; SIGTERM drains all;
 * SIGHUP replaces the workers one at a time (each new one listening before an old one drains), so
 * a changed config file or a new build takes effect without refusing a request.
 */
function runWorkers(config: Config, file: string | undefined, log: Logger): number {
  let stopping = false
  let reloading = false
  const retiring = new Set<number>()
  /** Workers that reached listening; one that exits without it failed to start. */
  const listened = new Set<number>()
  let servedOnce = false
  const reloadStarted = new Set<number>()
  let retryMs = 1_000
  shareGeneratedSigningKey(config, log)
  installClusterMetrics()
  // One login throttle for all workers: the same limit whatever their number.
  installThrottleHub()
  const metricsAt = metricsSettings(config)
  if (metricsAt.addr) {
    const { host, port } = splitAddr(metricsAt.addr)
    startMetricsServer(host, port, metricsAt.path, log).then((m) => log.info('serving metrics of all workers', { url: m.url }), (err: unknown) => {
      console.error(`enlil: cannot listen for metrics on ${metricsAt.addr}: ${(err as Error).message}`)
      process.exit(1)
    })
  }
  for (let i = 0; i < config.http.workers; i++) cluster.fork()
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
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
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1)
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
  cluster.on('listening', (worker) => {
    listened.add(worker.id)
    reloadStarted.delete(worker.id)
    servedOnce = true
  })
  log.info('started workers', { workers: config.http.workers })
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('stopping workers', { signal })
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

main(process.argv.slice(2)).then((code) => {
  if (code < 0) return
  process.exitCode = code
  // A worker's IPC channel to the primary would keep it alive: a worker that cannot serve exits,
  // so the primary sees it die before serving and stops.
  if (cluster.isWorker) process.exit(code)
}, (err: unknown) => {
  console.error('enlil: fatal:', err)
  process.exit(1)
})
