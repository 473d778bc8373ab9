/**
 * Runs the black-box conformance suite (conformance/run.mjs) the way a user would:
 *  - against enlil (the built dist/main.js): every check passes;
 *  - against enlil behind Basic and Docker-token auth proxies: the suite's client authenticates;
 *  - against Debian's docker-registry (distribution 2.8): exactly the checks listed in
 *    conformance/expected-failures/distribution-2.8.json fail, no more and no fewer, so that a
 *    check that cannot fail is noticed.
 * Everything listens on 127.0.0.1 only; every process started here is stopped in afterAll.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readJUnit } from '../conformance/lib/junit.mjs'
import { startAuthProxy } from '../conformance/selftest/auth-proxy.mjs'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const ROOT = resolve(import.meta.dirname, '..')
const ENLIL_MAIN = join(ROOT, 'dist/main.js')
const DOCKER_REGISTRY = '/usr/bin/docker-registry'
const EXPECTED_FAILURES = join(ROOT, 'conformance/expected-failures/distribution-2.8.json')
const SUITE_TIMEOUT_MS = 100_000

const haveDistribution = existsSync(DOCKER_REGISTRY)
const underCI = process.env.CI === 'true'
if (!haveDistribution && !underCI) {
  console.warn(
    `SKIPPED: ${DOCKER_REGISTRY} (Debian's docker-registry, distribution 2.8) is not installed, so the conformance ` +
    'suite is not checked against it; install it with `apt-get install docker-registry`',
  )
}

interface Server {
  url: string
  child: ChildProcess
  output: () => string
}

interface SuiteRun {
  code: number | null
  output: string
  lastLine: string
  passed: string[]
  failed: string[]
  skipped: string[]
  failures: Map<string, string>
}

const servers: Server[] = []
const dirs: string[] = []
const closers: (() => Promise<void>)[] = []

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `enlil-conformance-${prefix}-`))
  dirs.push(dir)
  return dir
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer()
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => ok(port))
    })
  })
}

/** Starts a registry process and waits (at most 20 s) until GET /v2/ answers 200. */
async function startServer(command: string, args: string[], env: Record<string, string>, port: number): Promise<Server> {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-20_000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const server = { url: `http://127.0.0.1:${port}`, child, output: () => out }
  servers.push(server)
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} exited (${child.exitCode ?? child.signalCode}):\n${out}`)
    try {
      const res = await fetch(`${server.url}/v2/`, { signal: AbortSignal.timeout(2_000) })
      await res.arrayBuffer()
      if (res.status === 200) return server
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${command} did not answer GET /v2/ with 200 within 20 s:\n${out}`)
}

