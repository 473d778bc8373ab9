/**
 * S3 faults between enlil and the store are absorbed: through a fault-injecting proxy in front of
 * Ceph RGW (test/support/fault-proxy.ts) a push/pull workload sees no 5xx but 503, and every
 * acknowledged blob and manifest comes back byte for byte; a GetObject body reset halfway resumes
 * where it stopped; a store that fails every read for good is a 503 UNAVAILABLE with Retry-After.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FaultProxy, type FaultRule, seededRandom, startFaultProxy } from './support/fault-proxy.js'
import { imageManifest, OCI_MANIFEST, randomBlob, sha256, type Blob } from './support/oci-client.js'
import { type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()
const KiB = 1024
const MiB = 1024 * KiB

/** A GetObject of a key ending in `suffix` (the SDK marks each operation with `x-id`). */
const getObject = (suffix: RegExp): FaultRule['match'] => (req) =>
  req.method === 'GET' && req.url.includes('x-id=GetObject') && suffix.test(req.url.split('?')[0]!)
const anyGetObject = getObject(/./)
const blobKey = (digest: string) => new RegExp(`/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data$`)

interface Fetched { status: number; headers: Headers; bytes: Buffer }

async function fetchAll(url: string, init: RequestInit = {}): Promise<Fetched> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) })
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
}

