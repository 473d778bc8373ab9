/**
 * A blob larger than S3's 5 GiB single-copy limit, streamed through enlil into an RGW bucket: the
 * bytes are generated while sent (never held in memory), the commit uses a multipart server-side
 * copy, and the pull is a presigned redirect. Prints enlil's peak RSS; asserts a generous bound.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, requireS3, enlilS3Environment } from './support/s3.js'

const s3 = requireS3()
const MiB = 1024 * 1024
const SIZE = Number(process.env.ENLIL_TEST_BIG_BLOB_BYTES ?? 5 * 1024 * MiB + 3 * MiB + 7)
const pattern = randomBytes(MiB)

/** Byte `i` of the generated blob: a random MiB, stamped with its index so no two MiB are equal. */
function mebibyte(index: number): Buffer {
  const block = Buffer.from(pattern)
  block.writeUInt32BE(index, 0)
  return block
}

function slice(start: number, end: number): Buffer {
  const parts: Buffer[] = []
  for (let m = Math.floor(start / MiB); m * MiB < end; m++) parts.push(mebibyte(m))
  const joined = Buffer.concat(parts)
  const base = Math.floor(start / MiB) * MiB
  return joined.subarray(start - base, end - base)
}

function peakRssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'))
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024)
}

describe.skipIf(!s3)(`a ${(SIZE / 1024 / MiB).toFixed(2)} GiB blob on S3`, () => {
  const bucket = `big-${randomBytes(4).toString('hex')}`
  let enlil: Running
  beforeAll(async () => {
    await createBucket(bucket)
    enlil = await startEnlil('/nonexistent', enlilS3Environment(bucket))
  })
  afterAll(async () => {
    await enlil?.stop()
    await deleteBucket(bucket)
  })

  it('streams in, commits past the 5 GiB copy limit, and is pulled back by ranges through the redirect', async () => {
    const post = await fetch(`${enlil.url}/v2/big/vm/blobs/uploads/`, { method: 'POST' })
    const path = new URL(post.headers.get('location')!).pathname
    const hash = createHash('sha256')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${enlil.url}${path}`, { method: 'PATCH', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      let index = 0
      const pump = () => {
        while (index * MiB < SIZE) {
          const block = mebibyte(index).subarray(0, Math.min(MiB, SIZE - index * MiB))
          hash.update(block)
          index++
          if (!req.write(block)) return void req.once('drain', pump)
        }
        req.end()
      }
      pump()
    })
    expect(status).toBe(202)
    const digest = `sha256:${hash.digest('hex')}`
    const put = await fetch(`${enlil.url}${path}?digest=${digest}`, { method: 'PUT' })
    expect(put.status).toBe(201)

    const head = await fetch(`${enlil.url}/v2/big/vm/blobs/${digest}`, { method: 'HEAD' })
    expect(head.headers.get('content-length')).toBe(String(SIZE))
    const get = await fetch(`${enlil.url}/v2/big/vm/blobs/${digest}`, { redirect: 'manual' })
    expect(get.status).toBe(307)
    const url = get.headers.get('location')!
    const ranges = [[0, 1000], [5 * 1024 * MiB - 10, 5 * 1024 * MiB + 10], [SIZE - 4096, SIZE]].filter(([, end]) => end! <= SIZE)
    for (const [start, end] of ranges as [number, number][]) {
      const res = await fetch(url, { headers: { Range: `bytes=${start}-${end - 1}` } })
      expect(res.status).toBe(206)
      expect(Buffer.from(await res.arrayBuffer()).equals(slice(start, end))).toBe(true)
    }
    const rss = peakRssMiB(enlil.process.pid!)
    console.log(`big blob: ${SIZE} bytes pushed through enlil to S3; enlil peak RSS ${rss} MiB`)
    expect(rss).toBeLessThan(400)
  }, 900_000)
})
