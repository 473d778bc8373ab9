/**
 * The catalog at scale on S3 (Ceph RGW): thousands of repositories written straight into the bucket with
 * their index markers, then `/v2/_catalog?n=100` paged to the end by its Link headers, through a
 * counting proxy. Every repository once, in order, and each page costs a bounded number of store
 * requests (a listing of the index, a listing of the page's repositories), whatever page it is:
 * no walk. Timings
 * are measured by test/ui/measure.mjs, never asserted.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../src/observe/log.js'
import { encodeName } from '../src/registry/catalog-index.js'
import { createRegistry } from '../src/registry/index.js'
import { forEachLimit } from '../src/registry/parallel.js'
import { paths } from '../src/registry/paths.js'
import { createApp } from '../src/server/app.js'
import { createS3Driver } from '../src/storage/s3.js'
import { type FaultProxy, startFaultProxy } from './support/fault-proxy.js'
import { createBucket, deleteBucket, requireS3, s3Client } from './support/s3.js'

const s3 = requireS3()
const bucket = `catalog-scale-${randomBytes(4).toString('hex')}`
// 10,000 with ENLIL_CATALOG_SCALE=10000 (the store takes 20,000 PUTs to fill: minutes on a busy
// machine); the bounds per page are the same whatever the total, which is what this checks (1,200:
// more than one listing of the index).
const REPOSITORIES = Number(process.env.ENLIL_CATALOG_SCALE ?? 1_200)
const names = Array.from({ length: REPOSITORIES }, (_, i) => `team-${String(i % 100).padStart(2, '0')}/service-${String(i).padStart(5, '0')}`)
const DIGEST = `sha256:${'ab'.repeat(32)}`

describe.skipIf(!s3)(`catalog of ${REPOSITORIES.toLocaleString('en-US')} repositories on S3`, () => {
  let proxy: FaultProxy
  beforeAll(async () => {
    await createBucket(bucket)
    proxy = await startFaultProxy({ target: s3!.endpoint })
    const client = s3Client()
    const keys = [
      ...names.flatMap((name) => [paths.tagCurrentLink(name, 'latest'), `${paths.catalogIndex}/${encodeName(name)}`]),
      paths.catalogBuilt,
    ]
    await forEachLimit(keys, 64, async (key) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key.includes('/_manifests/') ? DIGEST : '' }))
    })
  }, 300_000)
  afterAll(async () => {
    await proxy?.close()
    await deleteBucket(bucket)
  }, 300_000)

  it('pages /v2/_catalog?n=100 to the end, each page an index listing and a listing of its repositories', async () => {
    const driver = createS3Driver({
      bucket, region: s3!.region, endpoint: proxy.url, forcePathStyle: true, accessKeyId: s3!.accessKey, secretAccessKey: s3!.secretKey,
    })
    const app = createApp({ registry: createRegistry(driver), log: silentLogger, accessLog: false })
    const seen: string[] = []
    const costs: number[] = []
    let next: string | undefined = '/v2/_catalog?n=100'
    for (let page = 0; next && page < 200; page++) {
      const before = proxy.counts.requests
      const res = await app.request(`http://localhost${next}`)
      expect(res.status).toBe(200)
      const body = (await res.json()) as { repositories: string[] }
      expect(body.repositories.length).toBeLessThanOrEqual(100)
      seen.push(...body.repositories)
      costs.push(proxy.counts.requests - before)
      next = res.headers.get('link')?.match(/<([^>]+)>/)?.[1]
    }
    expect(seen).toEqual([...names].sort())
    expect(costs.length).toBe(REPOSITORIES / 100)
    // The index is listed from `last` (1,000 names a request: a page crossing a boundary takes
    // two) and the 101 names asked for (one tells whether a next page exists) are confirmed by one
    // flat listing of their keys; the first page also reads whether the index is complete.
    expect(costs[0]).toBeLessThanOrEqual(1 + 2 + 1)
    for (const cost of costs.slice(1)) expect(cost).toBeLessThanOrEqual(2 + 1)
  }, 300_000)
})
