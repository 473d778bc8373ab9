/**
 * vitest globalSetup: starts one Ceph RGW (a real S3 server) for the whole run when Debian's ceph
 * packages are installed, and hands its address to the test processes through the environment
 * (ENLIL_TEST_S3_*; test/support/s3.ts reads it). Without ceph, S3 tests skip saying why, or fail
 * under CI=true. An ENLIL_TEST_S3_ENDPOINT already set (a server you run yourself) is used as is.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '../support/processes.js'

const run = promisify(execFile)
const SCRIPT = resolve(import.meta.dirname, '../support/ceph-rgw.sh')
const BINARIES = ['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/radosgw', '/usr/bin/radosgw-admin', '/usr/bin/ceph']

/** A base port with 64 free ports above it, for the monitor and the messenger window. */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000)
    const probes = await Promise.all(Array.from({ length: 64 }, (_, i) => new Promise<boolean>((ok) => {
      const srv = createServer()
      srv.once('error', () => ok(false))
      srv.listen(base + i, '127.0.0.1', () => srv.close(() => ok(true)))
    })))
    if (probes.every(Boolean)) return base
  }
  throw new Error('no free port range for the Ceph monitor')
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.ENLIL_TEST_S3_ENDPOINT) return undefined
  if (!BINARIES.every((b) => existsSync(b))) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'enlil-rgw-'))
  const s3Port = await freePort()
  const monPort = await freeRange()
  const access = 'enlil-test-access'
  const secret = 'enlil-test-secret-key'
  const started = Date.now()
  try {
    await run('bash', [SCRIPT, 'start', dir, String(s3Port), String(monPort), access, secret], { timeout: 120_000 })
  } catch (err) {
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => {})
    throw new Error(`Ceph RGW did not start: ${(err as Error).message}\n(logs were in ${dir}/log)`)
  }
  process.env.ENLIL_TEST_S3_ENDPOINT = `http://127.0.0.1:${s3Port}`
  process.env.ENLIL_TEST_S3_REGION = 'us-east-1'
  process.env.ENLIL_TEST_S3_ACCESS_KEY = access
  process.env.ENLIL_TEST_S3_SECRET_KEY = secret
  process.env.ENLIL_TEST_S3_DNS_NAME = 's3.test'
  console.log(`Ceph RGW (S3) ready on 127.0.0.1:${s3Port} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return async () => {
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}
