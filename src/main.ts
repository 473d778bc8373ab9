#!/usr/bin/env node
/** @module Entry: `enlil serve [config.yml]`. Reads process.env once, here. */
import './threadpool.js'
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './log.js'
import { serve } from './server.js'
import { keysGenerate, maskSecrets, usersAdd } from './cli.js'
import { gcCommand } from './gc-command.js'

const USAGE = `usage: enlil serve [CONFIG.yml] [--config CONFIG.yml] [--workers N]
       enlil gc [CONFIG.yml] [--dry-run] [--delete-untagged] [--grace 1h]   (retention, then garbage collection)
       enlil config check [CONFIG.yml]          (validates; prints the effective settings, secrets masked)
       enlil users add NAME --file HTPASSWD     (password from stdin, or asked for)
       enlil keys generate [--type ec|rsa|ed25519] > token.pem
       enlil --version

Serves the OCI distribution API. Configuration: defaults, then the optional YAML/JSON file
(also REGISTRY_CONFIG or ENLIL_CONFIG), then the environment (REGISTRY_HTTP_ADDR,
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, ...: see README.md).`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === '--version' || command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    console.log(pkg.version)
    return 0
  }
  if (command === 'users' && rest[0] === 'add') return usersAdd(rest.slice(1))
  if (command === 'keys' && rest[0] === 'generate') return keysGenerate(rest.slice(1))
  if (command === 'gc') return gcCommand(rest)
  if (command === 'config' && rest[0] === 'check') {
    const file = rest.slice(1).find((a) => !a.startsWith('-')) ?? (process.env.REGISTRY_CONFIG || process.env.ENLIL_CONFIG || undefined)
    try {
      console.log(JSON.stringify(maskSecrets(loadConfig(process.env, file)), null, 2))
      console.error(`enlil: configuration ${file ? `in ${file} ` : ''}is valid`)
      return 0
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
      return 1
    }
  }
  if (command !== 'serve') {
    console.error(command && command !== 'help' && command !== '--help' ? `unknown command "${command}"\n\n${USAGE}` : USAGE)
    return command && command !== 'help' && command !== '--help' ? 2 : 0
  }

  let file = process.env.REGISTRY_CONFIG || process.env.ENLIL_CONFIG || undefined
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
    if (err instanceof ConfigError) {
      for (const problem of err.problems) console.error(`enlil: config: ${problem}`)
      return 1
    }
    throw err
  }

  const log = createLogger(config.log.level)
  if (config.http.workers > 1 && cluster.isPrimary) return runWorkers(config.http.workers, config.http.draintimeout, log)
  let running
  try {
    running = await serve(config, log)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    console.error(e.syscall === 'listen' ? `enlil: cannot listen on ${config.http.addr}: ${e.message}` : `enlil: cannot start: ${e.message}`)
    return 1
  }
  log.info('enlil is serving', {
    url: running.url, addr: config.http.addr, storage: config.storage.driver,
    root: config.storage.driver === 'filesystem' ? config.storage.filesystem.rootdirectory : undefined,
    bucket: config.storage.driver === 's3' ? config.storage.s3.bucket : undefined,
    auth: config.auth.mode ?? 'none', delete: config.storage.delete.enabled,
  })
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
  return -1
}

/**
 * The primary of `--workers N`: N processes share the port (node:cluster); nothing they need is
 * in memory, so any of them takes any request. A worker that dies is replaced; SIGTERM drains all.
 */
function runWorkers(count: number, drainMs: number, log: ReturnType<typeof createLogger>): number {
  let stopping = false
  for (let i = 0; i < count; i++) cluster.fork()
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info('stopped')
        process.exit(0)
      }
      return
    }
    log.warn('worker exited; starting another', { pid: worker.process.pid, code, signal })
    cluster.fork()
  })
  log.info('started workers', { workers: count })
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('stopping workers', { signal })
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    setTimeout(() => process.exit(1), drainMs + 5_000).unref()
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  return -1
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
}, (err: unknown) => {
  console.error('enlil: fatal:', err)
  process.exit(1)
})
