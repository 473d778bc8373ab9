/**
 * S3 requests per registry operation, counted by a proxy in front of Ceph RGW (the one
 * `npm run bench -- --store s3 --count-requests` uses): upper bounds for one enlil process with warm
 * caches. Pulls by digest and blob HEADs cost one request, a pull by tag one (tags are never
 * cached), a mount one, a manifest PUT three; enlil's clocked requests (the GC runs listing, the
 * read-only marker) are bounded by time, not per operation.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
// @ts-expect-error plain JavaScript shared with the benchmark (test/bench/), no type declarations
import { measureRequestCounts, startCountingProxy } from './bench/request-counts.mjs'
import { freePort, type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()

interface Counted { requests: number; periodic: number; calls: Record<string, number> }
interface CountingProxy { url: string; counts: Map<string, number>; close(): Promise<void> }

describe.skipIf(!s3)('S3 requests per registry operation (one instance, warm caches)', () => {
  const bucket = `counts-${randomBytes(4).toString('hex')}`
  let proxy: CountingProxy
  let enlil: Running
  let metricsUrl: string

  beforeAll(async () => {
    await createBucket(bucket)
    proxy = await startCountingProxy(s3!.endpoint)
    const metricsPort = await freePort()
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
    enlil = await startEnlil('/nonexistent', {
      ENLIL_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      ...enlilS3Environment(bucket),
      REGISTRY_STORAGE_S3_REGIONENDPOINT: proxy.url,
      ENLIL_WORKERS: '1',
    })
  })
  afterAll(async () => {
    await enlil?.stop()
    await proxy?.close()
    await deleteBucket(bucket)
  })

  it('pulls, HEADs, mounts and manifest PUTs stay within their request budgets', { timeout: 120_000 }, async () => {
    const started = Date.now()
    const periodicBefore = periodicTotal(proxy)
    // The uploads' own budgets are tested with the upload path; here the reads, mounts and manifests.
    const budget: Record<string, number> = {
      'manifest GET by tag': 1, // the tag's link; the bytes are cached
      'manifest HEAD by tag': 1,
      'manifest GET by digest': 1, // the revision link (a deleted manifest is seen at once)
      'manifest HEAD by digest': 1,
      // The link (an unlink is seen at once), plus the bytes' existence asked again once its 5 s
      // belief lapsed (a slow machine), plus for a HEAD the link's touch for GC at most once a second.
      'blob HEAD': 2,
      'blob GET': 2, // the presigned redirect costs no request
      // The new link (the source's was seen moments ago), and the new repository's catalog marker
      // (once per repository and process a minute): each mount here goes to a repository of its own.
      mount: 2,
      'manifest PUT': 3, // bytes, revision link, tag: the blobs were HEADed just before
      'tags list': 1,
    }
    const counts = await measureRequestCounts({ url: enlil.url, proxy, repeat: 5, operations: Object.keys(budget) }) as Record<string, Counted>
    const seconds = (Date.now() - started) / 1000
    const over = Object.entries(budget).filter(([op, max]) => counts[op]!.requests > max)
    expect(over.map(([op, max]) => `${op}: ${JSON.stringify(counts[op]!.calls)} > ${max}`)).toEqual([])
    // The link's HEAD is asked every time; the touch that may follow it is not.
    expect(counts['blob HEAD']!.calls.HeadObject).toBeLessThanOrEqual(1)
    expect(counts['manifest PUT']!.calls.HeadObject ?? 0).toBe(0)
    // Clocked requests: the GC runs listing once a second, the read-only marker once in 3 s, at most.
    expect(periodicTotal(proxy) - periodicBefore).toBeLessThanOrEqual(Math.ceil(seconds) * 2 + 4)
  })

  it('enlil_storage_requests_total counts what reached the store, by S3 operation', { timeout: 60_000 }, async () => {
    const scrape = async () => {
      const text = await (await fetch(metricsUrl)).text()
      const byOp = new Map<string, number>()
      for (const m of text.matchAll(/^enlil_storage_requests_total\{op="([A-Za-z0-9]+)"\} (\d+)$/gm)) byOp.set(m[1]!, Number(m[2]))
      return byOp
    }
    const proxied = () => {
      const byOp = new Map<string, number>()
      for (const [op, n] of proxy.counts) {
        const name = op.replace(/ \[.*\]$/, '')
        byOp.set(name, (byOp.get(name) ?? 0) + n)
      }
      return byOp
    }
    // Quiet for a moment (no request in flight), then both sides agree call by call.
    await new Promise((ok) => setTimeout(ok, 500))
    const [metric, seen] = [await scrape(), proxied()]
    expect(metric.get('HeadObject')).toBeGreaterThan(0)
    expect(Object.fromEntries(metric)).toEqual(Object.fromEntries(seen))
  })
})

function periodicTotal(proxy: CountingProxy): number {
  let n = 0
  for (const [op, count] of proxy.counts) if (op.includes('[')) n += count
  return n
}
