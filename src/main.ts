#!/usr/bin/env node
/** @module Entry: hands the command line to the command tree (commands/cli.ts); process.env is read by the commands, once. */
import './server/threadpool.js'
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { runProgram } from './commands/cli.js'
import { enlilProgram } from './commands/program.js'

// The AWS SDK warns on Node 20 about its releases of 2027, in several lines on stderr, in the
// middle of the JSON log: nothing an operator of this build can act on (package.json pins both).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const version = () => (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

runProgram(enlilProgram(version), process.argv.slice(2)).then((code) => {
  if (code < 0) return
  process.exitCode = code
  // A worker's IPC channel to the primary would keep it alive: a worker that cannot serve exits,
  // so the primary sees it die before serving and stops.
  if (cluster.isWorker) process.exit(code)
}, (err: unknown) => {
  console.error('enlil: fatal:', err)
  process.exit(1)
})