async function pushMonolithic(base: string, repo: string, blob: Blob): Promise<Fetched> {
  return fetchAll(`${base}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST', body: blob.bytes, headers: { 'Content-Type': 'application/octet-stream' },
  })
}

describe.skipIf(!s3)('S3 faults between enlil and the store', () => {
  const bucket = `faults-${randomBytes(4).toString('hex')}`
  let proxy: FaultProxy
  let enlil: Running

  beforeAll(async () => {
    await createBucket(bucket)
    proxy = await startFaultProxy({ target: s3!.endpoint, seed: 17 })
    enlil = await startEnlil('/nonexistent', {
      ...enlilS3Environment(bucket),
      REGISTRY_STORAGE_S3_REGIONENDPOINT: proxy.url,
      // Blob bytes stream through enlil (and the proxy), not to the client by presigned redirect.
      REGISTRY_STORAGE_REDIRECT_DISABLE: 'true',
      ENLIL_WORKERS: '2',
    })
  })
  afterAll(async () => {
    await enlil?.stop()
    await proxy?.close()
    await deleteBucket(bucket)
  })

  describe('a body that breaks off once', () => {
    let blob: Blob
    beforeAll(async () => {
      blob = randomBlob(2 * MiB + 123)
      expect((await pushMonolithic(enlil.url, 'once/app', blob)).status).toBe(201)
      const config = randomBlob(200)
      expect((await pushMonolithic(enlil.url, 'once/app', config)).status).toBe(201)
      const put = await fetchAll(`${enlil.url}/v2/once/app/manifests/v1`, {
        method: 'PUT', body: imageManifest(config, [blob]), headers: { 'Content-Type': OCI_MANIFEST },
      })
      expect(put.status).toBe(201)
    })

    it('a blob GET whose GetObject body is reset halfway still gets every byte: the rest comes by a ranged GET', async () => {
      const from = proxy.log.length
      const remove = proxy.addRule({ match: getObject(blobKey(blob.digest)), fault: 'reset', times: 1, at: 0.5 })
      try {
        const got = await fetchAll(`${enlil.url}/v2/once/app/blobs/${blob.digest}`)
        expect(got.status).toBe(200)
        expect(got.bytes.length).toBe(blob.bytes.length)
        expect(sha256(got.bytes)).toBe(blob.digest)
      } finally {
        remove()
      }
      const gets = proxy.log.slice(from).filter((r) => r.method === 'GET' && blobKey(blob.digest).test(r.url.split('?')[0]!))
      expect(gets[0]?.fault).toBe('reset')
      expect(gets[0]?.range).toBeUndefined()
      const resumed = /^bytes=(\d+)-(\d+)$/.exec(gets[1]?.range ?? '')
      expect(resumed).not.toBeNull()
      expect(Number(resumed![1])).toBeGreaterThan(0)
      expect(Number(resumed![1])).toBeLessThan(blob.bytes.length)
      expect(Number(resumed![2])).toBe(blob.bytes.length - 1)
    })

    it('a Range GET resumes inside its range', async () => {
      const [start, end] = [1000, 1_500_999]
      const from = proxy.log.length
      const remove = proxy.addRule({ match: getObject(blobKey(blob.digest)), fault: 'reset', times: 1, at: 0.5 })
      try {
        const got = await fetchAll(`${enlil.url}/v2/once/app/blobs/${blob.digest}`, { headers: { Range: `bytes=${start}-${end}` } })
        expect(got.status).toBe(206)
        expect(got.bytes.equals(blob.bytes.subarray(start, end + 1))).toBe(true)
      } finally {
        remove()
      }
      const ranges = proxy.log.slice(from).filter((r) => blobKey(blob.digest).test(r.url.split('?')[0]!) && r.range).map((r) => r.range)
      expect(ranges[0]).toBe(`bytes=${start}-${end}`)
      expect(ranges[1]).toMatch(new RegExp(`^bytes=\\d+-${end}$`))
      expect(Number(/=(\d+)-/.exec(ranges[1]!)![1])).toBeGreaterThan(start)
    })

    it('a manifest GET and HEAD whose tag link is reset mid-body read it again', async () => {
      for (const method of ['GET', 'HEAD']) {
        const remove = proxy.addRule({ match: getObject(/\/_manifests\/tags\/v1\/current\/link$/), fault: 'reset', times: 1, at: 0.5 })
        const resets = proxy.counts.reset
        try {
          const got = await fetchAll(`${enlil.url}/v2/once/app/manifests/v1`, { method, headers: { Accept: OCI_MANIFEST } })
          expect(got.status).toBe(200)
          expect(got.headers.get('docker-content-digest')).toMatch(/^sha256:/)
        } finally {
          remove()
        }
        expect(proxy.counts.reset).toBe(resets + 1)
      }
    })
  })

  describe('a store that fails every read for good', () => {
    const layer = randomBlob(300 * KiB)
    beforeAll(async () => {
      const config = randomBlob(150)
      for (const b of [config, layer]) expect((await pushMonolithic(enlil.url, 'down/app', b)).status).toBe(201)
      const put = await fetchAll(`${enlil.url}/v2/down/app/manifests/v1`, {
        method: 'PUT', body: imageManifest(config, [layer]), headers: { 'Content-Type': OCI_MANIFEST },
      })
      expect(put.status).toBe(201)
    })

    async function expectUnavailable(): Promise<void> {
      const get = await fetchAll(`${enlil.url}/v2/down/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
      expect(get.status).toBe(503)
      expect(get.headers.get('retry-after')).toMatch(/^\d+$/)
      expect((JSON.parse(get.bytes.toString()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAVAILABLE')
      const head = await fetchAll(`${enlil.url}/v2/down/app/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } })
      expect(head.status).toBe(503)
      expect(head.headers.get('retry-after')).toMatch(/^\d+$/)
    }

    it('every GetObject body reset: a manifest GET and HEAD are 503 UNAVAILABLE with Retry-After, not 500', async () => {
      const remove = proxy.addRule({ match: anyGetObject, fault: 'reset' })
      try {
        await expectUnavailable()
        // A blob's headers are out before its bytes fail for good: the connection is cut, never a short 200.
        await expect(fetchAll(`${enlil.url}/v2/down/app/blobs/${layer.digest}`)).rejects.toThrow()
      } finally {
        remove()
      }
    })

    it('every request SlowDown: 503 UNAVAILABLE with Retry-After after the SDK retries', async () => {
      const remove = proxy.addRule({ match: () => true, fault: 'slowDown' })
      try {
        await expectUnavailable()
      } finally {
        remove()
      }
      // And back to normal once the store is.
      expect((await fetchAll(`${enlil.url}/v2/down/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })).status).toBe(200)
    })
  })

  it('a push/pull workload under SlowDown, InternalError, resets mid-body and held responses: no 5xx but 503, nothing lost or corrupt', async () => {
    const IMAGES = 20
    const pick = seededRandom(20_260_117)
    const size = () => 100 * KiB + Math.floor(pick() * (3 * MiB - 100 * KiB))
    const images = Array.from({ length: IMAGES }, (_, i) => {
      const config = randomBlob(150 + Math.floor(pick() * 300))
      const layers = [randomBlob(size()), randomBlob(size())]
      return { repo: `work/img-${i}`, chunked: i % 2 === 1, config, layers, manifest: imageManifest(config, layers) }
    })

    const tally = { requests: 0, got503: 0, cut: 0, other5xx: [] as string[], retried: 0, failed: [] as string[], corrupt: [] as string[], acknowledged: 0 }
    /** One HTTP request, counted; a cut connection (or a body that fails to arrive) is `cut`. */
    async function send(what: string, url: string, init: RequestInit = {}): Promise<Fetched | 'cut'> {
      tally.requests++
      let got: Fetched
      try {
        got = await fetchAll(url, init)
      } catch {
        tally.cut++
        return 'cut'
      }
      if (got.status === 503) tally.got503++
      else if (got.status >= 500) tally.other5xx.push(`${what}: ${got.status} ${got.bytes.toString().slice(0, 200)}`)
      return got
    }
    class Retry extends Error {}
    /** Runs a step and, when it met a 503 or a cut, once more a second later (as docker retries; not the 5 s Retry-After, to keep the test short). */
    async function once(what: string, step: () => Promise<void>): Promise<boolean> {
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          await step()
          return true
        } catch (err) {
          if (!(err instanceof Retry) || attempt === 2) {
            tally.failed.push(`${what}: ${(err as Error).message}`)
            return false
          }
          tally.retried++
          await new Promise((ok) => setTimeout(ok, 1000))
        }
      }
      return false
    }
    const expectStatus = (got: Fetched | 'cut', status: number, what: string): Fetched => {
      if (got === 'cut') throw new Retry(`${what}: connection cut`)
      if (got.status === 503) throw new Retry(`${what}: 503`)
      if (got.status !== status) throw new Error(`${what}: ${got.status} ${got.bytes.toString().slice(0, 200)}`)
      return got
    }

    async function pushBlob(repo: string, blob: Blob, chunked: boolean): Promise<void> {
      const base = enlil.url
      if (!chunked) {
        expectStatus(await send('POST monolithic', `${base}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
          method: 'POST', body: blob.bytes, headers: { 'Content-Type': 'application/octet-stream' },
        }), 201, 'POST monolithic')
        return
      }
      const post = expectStatus(await send('POST', `${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), 202, 'POST')
      let location = new URL(post.headers.get('location')!, base).toString()
      const half = Math.floor(blob.bytes.length / 2)
      for (const [start, end] of [[0, half], [half, blob.bytes.length]] as const) {
        const patch = expectStatus(await send('PATCH', location, {
          method: 'PATCH', body: blob.bytes.subarray(start, end),
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${end - 1}` },
        }), 202, 'PATCH')
        location = new URL(patch.headers.get('location')!, base).toString()
      }
      const sep = location.includes('?') ? '&' : '?'
      expectStatus(await send('PUT', `${location}${sep}digest=${encodeURIComponent(blob.digest)}`, { method: 'PUT' }), 201, 'PUT upload')
    }

    async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
      let next = 0
      await Promise.all(Array.from({ length: width }, async () => {
        while (next < items.length) await work(items[next++]!)
      }))
    }

    proxy.setRates({ slowDown: 0.05, internalError: 0.02, reset: 0.03, hold: 0.02 })
    const from = proxy.log.length
    const faultsBefore = { ...proxy.counts }
    const pushed: typeof images = []
    try {
      await pool(images, 4, async (image) => {
        let ok = true
        for (const blob of [image.config, ...image.layers]) {
          if (await once(`push ${image.repo} ${blob.digest}`, () => pushBlob(image.repo, blob, image.chunked))) tally.acknowledged++
          else ok = false
        }
        if (!ok) return
        const put = await once(`PUT manifest ${image.repo}`, async () => {
          expectStatus(await send('PUT manifest', `${enlil.url}/v2/${image.repo}/manifests/v1`, {
            method: 'PUT', body: image.manifest, headers: { 'Content-Type': OCI_MANIFEST },
          }), 201, 'PUT manifest')
        })
        if (put) {
          tally.acknowledged++
          pushed.push(image)
        }
      })

      await pool(pushed, 4, async (image) => {
        const digest = sha256(image.manifest)
        for (const [method, ref] of [['GET', 'v1'], ['HEAD', 'v1'], ['GET', digest], ['HEAD', digest]] as const) {
          await once(`${method} manifest ${image.repo}:${ref}`, async () => {
            const got = expectStatus(await send(`${method} manifest`, `${enlil.url}/v2/${image.repo}/manifests/${ref}`, {
              method, headers: { Accept: OCI_MANIFEST },
            }), 200, `${method} manifest`)
            if (got.headers.get('docker-content-digest') !== digest) tally.corrupt.push(`${method} manifest ${image.repo}:${ref}: digest header`)
            if (method === 'GET' && !got.bytes.equals(Buffer.from(image.manifest))) tally.corrupt.push(`GET manifest ${image.repo}:${ref}: bytes`)
          })
        }
        for (const blob of [image.config, ...image.layers]) {
          await once(`GET blob ${image.repo} ${blob.digest}`, async () => {
            const got = expectStatus(await send('GET blob', `${enlil.url}/v2/${image.repo}/blobs/${blob.digest}`), 200, 'GET blob')
            if (sha256(got.bytes) !== blob.digest) tally.corrupt.push(`GET blob ${image.repo} ${blob.digest}: ${got.bytes.length} bytes`)
          })
        }
        if (Number(image.repo.split('-')[1]) % 4 === 0) {
          const layer = image.layers[0]!
          const [start, end] = [Math.floor(layer.bytes.length / 3), Math.floor((layer.bytes.length * 2) / 3)]
          await once(`Range GET ${image.repo}`, async () => {
            const got = expectStatus(await send('Range GET blob', `${enlil.url}/v2/${image.repo}/blobs/${layer.digest}`, {
              headers: { Range: `bytes=${start}-${end}` },
            }), 206, 'Range GET blob')
            if (!got.bytes.equals(layer.bytes.subarray(start, end + 1))) tally.corrupt.push(`Range GET ${image.repo}: ${got.bytes.length} bytes`)
          })
        }
      })
    } finally {
      proxy.setRates({})
    }

    const seen = proxy.log.slice(from)
    const injected = Object.fromEntries((['requests', 'slowDown', 'internalError', 'reset', 'hold'] as const).map((k) => [k, proxy.counts[k] - faultsBefore[k]]))
    const bodyResets = seen.filter((r) => r.fault === 'reset' && r.url.includes('x-id=GetObject')).length
    console.log(`s3 faults workload: ${tally.requests} client requests (${tally.acknowledged} acknowledged pushes), `
      + `${tally.got503} answered 503, ${tally.cut} cut, ${tally.retried} retried, ${tally.other5xx.length} other 5xx, `
      + `${tally.failed.length} failed after a retry, ${tally.corrupt.length} corrupt; `
      + `S3 requests through the proxy: ${injected.requests}, SlowDown ${injected.slowDown}, InternalError ${injected.internalError}, `
      + `reset mid-body ${injected.reset} (${bodyResets} of them GetObject bodies), held ${injected.hold}`)
    if (tally.other5xx.length + tally.failed.length + tally.corrupt.length > 0) console.warn(`enlil's log:\n${enlil.output()}`)
    expect(tally.other5xx).toEqual([])
    expect(tally.corrupt).toEqual([])
    expect(tally.failed).toEqual([])
    expect(pushed.length).toBe(IMAGES)
    // The faults did happen, GetObject bodies among them.
    expect(injected.slowDown).toBeGreaterThan(0)
    expect(bodyResets).toBeGreaterThan(0)
  }, 300_000)
})
