/**
 * vitest globalSetup: starts one Ceph RGW (a real S3 server, test/support/ceph-rgw.sh, ~2 s) for the
 * whole run when Debian's ceph packages are installed and the run has a test file using
 * test/support/s3.ts, and hands its address to the test processes through the environment
 * (ENLIL_TEST_S3_*, which the forked workers inherit; test/support/s3.ts reads it). Without ceph,
 * S3 tests skip saying why, or fail under CI=true. An ENLIL_TEST_S3_ENDPOINT already set (a server
 * you run yourself) is used as is.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { TestProject } from 'vitest/node'
import { freePort } from '../support/processes.js'

const run = promisify(execFile)
const SCRIPT = resolve(import.meta.dirname, '../support/ceph-rgw.sh')
const BINARIES = ['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/radosgw', '/usr/bin/radosgw-admin', '/usr/bin/ceph']
const DNS_NAME = 's3.test'

/**
 * A base port with 64 free ports above it, for the monitor and the daemons' messenger window;
 * below Linux's ephemeral range (32768+), where the kernel picks ports for connections and port 0.
 */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000)
    const probes = await Promise.all(Array.from({ length: 64 }, (_, i) => new Promise<boolean>((ok) => {
      const srv = createServer()
      srv.once('error', () => ok(false))
      srv.listen(base + i, '127.0.0.1', () => srv.close(() => ok(true)))
    })))
    if (probes.every(Boolean)) return base
  }
  throw new Error('no free port range for the Ceph monitor')
}

/** Does a test file use the S3 server? Every one that does imports test/support/s3.ts, or is an end-to-end suite (test/e2e/: every cell of its matrix has an S3 store). */
function usesS3(file: string): boolean {
  if (/[\\/]test[\\/]e2e[\\/]/.test(file)) return true
  try {
    return /support\/s3(\.js)?['"]/.test(readFileSync(file, 'utf8'))
  } catch {
    return true
  }
}

/**
 * Starts RGW and points the environment at it; returns the teardown. The script gets this process's
 * pid: if the test run is killed before its teardown, the script's watchdog stops the daemons.
 */
async function start(): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'enlil-rgw-'))
  const s3Port = await freePort()
  const monPort = await freeRange()
  const access = 'enlil-test-access'
  const secret = 'enlil-test-secret-key'
  const started = Date.now()
  const stop = async () => {
    await run('bash', [SCRIPT, 'stop', dir], { timeout: 30_000 }).catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const { stderr } = await run('bash', [SCRIPT, 'start', dir, String(s3Port), String(monPort), access, secret], {
      timeout: 150_000,
      env: { ...process.env, RGW_WATCH_PID: String(process.pid), RGW_DNS_NAME: DNS_NAME },
    })
    if (stderr.trim()) console.warn(stderr.trim()) // a low-disk warning
  } catch (err) {
    const { stderr } = err as { stderr?: string }
    await stop()
    throw new Error(`Ceph RGW did not start: ${(err as Error).message}\n${stderr ?? ''}`)
  }
  process.env.ENLIL_TEST_S3_ENDPOINT = `http://127.0.0.1:${s3Port}`
  process.env.ENLIL_TEST_S3_REGION = 'us-east-1'
  process.env.ENLIL_TEST_S3_ACCESS_KEY = access
  process.env.ENLIL_TEST_S3_SECRET_KEY = secret
  process.env.ENLIL_TEST_S3_DNS_NAME = DNS_NAME
  // For tests that manage S3 keys with radosgw-admin (a key deleted at the store ends its logins).
  process.env.ENLIL_TEST_RGW_CONF = join(dir, 'ceph.conf')
  console.log(`Ceph RGW (S3) ready on 127.0.0.1:${s3Port} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return stop
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (process.env.ENLIL_TEST_S3_ENDPOINT) return undefined
  if (!BINARIES.every((b) => existsSync(b))) return undefined
  let teardown: (() => Promise<void>) | undefined
  let starting: Promise<void> | undefined
  const ensure = () => (starting ??= start().then((stop) => { teardown = stop }))
  // The files of this run (vitest's state API, experimental: when it tells nothing, start anyway).
  let files: string[] = []
  try {
    files = project.vitest.state.getPaths()
  } catch {}
  if (files.length === 0 || files.some(usesS3)) await ensure()
  else {
    // Watch mode: a later run may bring S3 tests; start before their workers fork.
    project.onTestsRerun(async (specs) => {
      if (specs.some((s) => usesS3(s.moduleId))) await ensure()
    })
  }
  return async () => {
    await starting?.catch(() => {})
    await teardown?.()
  }
}
