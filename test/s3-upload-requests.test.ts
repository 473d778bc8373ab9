/**
 * What a chunked push costs on S3, counted through the test proxy in front of a real Ceph RGW: each
 * PATCH of 5 MiB or more is a part of its own (as many parts as PATCHes, no tail object written or
 * read back), and the store requests per PATCH stay under the bounds the README gives. The pushed
 * blob pulls byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FaultProxy, type ProxiedRequest, startFaultProxy } from './support/fault-proxy.js'
import { type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()
const MiB = 1024 * 1024
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe.skipIf(!s3)('a chunked push on S3, request by request', () => {
  const bucket = `requests-${randomBytes(4).toString('hex')}`
  let proxy: FaultProxy
  let enlil: Running
  beforeAll(async () => {
    await createBucket(bucket)
    proxy = await startFaultProxy({ target: s3!.endpoint })
    enlil = await startEnlil('/nonexistent', {
      ...enlilS3Environment(bucket), REGISTRY_STORAGE_S3_REGIONENDPOINT: proxy.url,
      REGISTRY_STORAGE_REDIRECT_DISABLE: 'true', ENLIL_WORKERS: '1',
    })
  })
  afterAll(async () => {
    await enlil?.stop()
    await proxy?.close()
    await deleteBucket(bucket)
  })

  async function counted<T>(work: () => Promise<T>): Promise<{ result: T; requests: ProxiedRequest[] }> {
    const from = proxy.log.length
    const result = await work()
    return { result, requests: proxy.log.slice(from) }
  }
  const parts = (rs: ProxiedRequest[]) => rs.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url))
  const tails = (rs: ProxiedRequest[]) => rs.filter((r) => r.url.includes('.tail'))

  it('three PATCHes of 6, 8 and 7 MiB are three parts; each PATCH costs its part and at most 7 more requests', async () => {
    const chunks = [randomBytes(6 * MiB), randomBytes(8 * MiB), randomBytes(7 * MiB)]
    const blob = Buffer.concat(chunks)
    const post = await fetch(`${enlil.url}/v2/req/app/blobs/uploads/`, { method: 'POST' })
    expect(post.status).toBe(202)
    let location = post.headers.get('location')!
    let at = 0
    const perPatch: ProxiedRequest[][] = []
    for (const chunk of chunks) {
      const { result: res, requests } = await counted(() => fetch(new URL(location, enlil.url), {
        method: 'PATCH', body: chunk,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${at}-${at + chunk.length - 1}` },
      }))
      expect(res.status).toBe(202)
      at += chunk.length
      expect(res.headers.get('range')).toBe(`0-${at - 1}`)
      location = res.headers.get('location')!
      perPatch.push(requests)
    }
    // The read-only marker, read now and then by every request (not the upload's cost), aside.
    for (const [i, requests] of perPatch.map((rs) => rs.filter((r) => !r.url.includes('/_enlil/'))).entries()) {
      expect(parts(requests)).toHaveLength(1)
      expect(tails(requests)).toEqual([])
      // The part and 7 more: the session's marker and state, the claim (and, after the first PATCH,
      // the LIST of claims; the first starts the multipart upload instead), the state under the
      // claim, the state write, the claim's release.
      expect(requests.length, `PATCH ${i + 1}: ${requests.map((r) => `${r.method} ${r.url}`).join(', ')}`).toBeLessThanOrEqual(8)
    }
    const digest = sha256(blob)
    const { result: put, requests: commit } = await counted(() => fetch(new URL(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, enlil.url), { method: 'PUT' }))
    expect(put.status).toBe(201)
    expect(tails(commit)).toEqual([])
    const pulled = Buffer.from(await (await fetch(`${enlil.url}/v2/req/app/blobs/${digest}`)).arrayBuffer())
    expect(sha256(pulled)).toBe(digest)
  })
})
