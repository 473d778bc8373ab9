/**
 * A measurement, not part of `npm test`: `npm run bench:gc` (vitest.gc-bench.config.ts runs it).
 * Seeds a registry on each store: 900 tagged images of a config and 8 layers in 50 repositories,
 * plus 1,000 unreferenced blobs with their layer links (`ENLIL_GC_BENCH_ORPHANS=100000` for more;
 * `ENLIL_GC_BENCH_STORES=s3` for one store), runs `enlil gc --grace 0s` as its own process under
 * /usr/bin/time, and prints the wall time, peak RSS and deletion rate. Asserts what was collected,
 * never timings.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { digestOf } from '../../src/oci/digest.js'
import { forEachLimit } from '../../src/registry/parallel.js'
import { paths } from '../../src/registry/paths.js'
import { createDriver } from '../../src/server/storage.js'
import type { StorageDriver } from '../../src/storage/driver.js'
import { removeDir, requirePart, ROOT, tempDir } from '../support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from '../support/s3.js'

const IMAGES = 900
const LAYERS = 8
const ORPHANS = Number(process.env.ENLIL_GC_BENCH_ORPHANS ?? 1000)
const STORES = (process.env.ENLIL_GC_BENCH_STORES ?? 'filesystem,s3').split(',')
const REPOS = 50

/** Writes the registry straight into the layout (what pushes leave behind), 16 writes in flight. */
async function seed(driver: StorageDriver): Promise<void> {
  const blob = async (repo: string, size: number) => {
    const bytes = randomBytes(size)
    const d = digestOf(bytes)
    await driver.putContent(paths.blobData(d), bytes)
    await driver.putOnce(paths.layerLink(repo, d), d.value)
    return { digest: d.value, size }
  }
  await forEachLimit(Array.from({ length: IMAGES }, (_, i) => i), 16, async (i) => {
    const repo = `bench/r${i % REPOS}`
    const config = await blob(repo, 300)
    const layers = []
    for (let l = 0; l < LAYERS; l++) layers.push(await blob(repo, 2048))
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    }))
    const d = digestOf(body)
    await driver.putContent(paths.blobData(d), body)
    await driver.putOnce(paths.revisionLink(repo, d), d.value)
    await driver.putOnce(paths.tagIndexLink(repo, `t${i}`, d), d.value)
    await driver.putContent(paths.tagCurrentLink(repo, `t${i}`), d.value)
  })
  await forEachLimit(Array.from({ length: ORPHANS }, (_, i) => i), 32, async (i) => { await blob(`bench/r${i % REPOS}`, 1024) })
}

async function timedGc(env: Record<string, string>): Promise<{ code: number | null; seconds: number; maxRssMiB: number; summary: string; rate: string }> {
  const child = spawn('/usr/bin/time', ['-f', 'TIME %e %M', process.execPath, join(ROOT, 'dist/main.js'), 'gc', '--grace', '0s'], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((ok) => child.on('exit', ok))
  const m = /TIME ([\d.]+) (\d+)/.exec(stderr)
  return {
    code, seconds: Number(m?.[1]), maxRssMiB: Math.round(Number(m?.[2]) / 1024),
    summary: stderr.split('\n').find((l) => l.includes('blobs scanned')) ?? stderr,
    rate: stderr.split('\n').filter((l) => l.includes('per second')).at(-1) ?? '',
  }
}

async function bench(store: string, env: Record<string, string>): Promise<void> {
  const driver = await createDriver(loadConfig(env))
  const seeding = Date.now()
  await seed(driver)
  console.log(`gc bench ${store}: seeded ${IMAGES * (LAYERS + 2) + ORPHANS} blobs in ${((Date.now() - seeding) / 1000).toFixed(1)} s`)
  const run = await timedGc(env)
  console.log(`gc bench ${store}: ${run.seconds} s, peak RSS ${run.maxRssMiB} MiB\n  ${run.summary}\n  ${run.rate}`)
  expect(run.code, run.summary).toBe(0)
  expect(run.summary).toContain(`${IMAGES * (LAYERS + 2) + ORPHANS} blobs scanned; deleted ${ORPHANS} blobs`)
}

describe.skipIf(!requirePart(existsSync('/usr/bin/time'), 'GNU time (peak RSS of the gc process)', 'apt-get install time'))(`gc time and memory for ${IMAGES * (LAYERS + 2) + ORPHANS} blobs`, () => {
  const cleanups: (() => Promise<void> | void)[] = []
  afterAll(async () => { for (const c of cleanups) await c() })

  it.runIf(STORES.includes('filesystem'))('filesystem', { timeout: 3_600_000 }, async () => {
    const root = tempDir('gc-bench')
    cleanups.push(() => removeDir(root))
    await bench('filesystem', { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root })
  })

  it.runIf(STORES.includes('s3'))('s3 (Ceph RGW)', { timeout: 3_600_000 }, async () => {
    if (!requireS3()) return
    const bucket = `gc-bench-${createHash('sha256').update(String(Date.now())).digest('hex').slice(0, 8)}`
    await createBucket(bucket)
    cleanups.push(() => deleteBucket(bucket))
    await bench('s3', enlilS3Environment(bucket))
  })
})
