/**
 * Uploads whose requests land on other processes than the one holding the live digest: the request
 * is relayed to that process (http/forwarding.ts), so nothing is read back from the store while it
 * lives; when it died, the upload goes on elsewhere with a read-back. Real RGW, real processes.
 */
import { ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3'
import { createHmac, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBlob, sha256 } from './support/oci-client.js'
import { type FaultProxy, startFaultProxy } from './support/fault-proxy.js'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3, s3Client } from './support/s3.js'

const s3 = requireS3()
const MiB = 1024 * 1024
const SECRET = randomBytes(32).toString('hex')

/** Follows a Location exactly (path and query), on another process's base URL. */
const on = (base: string, location: string, extra = '') => {
  const u = new URL(location)
  return `${base}${u.pathname}${u.search}${extra ? (u.search ? '&' : '?') + extra : ''}`
}

/** A metric's value summed over its series on a process's public /metrics (0 when absent). */
async function metric(base: string, name: string, label = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  return text.split('\n').filter((l) => l.startsWith(name) && l.includes(label)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
}

/** Sends chunks of `bytes` to the processes in turn, each request to the next one; resolves to the last Location. */
async function rotate(bases: string[], location: string, bytes: Buffer, chunk: number, first: number): Promise<string> {
  let at = 0
  for (let i = first; at < bytes.length; i++) {
    const end = Math.min(bytes.length, at + chunk)
    const res = await fetch(on(bases[i % bases.length]!, location), {
      method: 'PATCH', body: bytes.subarray(at, end), headers: { 'Content-Range': `${at}-${end - 1}`, 'Content-Type': 'application/octet-stream', Connection: 'close' },
    })
    expect(res.status, await res.text()).toBe(202)
    expect(res.headers.get('range')).toBe(`0-${end - 1}`)
    location = res.headers.get('location')!
    at = end
  }
  return location
}

describe.skipIf(!s3)('three processes on one RGW bucket, every request of an upload on another', () => {
  const bucket = `forwarding-${randomBytes(4).toString('hex')}`
  let proxy: FaultProxy
  let nodes: Running[] = []
  const base = (i: number) => nodes[i % nodes.length]!.url
  /** Bytes of GETs of an upload's stored data (`…/data`, its tail `…/data.tail-…`); not its small `data.state` record. */
  const readBack = () => proxy.log.filter((e) => e.method === 'GET' && /\/_uploads\/[^/]+\/data(\.tail[^/?]*)?(\?|$)/.test(e.url)).reduce((sum, e) => sum + e.bytes, 0)

  beforeAll(async () => {
    await createBucket(bucket)
    proxy = await startFaultProxy({ target: s3!.endpoint })
    const env = {
      ...enlilS3Environment(bucket), REGISTRY_STORAGE_S3_REGIONENDPOINT: proxy.url, REGISTRY_STORAGE_S3_CHUNKSIZE: String(5 * MiB),
      ENLIL_WORKERS: '1', ENLIL_CLUSTER_SECRET: SECRET, ENLIL_CLUSTER_LEASE: '3s', ENLIL_METRICS_PUBLIC: 'true',
      ENLIL_STORAGE_MAINTENANCE_UPLOADWRITERLEASE: '8s', ...(process.env.DEBUG_FWD ? { REGISTRY_LOG_LEVEL: 'debug', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' } : {}),
    }
    nodes = await Promise.all([0, 1, 2].map(() => startEnlil('/nonexistent-fs-root', env)))
  })
  afterAll(async () => {
    if (process.env.DEBUG_FWD) for (const n of nodes) console.log(n.output())
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')))
    await proxy?.close()
    await deleteBucket(bucket)
  })

  async function expectPulled(repo: string, digest: string, size: number): Promise<void> {
    const get = await fetch(`${base(1)}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' })
    expect(get.status).toBe(307)
    const bytes = Buffer.from(await (await fetch(get.headers.get('location')!)).arrayBuffer())
    expect(bytes.length).toBe(size)
    expect(sha256(bytes)).toBe(digest)
  }

  it('POST, PATCHes and PUT each on the next process: relayed to the owner, nothing read back', async () => {
    // Chunks of whole parts: a shorter chunk leaves a tail object that the store driver reads back
    // to join to the next part, which is no digest read-back and would blur the count.
    const blob = randomBlob(25 * MiB)
    const post = await fetch(`${base(0)}/v2/fwd/rotate/blobs/uploads/`, { method: 'POST' })
    expect(post.status).toBe(202)
    const location = await rotate(nodes.map((n) => n.url), post.headers.get('location')!, blob.bytes, 5 * MiB, 1)
    const before = readBack()
    const put = await fetch(on(base(0), location, `digest=${blob.digest}`), { method: 'PUT' })
    expect(put.status, await put.text()).toBe(201)
    expect(put.headers.get('docker-content-digest')).toBe(blob.digest)
    expect(readBack()).toBe(0)
    expect(before).toBe(0)
    let relayed = 0
    for (const n of nodes) {
      expect(await metric(n.url, 'enlil_upload_readback_bytes_total')).toBe(0)
      relayed += await metric(n.url, 'enlil_upload_forwards_total', 'relayed')
    }
    // Five PATCHes on processes 1, 2, 0, 1, 2 and the PUT on 0: all but those on 0 (the owner) relayed.
    expect(relayed).toBe(4)
    await expectPulled('fwd/rotate', blob.digest, blob.bytes.length)
  }, 60_000)

  it('the hop\'s header is refused from clients, and the internal listener refuses what is not signed with the secret', async () => {
    const post = await fetch(`${base(0)}/v2/fwd/forged/blobs/uploads/`, { method: 'POST' })
    const location = post.headers.get('location')!
    const forged = await fetch(on(base(1), location), { method: 'PATCH', body: 'x', headers: { 'enlil-forward': `v1 ${Date.now()} 0123456789abcdef YQ YQ AAAA` } })
    expect(forged.status).toBe(403)
    expect(((await forged.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED')

    // The internal listeners, as announced in the bucket.
    const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'docker/registry/v2/_enlil/instances/' }))
    expect(listed.Contents?.length).toBe(3)
    const key = listed.Contents![0]!.Key!
    const announced = JSON.parse(await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString()) as { url: string }
    const id = key.split('/').pop()!
    const path = `${new URL(location).pathname}?_owner=${id}`
    const sign = (secret: string, ts: number) => {
      const fields = ['v1', String(ts), id, '', '']
      const mac = createHmac('sha256', secret).update([...fields, 'PATCH', path].join('\n')).digest('base64url')
      return `v1 ${ts} ${id}   ${mac}`
    }
    for (const header of [undefined, sign('another secret of the same length, not ours', Date.now()), sign(SECRET, Date.now() - 10 * 60_000), 'v1 garbage']) {
      const res = await fetch(`${announced.url}${path}`, { method: 'PATCH', body: 'x', headers: header ? { 'enlil-forward': header } : {} })
      expect(res.status, String(header)).toBe(403)
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED')
    }
    // Nothing reached the upload.
    const status = await fetch(on(base(2), location))
    expect(status.headers.get('range')).toBe('0-0')
  })

  it('the owner killed between requests: the upload goes on elsewhere, finished with a read-back', async () => {
    const blob = randomBlob(12 * MiB + 1)
    const post = await fetch(`${base(0)}/v2/fwd/killed/blobs/uploads/`, { method: 'POST' })
    let location = await rotate(nodes.map((n) => n.url), post.headers.get('location')!, blob.bytes.subarray(0, 6 * MiB), 6 * MiB, 1)
    await nodes[0]!.stop('SIGKILL')
    nodes = nodes.slice(1)
    // Its announcement still runs (3 s lease): the hop finds nobody listening and this process takes it.
    const rest = await fetch(on(nodes[1]!.url, location), { method: 'PATCH', body: blob.bytes.subarray(6 * MiB), headers: { 'Content-Range': `${6 * MiB}-${blob.bytes.length - 1}` } })
    expect(rest.status, await rest.text()).toBe(202)
    location = rest.headers.get('location')!
    const before = readBack()
    const put = await fetch(on(nodes[0]!.url, location, `digest=${blob.digest}`), { method: 'PUT' })
    expect(put.status, await put.text()).toBe(201)
    // The digest's read-back (at least the whole upload; tails joined to parts come on top).
    expect(readBack() - before).toBeGreaterThanOrEqual(blob.bytes.length)
    expect(await metric(nodes[1]!.url, 'enlil_upload_readback_bytes_total')).toBe(blob.bytes.length)
    await expectPulled('fwd/killed', blob.digest, blob.bytes.length)
  }, 60_000)

  it('the owner killed while a relayed PATCH streams: 503 UNAVAILABLE, and the upload resumes from its Range', async () => {
    const blob = randomBlob(24 * MiB)
    const [owner, edge] = nodes as [Running, Running]
    const post = await fetch(`${owner.url}/v2/fwd/midway/blobs/uploads/`, { method: 'POST' })
    let location = post.headers.get('location')!
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(on(edge.url, location), { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } }, (res) => {
        let body = ''
        res.on('data', (d: Buffer) => { body += d.toString() })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      let at = 0
      const step = () => {
        if (at >= 16 * MiB) return
        req.write(blob.bytes.subarray(at, at + MiB))
        at += MiB
        if (at === 12 * MiB) void owner.stop('SIGKILL').then(() => setTimeout(step, 200))
        else setTimeout(step, 20)
      }
      step()
    })
    expect(answer.status).toBe(503)
    expect(answer.body).toContain('UNAVAILABLE')
    // What the dead owner stored stays; its writer hold lapses (8 s): resume from Range on the survivor.
    let done = false
    for (let attempt = 0; attempt < 80 && !done; attempt++) {
      const status = await fetch(on(edge.url, location))
      expect(status.status).toBe(204)
      const from = Number(status.headers.get('range')!.split('-')[1]) + (status.headers.get('range') === '0-0' ? 0 : 1)
      const res = await fetch(on(edge.url, location), { method: 'PATCH', body: blob.bytes.subarray(from), headers: { 'Content-Range': `${from}-${blob.bytes.length - 1}` } })
      await res.arrayBuffer()
      if (res.status === 202) {
        location = res.headers.get('location')!
        done = true
      } else {
        expect(res.status).toBe(416)
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    expect(done).toBe(true)
    const put = await fetch(on(edge.url, location, `digest=${blob.digest}`), { method: 'PUT' })
    expect(put.status, await put.text()).toBe(201)
    expect(await metric(edge.url, 'enlil_upload_readback_bytes_total')).toBeGreaterThan(0)
    nodes = [edge]
    await expectPulled('fwd/midway', blob.digest, blob.bytes.length)
  }, 60_000)
})

describe('enlil serve --workers 2 on the filesystem', () => {
  const dir = tempDir('forwarding-workers')
  let enlil: Running | undefined
  afterAll(async () => {
    await enlil?.stop('SIGKILL')
    removeDir(dir)
  })

  it('requests of one upload spread over both workers are relayed to the owner: nothing read back; the hop\'s header is refused', async () => {
    enlil = await startEnlil(join(dir, 'data'), { ENLIL_WORKERS: '2', ENLIL_METRICS_PUBLIC: 'true' })
    const url = enlil.url
    for (let n = 0; n < 4; n++) {
      const blob = randomBlob(3 * MiB + n)
      // New connections each time, so the cluster spreads the requests over both workers.
      const post = await fetch(`${url}/v2/workers/fwd/blobs/uploads/`, { method: 'POST', headers: { Connection: 'close' } })
      const location = await rotate([url], post.headers.get('location')!, blob.bytes, MiB, 0)
      const put = await fetch(on(url, location, `digest=${blob.digest}`), { method: 'PUT', headers: { Connection: 'close' } })
      expect(put.status, await put.text()).toBe(201)
      const got = await fetch(`${url}/v2/workers/fwd/blobs/${blob.digest}`)
      expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(blob.digest)
    }
    // The primary sums the workers' metrics: PATCHes and PUTs landed on the other worker and were relayed.
    const metrics = (name: string, label = '') => metric(url, name, label)
    expect(await metrics('enlil_upload_forwards_total', 'relayed')).toBeGreaterThan(0)
    expect(await metrics('enlil_upload_readback_bytes_total')).toBe(0)

    const post = await fetch(`${url}/v2/workers/fwd/blobs/uploads/`, { method: 'POST' })
    const forged = await fetch(on(url, post.headers.get('location')!), { method: 'PATCH', body: 'x', headers: { 'enlil-forward': 'v1 0 0123456789abcdef YQ YQ AAAA' } })
    expect(forged.status).toBe(403)
  }, 60_000)
})
