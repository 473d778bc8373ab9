#!/usr/bin/env node
/** @module Entry: hands the command line to the command tree (commands/cli.ts); process.env is read by the commands, once. */
import './server/threadpool.js'
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { runProgram } from './commands/cli.js'
import { configSpec } from './commands/config.js'
import { gcSpec } from './commands/gc.js'
import { healthcheckSpec } from './commands/healthcheck.js'
import { keysSpec } from './commands/keys.js'
import { readonlySpec } from './commands/readonly.js'
import { serveSpec } from './commands/serve.js'
import { usersSpec } from './commands/users.js'

// The AWS SDK warns on Node 20 about its releases of 2027, in several lines on stderr, in the
// middle of the JSON log: nothing an operator of this build can act on (package.json pins both).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const program = {
  entries: [serveSpec, configSpec, usersSpec, keysSpec, healthcheckSpec, readonlySpec, gcSpec],
  preamble: `usage: enlil COMMAND [ARGUMENTS]

enlil serves the OCI distribution API (docker, podman, skopeo, ctr push and pull to it), with its
store in a folder or an S3 bucket.`,
  epilogue: `"enlil COMMAND --help" shows what a command takes; "enlil --version" the version.
Configuration: defaults, then the optional YAML/JSON file (the argument, --config, or
REGISTRY_CONFIG / ENLIL_CONFIG), then the environment (REGISTRY_HTTP_ADDR,
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, ...: README.md, "Running it").`,
  version: () => (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version,
}

runProgram(program, process.argv.slice(2)).then((code) => {
  if (code < 0) return
  process.exitCode = code
  // A worker's IPC channel to the primary would keep it alive: a worker that cannot serve exits,
  // so the primary sees it die before serving and stops.
  if (cluster.isWorker) process.exit(code)
}, (err: unknown) => {
  console.error('enlil: fatal:', err)
  process.exit(1)
})
