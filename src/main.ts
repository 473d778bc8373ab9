#!/usr/bin/env node
/** @module Entry: reads the command line and hands it to the command (commands/); process.env is read by them, once. */
import './server/threadpool.js'
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { configCheck, configConvert } from './commands/config.js'
import { gcCommand } from './commands/gc.js'
import { healthcheckCommand } from './commands/healthcheck.js'
import { keysGenerate } from './commands/keys.js'
import { readOnlyCommand } from './commands/readonly.js'
import { serveCommand } from './commands/serve.js'
import { usersAdd } from './commands/users.js'

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === '--version' || command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    console.log(pkg.version)
    return 0
  }
  if (command === 'users' && rest[0] === 'add') return usersAdd(rest.slice(1))
  if (command === 'keys' && rest[0] === 'generate') return keysGenerate(rest.slice(1))
  if (command === 'healthcheck') return healthcheckCommand(rest)
  if (command === 'config' && rest[0] === 'convert') return configConvert(rest.slice(1))
  if (command === 'readonly') return readOnlyCommand(rest)
  if (command === 'gc') return gcCommand(rest)
  if (command === 'config' && rest[0] === 'check') return configCheck(rest.slice(1))
  if (command !== 'serve') {
    console.error(command && command !== 'help' && command !== '--help' ? `unknown command "${command}"\n\n${USAGE}` : USAGE)
    return command && command !== 'help' && command !== '--help' ? 2 : 0
  }

  return serveCommand(rest, USAGE)
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
