/**
 * @module `enlil serve [CONFIG.yml] [--config CONFIG.yml] [--workers N]`: one process, or the
 * primary of N workers (server/workers.ts); drains on SIGTERM.
 */
import cluster from 'node:cluster'
import { loadConfig } from '../config/load.js'
import { unknownVariables, unknownVariableWarning } from '../config/environment.js'
import { metricsSettings } from '../config/settings.js'
import { createLogger } from '../observe/log.js'
import { serve } from '../server/serve.js'
import { startupSummary } from '../server/startup.js'
import { runWorkers } from '../server/workers.js'
import { configProblems, defaultConfigFile } from './config-file.js'

/** Runs `enlil serve`: resolves to an exit status, or -1 while serving (the process stays up). */
export async function serveCommand(rest: string[], usage: string): Promise<number> {
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
      console.error(`unknown option "${arg}"\n\n${usage}`)
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
  if (cluster.isPrimary) for (const name of unknownVariables(process.env)) log.warn(unknownVariableWarning(name))
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

