/**
 * @module `enlil serve [CONFIG.yml] [--config CONFIG.yml] [--workers N]`: one process, or the
 * primary of N workers (server/workers.ts); drains on SIGTERM or Ctrl-C, stops at once on a second.
 */
import cluster from 'node:cluster'
import { ConfigError, loadConfig } from '../config/load.js'
import { configFileProblems } from '../server/preflight.js'
import { unknownVariables, unknownVariableWarning } from '../config/environment.js'
import { metricsSettings } from '../config/settings.js'
import { createLogger, type Logger } from '../observe/log.js'
import { serve } from '../server/serve.js'
import { AUTH_OFF_WARNING, startupSummary } from '../server/startup.js'
import { runWorkers } from '../server/workers.js'
import { configProblems } from './config-file.js'

/** Runs `enlil serve`: resolves to an exit status, or -1 while serving (the process stays up). */
export async function serveCommand(file: string | undefined, workers: string | undefined): Promise<number> {
  let config
  try {
    config = loadConfig(workers === undefined ? process.env : { ...process.env, ENLIL_WORKERS: workers }, file)
  } catch (err) {
    // The value came from the command line, not from a variable the user may never have set.
    const blamed = err instanceof ConfigError && workers !== undefined
      ? new ConfigError(err.problems.map((p) => p.replace('(from ENLIL_WORKERS)', `(from --workers ${workers})`)))
      : err
    return configProblems(blamed)
  }

  const log = createLogger(config.log.level)
  logNodeWarnings(log)
  if (cluster.isPrimary) for (const name of unknownVariables(process.env)) log.warn(unknownVariableWarning(name))
  if (config.http.workers > 1 && cluster.isPrimary) {
    // The files the config names are checked once, here, rather than by every worker it would fork.
    const problems = await configFileProblems(config)
    if (problems.length > 0) return configProblems(new ConfigError(problems))
    return runWorkers(config, file, log)
  }
  let running
  try {
    running = await serve(config, log)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    console.error(e.syscall === 'listen' ? `enlil: cannot listen on ${config.http.addr}: ${e.message}` : `enlil: cannot start: ${e.message}`)
    return 1
  }
  // With --workers, the primary says it once for all of them (server/workers.ts).
  if (cluster.isPrimary) {
    log.info('enlil is serving', startupSummary(config, { file, port: running.port, metricsUrl: running.metricsUrl }))
    if ((config.auth.mode ?? 'none') === 'none') log.warn(AUTH_OFF_WARNING)
  }
  // One bad request must not take every other client's transfer down with it.
  process.on('unhandledRejection', (err) => log.error('unhandled rejection (a bug: please report it)', { err }))

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('stopping now, without waiting for the requests in flight', { signal })
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
    }
    stopping = true
    // A worker drains on its primary's SIGTERM: the hint is the primary's to give.
    if (cluster.isWorker) log.debug('worker draining in-flight requests', { worker: cluster.worker?.id, timeoutMs: config.http.draintimeout })
    else log.info('draining in-flight requests; send the signal again to stop at once', { signal, timeoutMs: config.http.draintimeout })
    running.close().then(() => {
      if (cluster.isWorker) log.debug('worker stopped', { worker: cluster.worker?.id })
      else log.info('stopped')
      process.exit(0)
    }, () => process.exit(1))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  // Ctrl-C reaches every process of the terminal's group, workers included: in a worker the
  // primary decides (SIGTERM to drain, SIGKILL on a second Ctrl-C), so that its SIGTERM does not
  // count as the worker's second signal.
  process.on('SIGINT', () => { if (cluster.isPrimary) stop('SIGINT') })
  // SIGHUP's default is to exit: a single process stays up instead, and says what reload needs.
  if (cluster.isPrimary) process.on('SIGHUP', () => log.warn('SIGHUP ignored: reloading needs 2 or more workers (http.workers); restart enlil to apply changes'))
  return -1
}

/** Node's process warnings as log lines, one JSON line each, instead of free text among them. */
function logNodeWarnings(log: Logger): void {
  process.removeAllListeners('warning')
  process.on('warning', (warning) => log.warn(`node: ${warning.message.split('\n')[0]}`, { name: warning.name, detail: warning.message.includes('\n') ? warning.message : undefined }))
}
