/** Starting and stopping real registry processes (enlil's dist/main.js, Debian's docker-registry) for tests. */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')
export const DOCKER_REGISTRY = '/usr/bin/docker-registry'

export interface Running {
  url: string
  port: number
  process: ChildProcess
  output: () => string
  /** SIGTERM and wait; `kill('SIGKILL')` simulates a crash. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer()
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => ok(port))
    })
  })
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `enlil-${prefix}-`))
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}:\n${output()}`)
    try {
      const res = await fetch(`${url}/v2/`)
      await res.arrayBuffer()
      if (res.status === 200 || res.status === 401) return // 401: serving, with auth on
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`not ready after 10 s:\n${output()}`)
}

function start(command: string, args: string[], env: Record<string, string>, port: number, unset: string[] = []): Promise<Running> {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const name of unset) delete fullEnv[name]
  const child = spawn(command, args, { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  const url = `http://127.0.0.1:${port}`
  const running: Running = {
    url, port, process: child, output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
  return waitReady(url, child, running.output).then(() => running)
}

/** Starts enlil (the built dist/main.js) on a free port (or `port`, when a config must name it beforehand) over a filesystem root. */
export async function startEnlil(root: string, env: Record<string, string> = {}, port?: number): Promise<Running> {
  const main = join(ROOT, 'dist/main.js')
  if (!existsSync(main)) throw new Error('dist/main.js is missing: run `npx tsc -p tsconfig.json` (npm test does)')
  port ??= await freePort()
  return start(process.execPath, [main, 'serve'], {
    REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_LOG_LEVEL: 'warn',
    REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
    ...env,
  }, port)
}

export interface DistributionS3 {
  endpoint: string
  region: string
  bucket: string
  accessKey: string
  secretKey: string
  rootDirectory?: string
}

/**
 * Starts Debian's docker-registry (distribution 2.8) on a free port, over a filesystem root or an
 * S3 bucket (its regionendpoint implies path-style addressing).
 */
export async function startDistribution(root: string, configDir: string, s3?: DistributionS3): Promise<Running> {
  const port = await freePort()
  const config = join(configDir, `distribution-${port}.yml`)
  const store = s3
    ? [`  s3: { accesskey: ${s3.accessKey}, secretkey: ${s3.secretKey}, region: ${s3.region}, regionendpoint: "${s3.endpoint}", bucket: ${s3.bucket}, secure: ${s3.endpoint.startsWith('https') ? 'true' : 'false'}, v4auth: true, rootdirectory: "${s3.rootDirectory ?? ''}" }`]
    : [`  filesystem: { rootdirectory: ${root} }`]
  writeFileSync(config, [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    'storage:',
    ...store,
    '  delete: { enabled: true }',
    '  maintenance: { uploadpurging: { enabled: false } }',
    `http: { addr: "127.0.0.1:${port}", secret: enlil-test-secret }`,
    'health: { storagedriver: { enabled: false } }',
    '',
  ].join('\n'))
  // Its s3 driver fails at startup when AWS_CA_BUNDLE is set (LoadCustomCABundleError).
  return start(DOCKER_REGISTRY, ['serve', config], { AWS_CA_BUNDLE: '' }, port, ['AWS_CA_BUNDLE'])
}

/** Runs the conformance suite (conformance/run.mjs) against a URL; resolves to its exit code and output. */
export async function runConformance(url: string, args: string[], junit: string): Promise<{ code: number | null; output: string; lastLine: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'conformance/run.mjs'), '--url', url, '--junit', junit, ...args], {
    cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 110_000)
  const code = await new Promise<number | null>((ok) => child.on('exit', ok))
  clearTimeout(timer)
  return { code, output, lastLine: output.trimEnd().split('\n').at(-1) ?? '' }
}

/**
 * Whether a test needing `what` runs: under CI=true a missing part is a failure, never a skip;
 * otherwise the skip is announced with the reason.
 */
export function requirePart(available: boolean, what: string, install: string): boolean {
  if (available) return true
  if (process.env.CI === 'true') throw new Error(`${what} is required under CI=true but is not installed (${install})`)
  console.warn(`SKIPPED: ${what} is not installed here (${install}); these tests did not run`)
  return false
}
