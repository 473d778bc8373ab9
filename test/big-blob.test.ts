/**
 * A 4 GiB blob on the filesystem store: pushed as docker does (POST, one streamed PATCH, PUT), pulled
 * back whole and by a Range at its end, hashed on the fly on both sides. enlil's peak RSS (VmHWM) is
 * printed as a benchmark figure and asserted only against a generous bound: a blob never sits in
 * memory. ENLIL_TEST_BIG_BLOB_GIB changes the size.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'

const SIZE = Number(process.env.ENLIL_TEST_BIG_BLOB_GIB ?? 4) * 1024 ** 3
const CHUNK = 1024 * 1024

const BLOCK = (() => {
  const base = createHash('sha512').update('enlil').digest()
  const block = Buffer.alloc(CHUNK)
  for (let i = 0; i < CHUNK; i += base.length) base.copy(block, i)
  return block
})()

/** MiB number `index` of the blob: one random-looking block, stamped with its index so no two are equal. */
function chunkAt(index: number, size: number): Buffer {
  const chunk = Buffer.from(BLOCK.subarray(0, Math.min(CHUNK, size - index * CHUNK)))
  chunk.writeUInt32BE(index, 0)
  return chunk
}

function* content(size: number): Generator<Buffer> {
  for (let index = 0; index * CHUNK < size; index++) yield chunkAt(index, size)
}

const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

describe(`a ${SIZE / 1024 ** 3} GiB blob on the filesystem store`, () => {
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    dir = tempDir('big')
    enlil = await startEnlil(join(dir, 'data'), { ENLIL_WORKERS: '1' })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('streams in and out with bounded memory', async () => {
    const hash = createHash('sha256')
    const body = Readable.from((function* () {
      for (const chunk of content(SIZE)) {
        hash.update(chunk)
        yield chunk
      }
    })())
    const post = await fetch(`${enlil.url}/v2/big/blob/blobs/uploads/`, { method: 'POST' })
    expect(post.status).toBe(202)
    const started = Date.now()
    const patch = await fetch(new URL(post.headers.get('location')!, enlil.url), {
      method: 'PATCH', body: body as unknown as BodyInit, duplex: 'half', headers: { 'Content-Type': 'application/octet-stream' },
    } as RequestInit)
    expect(patch.status).toBe(202)
    expect(patch.headers.get('range')).toBe(`0-${SIZE - 1}`)
    const digest = `sha256:${hash.digest('hex')}`
    const put = await fetch(new URL(`${patch.headers.get('location')!}${patch.headers.get('location')!.includes('?') ? '&' : '?'}digest=${digest}`, enlil.url), { method: 'PUT' })
    expect(put.status).toBe(201)
    const pushSeconds = (Date.now() - started) / 1000

    const pullStarted = Date.now()
    const get = await fetch(`${enlil.url}/v2/big/blob/blobs/${digest}`)
    expect(get.headers.get('content-length')).toBe(String(SIZE))
    const pulled = createHash('sha256')
    let length = 0
    for await (const chunk of get.body as unknown as AsyncIterable<Uint8Array>) {
      pulled.update(chunk)
      length += chunk.length
    }
    expect(length).toBe(SIZE)
    expect(`sha256:${pulled.digest('hex')}`).toBe(digest)
    const pullSeconds = (Date.now() - pullStarted) / 1000

    const last = await fetch(`${enlil.url}/v2/big/blob/blobs/${digest}`, { headers: { Range: `bytes=${SIZE - 10}-${SIZE - 1}` } })
    expect(last.status).toBe(206)
    const expectedTail = chunkAt(Math.ceil(SIZE / CHUNK) - 1, SIZE).subarray(-10)
    expect(Buffer.from(await last.arrayBuffer()).equals(expectedTail)).toBe(true)

    const peak = peakRssMiB(enlil.process.pid!)
    const mb = SIZE / 1e6
    console.log(`big blob: ${SIZE / 1024 ** 3} GiB pushed in ${pushSeconds.toFixed(1)} s (${(mb / pushSeconds).toFixed(0)} MB/s), pulled in ${pullSeconds.toFixed(1)} s (${(mb / pullSeconds).toFixed(0)} MB/s); enlil peak RSS ${peak.toFixed(0)} MiB`)
    expect(peak).toBeLessThan(512)
  }, 600_000)
})
