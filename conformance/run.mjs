#!/usr/bin/env node
/**
 * Runs the OCI distribution-spec conformance suite against a registry:
 *
 *   npm run conformance -- --url http://127.0.0.1:5000 [--namespace repo] [--crossmount-namespace repo2]
 *                          [--user u --password p] [--junit path] [--filter text] [--debug]
 *
 * Runs vitest in a child process with a JUnit reporter, then prints `N passed, N failed, N skipped`
 * as its last line; exits 1 when any check failed (2 for bad arguments).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { readJUnit } from './lib/junit.mjs'

const HERE = import.meta.dirname
const NAME_PATTERN = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/

const USAGE = `usage: npm run conformance -- --url <registry base URL> [options]

  --url URL                     the registry, e.g. http://127.0.0.1:5000 (required)
  --namespace NAME              repositories are made under NAME/<run-id>/ (default conformance/test)
  --crossmount-namespace NAME   second namespace, for cross-repository mounts (default conformance/crossmount)
  --user USER, --password PASS  credentials, for Basic auth or a token service's realm
  --junit PATH                  JUnit XML report (default conformance/report.xml)
  --filter TEXT                 run only tests whose name contains TEXT
  --debug                       print every request and response
`

function fail(message) {
  console.error(`conformance: ${message}\n\n${USAGE}`)
  process.exit(2)
}

function parseArgs(argv) {
  const options = { namespace: 'conformance/test', crossmountNamespace: 'conformance/crossmount', junit: join(HERE, 'report.xml') }
  const names = {
    '--url': 'url', '--namespace': 'namespace', '--crossmount-namespace': 'crossmountNamespace',
    '--user': 'username', '--username': 'username', '--password': 'password', '--junit': 'junit', '--filter': 'filter',
  }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE)
      process.exit(0)
    }
    if (arg === '--debug') {
      options.debug = true
      continue
    }
    let value
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1)
      arg = arg.slice(0, eq)
    }
    const key = names[arg]
    if (!key) fail(`unknown argument ${arg}`)
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) fail(`${arg} needs a value`)
    }
    options[key] = value
  }
  if (!options.url) fail('--url is required')
  try {
    const u = new URL(options.url)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error()
  } catch {
    fail(`--url ${options.url} is not an http(s) URL`)
  }
  for (const key of ['namespace', 'crossmountNamespace']) {
    if (!NAME_PATTERN.test(options[key])) fail(`${key} "${options[key]}" is not a valid repository name`)
  }
  if (options.password !== undefined && options.username === undefined) fail('--password needs --user')
  options.junit = resolve(options.junit)
  return options
}

const options = parseArgs(process.argv.slice(2))
const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`

// The child is a fresh vitest: drop the variables of any vitest this was started from.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VITEST|TINYPOOL)/.test(k)))
Object.assign(env, {
  CONFORMANCE_URL: options.url,
  CONFORMANCE_NAMESPACE: options.namespace,
  CONFORMANCE_CROSSMOUNT_NAMESPACE: options.crossmountNamespace,
  CONFORMANCE_RUN_ID: runId,
  CONFORMANCE_DEBUG: options.debug ? '1' : '0',
})
for (const key of ['username', 'password']) {
  const name = `CONFORMANCE_${key.toUpperCase()}`
  if (options[key] !== undefined) env[name] = options[key]
  else delete env[name]
}

const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs')
const args = [
  vitest, 'run',
  '--config', join(HERE, 'vitest.config.mjs'),
  '--reporter=verbose', '--reporter=junit', `--outputFile.junit=${options.junit}`,
  ...(options.filter ? ['--testNamePattern', options.filter.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')] : []),
]
console.log(`conformance: ${options.url}, repositories under ${options.namespace}/${runId}/ and ${options.crossmountNamespace}/${runId}/`)
rmSync(options.junit, { force: true })

const child = spawn(process.execPath, args, { cwd: dirname(HERE), env, stdio: 'inherit' })
const forward = (signal) => child.kill(signal)
process.on('SIGINT', forward)
process.on('SIGTERM', forward)
const code = await new Promise((ok) => child.on('exit', (c, signal) => ok(c ?? (signal ? 128 : 1))))

let summary
if (existsSync(options.junit)) {
  const report = readJUnit(options.junit)
  if (report.failed.length) {
    console.log('\nconformance: failed checks')
    for (const name of report.failed) console.log(`  ✗ ${name}`)
  }
  console.log(`\nconformance: JUnit report in ${options.junit}`)
  summary = { passed: report.passed.length, failed: report.failed.length, skipped: report.skipped.length }
  // vitest failing without a failed test (a file that did not load, say) is a failure too.
  if (code !== 0 && summary.failed === 0) summary.failed = 1
} else {
  console.log(`\nconformance: vitest wrote no report (exit code ${code}); counting the run as one failure`)
  summary = { passed: 0, failed: 1, skipped: 0 }
}
console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`)
process.exit(summary.failed > 0 ? 1 : 0)
