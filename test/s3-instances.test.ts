/**
 * Several enlil processes on one bucket are one registry: every request of an upload can land on a
 * different process (what a load balancer in front of Fly machines does), and each finishes it.
 */
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { imageManifest, OCI_MANIFEST, putManifest, randomBlob, sha256 } from './support/oci-client.js'
import { type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()
const MiB = 1024 * 1024

describe.skipIf(!s3)('three enlil processes on one bucket', () => {
  const bucket = `instances-${randomBytes(4).toString('hex')}`
  let nodes: Running[] = []
  beforeAll(async () => {
    await createBucket(bucket)
    const env = { ...enlilS3Environment(bucket), REGISTRY_STORAGE_S3_CHUNKSIZE: String(5 * MiB) }
    nodes = await Promise.all([0, 1, 2].map(() => startEnlil('/nonexistent-fs-root', env)))
  })
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    await deleteBucket(bucket)
  })
  /** The i-th request of a flow goes to node i mod 3. */
  const node = (i: number) => nodes[i % 3]!.url

  async function startUpload(repo: string): Promise<string> {
    const res = await fetch(`${node(0)}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    expect(res.status).toBe(202)
    return new URL(res.headers.get('location')!).pathname
  }

  async function expectPulled(repo: string, digest: string, size: number): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const head = await fetch(`${node(i)}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.headers.get('content-length')).toBe(String(size))
      // The GET answers 307 to a presigned URL on the store; fetch follows it like docker does.
      const get = await fetch(`${node(i)}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' })
      expect(get.status).toBe(307)
      const bytes = Buffer.from(await (await fetch(get.headers.get('location')!)).arrayBuffer())
      expect(bytes.length).toBe(size)
      expect(sha256(bytes)).toBe(digest)
    }
  }

  it('monolithic: POST on one process, PUT with the whole body on another', async () => {
    const blob = randomBlob(7 * MiB + 3)
    const path = await startUpload('multi/mono')
    const put = await fetch(`${node(1)}${path}?digest=${blob.digest}`, { method: 'PUT', body: blob.bytes, headers: { 'Content-Type': 'application/octet-stream' } })
    expect(put.status).toBe(201)
    await expectPulled('multi/mono', blob.digest, blob.bytes.length)
  })

  it('streamed: POST, one chunked-encoding PATCH and the PUT each on a different process', async () => {
    const blob = randomBlob(12 * MiB + 5)
    const path = await startUpload('multi/stream')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${node(1)}${path}`, { method: 'PATCH', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      for (let o = 0; o < blob.bytes.length; o += 1_000_000) req.write(blob.bytes.subarray(o, o + 1_000_000))
      req.end()
    })
    expect(status).toBe(202)
    const put = await fetch(`${node(2)}${path}?digest=${blob.digest}`, { method: 'PUT' })
    expect(put.status).toBe(201)
    await expectPulled('multi/stream', blob.digest, blob.bytes.length)
  })

  it('chunked: chunks under and over the part size, each on a different process, then the PUT', async () => {
    const sizes = [3 * MiB, 4 * MiB, 6 * MiB + 11, 1024, 2 * MiB]
    const bytes = randomBytes(sizes.reduce((a, b) => a + b, 0))
    const digest = sha256(bytes)
    const path = await startUpload('multi/chunked')
    let offset = 0
    for (const [i, size] of sizes.entries()) {
      const res = await fetch(`${node(i + 1)}${path}`, {
        method: 'PATCH', body: bytes.subarray(offset, offset + size),
        headers: { 'Content-Range': `${offset}-${offset + size - 1}`, 'Content-Type': 'application/octet-stream' },
      })
      expect(res.status).toBe(202)
      offset += size
      expect(res.headers.get('range')).toBe(`0-${offset - 1}`)
      // Any process reports the same progress.
      const status = await fetch(`${node(i + 2)}${path}`)
      expect(status.headers.get('range')).toBe(`0-${offset - 1}`)
    }
    // A chunk out of order is refused by whichever process gets it.
    const stale = await fetch(`${node(0)}${path}`, { method: 'PATCH', body: 'x', headers: { 'Content-Range': '0-0' } })
    expect(stale.status).toBe(416)
    const wrong = await fetch(`${node(1)}${path}?digest=sha256:${'1'.repeat(64)}`, { method: 'PUT' })
    expect(wrong.status).toBe(400)
    const put = await fetch(`${node(2)}${path}?digest=${digest}`, { method: 'PUT' })
    expect(put.status).toBe(201)
    await expectPulled('multi/chunked', digest, bytes.length)
  })

  it('manifests, tags and mounts written on one process are served by the others', async () => {
    const config = randomBlob(200)
    const layer = randomBlob(300_000)
    for (const [i, blob] of [config, layer].entries()) {
      const res = await fetch(`${node(i)}/v2/multi/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes })
      expect(res.status).toBe(201)
    }
    const manifest = imageManifest(config, [layer])
    const digest = await putManifest(node(2), 'multi/app', 'v1', manifest, OCI_MANIFEST)
    const mount = await fetch(`${node(1)}/v2/multi/copy/blobs/uploads/?mount=${layer.digest}&from=multi/app`, { method: 'POST' })
    expect(mount.status).toBe(201)
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${node(i)}/v2/multi/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
      expect(res.status).toBe(200)
      expect(await res.text()).toBe(manifest)
      expect(res.headers.get('docker-content-digest')).toBe(digest)
      expect((await fetch(`${node(i)}/v2/multi/copy/blobs/${layer.digest}`, { method: 'HEAD' })).status).toBe(200)
    }
    const tags = await (await fetch(`${node(0)}/v2/multi/app/tags/list`)).json()
    expect(tags).toEqual({ name: 'multi/app', tags: ['v1'] })
    expect(createHash('sha256').update(manifest).digest('hex')).toBe(digest.slice(7))
  })
})