async function stopServer(server: Server): Promise<void> {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

async function startEnlil(env: Record<string, string> = {}): Promise<Server> {
  if (!existsSync(ENLIL_MAIN)) throw new Error('dist/main.js is missing: build first (`npx tsc -p tsconfig.json`; npm test does)')
  const port = await freePort()
  return startServer(process.execPath, [ENLIL_MAIN, 'serve'], {
    REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: tempDir('enlil-data'),
    REGISTRY_LOG_LEVEL: 'warn',
    REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
    ...env,
  }, port)
}

async function startDistribution(): Promise<Server> {
  const port = await freePort()
  const dir = tempDir('distribution')
  const configPath = join(dir, 'config.yml')
  writeFileSync(configPath, [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    'storage:',
    `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
    '  delete: { enabled: true }',
    '  maintenance: { uploadpurging: { enabled: false } }',
    `http: { addr: "127.0.0.1:${port}", secret: conformance-live-test }`,
    'health: { storagedriver: { enabled: false } }',
    '',
  ].join('\n'))
  return startServer(DOCKER_REGISTRY, ['serve', configPath], {}, port)
}

/** `node conformance/run.mjs --url … --junit <tmp>`, killed after SUITE_TIMEOUT_MS at the latest. */
async function runSuite(url: string, extra: string[] = []): Promise<SuiteRun> {
  const junit = join(tempDir('junit'), 'report.xml')
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONFORMANCE_')))
  const child = spawn(process.execPath, [join(ROOT, 'conformance/run.mjs'), '--url', url, '--junit', junit, ...extra], {
    cwd: ROOT, env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT_MS - 5_000)
  const code = await new Promise<number | null>((ok) => child.on('exit', (c) => ok(c)))
  clearTimeout(timer)
  const lastLine = output.trimEnd().split('\n').at(-1) ?? ''
  if (!existsSync(junit)) throw new Error(`the suite wrote no JUnit report (exit ${code}):\n${output.slice(-5_000)}`)
  const report = readJUnit(junit) as Omit<SuiteRun, 'code' | 'output' | 'lastLine'>
  return { code, output, lastLine, ...report }
}

function describeFailures(run: SuiteRun, names: string[]): string {
  return names.map((n) => `- ${n}\n    ${(run.failures.get(n) ?? '').split('\n').slice(0, 8).join('\n    ')}`).join('\n')
}

afterAll(async () => {
  for (const close of closers) await close()
  for (const server of servers) await stopServer(server)
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('conformance suite, live', () => {
  let enlil: Server

  beforeAll(async () => {
    enlil = await startEnlil()
  })

  it('enlil passes every check', async () => {
    const run = await runSuite(enlil.url)
    expect(run.failed, `failed checks against enlil:\n${describeFailures(run, run.failed)}\n\nserver output:\n${enlil.output()}`).toEqual([])
    expect(run.code, run.output.slice(-3_000)).toBe(0)
    expect(run.lastLine).toMatch(/^\d+ passed, 0 failed, \d+ skipped$/)
    expect(run.lastLine).toBe(`${run.passed.length} passed, 0 failed, ${run.skipped.length} skipped`)
    expect(run.passed.length).toBeGreaterThan(50)
  }, SUITE_TIMEOUT_MS)

  const s3 = requireS3()
  it.skipIf(!s3)('enlil on S3 (Ceph RGW, blob pulls redirected to presigned URLs) passes every check', async () => {
    const bucket = `conformance-${Date.now().toString(36)}`
    await createBucket(bucket)
    closers.push(() => deleteBucket(bucket))
    const onS3 = await startEnlil(enlilS3Environment(bucket))
    const run = await runSuite(onS3.url)
    expect(run.failed, `failed checks against enlil on S3:\n${describeFailures(run, run.failed)}\n\nserver output:\n${onS3.output()}`).toEqual([])
    expect(run.code).toBe(0)
    expect(run.passed.length).toBeGreaterThan(50)
  }, SUITE_TIMEOUT_MS)

  it('the suite authenticates with Docker token auth (Bearer challenge, token from the realm per scope)', async () => {
    const proxy = await startAuthProxy({ upstream: enlil.url, mode: 'bearer', username: 'conformance', password: 's3cret pass' })
    closers.push(proxy.close)
    const run = await runSuite(proxy.url, ['--user', 'conformance', '--password', 's3cret pass'])
    expect(run.failed, describeFailures(run, run.failed)).toEqual([])
    expect(run.code).toBe(0)
    expect(proxy.stats.tokens).toBeGreaterThan(1)
    expect(proxy.stats.refusedTokenRequests).toBe(0)
    expect(proxy.stats.forwarded).toBeGreaterThan(100)
  }, SUITE_TIMEOUT_MS)

  it('the suite authenticates with Basic auth, and fails when the credentials are wrong', async () => {
    const proxy = await startAuthProxy({ upstream: enlil.url, mode: 'basic', username: 'conformance', password: 'right' })
    closers.push(proxy.close)
    // The blob pulls (end-2) with their set-up pushes: enough to exercise Basic on every kind of request.
    const run = await runSuite(proxy.url, ['--user', 'conformance', '--password', 'right', '--filter', 'end-2:'])
    expect(run.failed, describeFailures(run, run.failed)).toEqual([])
    expect(run.code).toBe(0)
    expect(run.passed.length).toBeGreaterThan(5)
    expect(proxy.stats.challenges).toBeGreaterThan(0)
    const wrong = await runSuite(proxy.url, ['--user', 'conformance', '--password', 'wrong', '--filter', 'end-1:'])
    expect(wrong.code).toBe(1)
    expect(wrong.failed.length).toBeGreaterThan(0)
    expect(wrong.lastLine).toMatch(/^0 passed, [1-9][0-9]* failed, [0-9]+ skipped$/)
  }, SUITE_TIMEOUT_MS)

  it.skipIf(!haveDistribution && !underCI)(
    'docker-registry (distribution 2.8) fails exactly the checks in conformance/expected-failures/distribution-2.8.json',
    async () => {
      if (!haveDistribution) throw new Error(`${DOCKER_REGISTRY} is required under CI=true: apt-get install docker-registry`)
      const expected = JSON.parse(readFileSync(EXPECTED_FAILURES, 'utf8')) as { test: string; reason: string }[]
      for (const entry of expected) expect(entry.reason, `no reason given for ${entry.test}`).toMatch(/\S{10}/)
      const names = expected.map((e) => e.test)
      expect(new Set(names).size, 'duplicate entries in the expected-failure list').toBe(names.length)

      const distribution = await startDistribution()
      const run = await runSuite(distribution.url)
      const unexpected = run.failed.filter((n) => !names.includes(n))
      const notFailing = names.filter((n) => !run.failed.includes(n))
      expect(
        { unexpected, notFailing },
        `distribution 2.8 should fail exactly the listed checks.\nFailed but not listed:\n${describeFailures(run, unexpected)}\n` +
        `Listed but did not fail (passed: ${notFailing.filter((n) => run.passed.includes(n)).length}, ` +
        `skipped: ${notFailing.filter((n) => run.skipped.includes(n)).length}, missing: ${notFailing.filter((n) => !run.passed.includes(n) && !run.skipped.includes(n)).length}):\n` +
        notFailing.map((n) => `- ${n}`).join('\n'),
      ).toEqual({ unexpected: [], notFailing: [] })
      expect(run.code).toBe(1)
      expect(run.lastLine).toBe(`${run.passed.length} passed, ${run.failed.length} failed, ${run.skipped.length} skipped`)
    },
    SUITE_TIMEOUT_MS,
  )
})
