import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type PositionalFile, writeBatched } from './batched-write.js'

const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) % 251))

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size))
  return out
}

/** An in-memory file that records its writes; `fail(call)` makes that writev call reject. */
class MemoryFile implements PositionalFile {
  bytes = Buffer.alloc(0)
  calls = 0
  active = 0
  maxActive = 0
  constructor(private readonly opts: { maxPerCall?: number; fail?: (call: number) => boolean; delayMs?: (call: number) => number } = {}) {}
  async writev(buffers: Buffer[], position: number) {
    const call = ++this.calls
    this.active++
    this.maxActive = Math.max(this.maxActive, this.active)
    try {
      await new Promise((r) => setTimeout(r, this.opts.delayMs?.(call) ?? 1))
      if (this.opts.fail?.(call)) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
      const data = Buffer.concat(buffers).subarray(0, this.opts.maxPerCall ?? Infinity)
      const end = position + data.length
      if (end > this.bytes.length) this.bytes = Buffer.concat([this.bytes, Buffer.alloc(end - this.bytes.length)])
      data.copy(this.bytes, position)
      return { bytesWritten: data.length }
    } finally {
      this.active--
    }
  }
  async truncate(length: number) {
    this.bytes = this.bytes.subarray(0, length)
  }
}

describe('writeBatched', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'enlil-batched-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes socket-sized pieces after existing bytes, in order, one write per batch', async () => {
    const path = join(dir, 'data')
    const head = pattern(1000)
    const body = pattern(3 * 1024 * 1024 + 5).reverse()
    const handle = await open(path, 'w+')
    let writes = 0
    const counting: PositionalFile = {
      writev: (b, p) => { writes++; return handle.writev(b, p) },
      truncate: (n) => handle.truncate(n),
    }
    try {
      await handle.write(head, 0, head.length, 0)
      const written = await writeBatched(counting, Readable.from(pieces(body, 64 * 1024)), head.length, { batchBytes: 1024 * 1024, inFlight: 2 })
      expect(written).toBe(body.length)
    } finally {
      await handle.close()
    }
    expect((await readFile(path)).equals(Buffer.concat([head, body]))).toBe(true)
    expect(writes).toBe(4) // three full batches of 1 MiB and the 5 bytes left
  })

  it('continues after short writes', async () => {
    const file = new MemoryFile({ maxPerCall: 1000 })
    const body = pattern(10_000)
    expect(await writeBatched(file, Readable.from(pieces(body, 3000)), 0, { batchBytes: 4096, inFlight: 2 })).toBe(body.length)
    expect(file.bytes.equals(body)).toBe(true)
  })

  it('never has more than `inFlight` writes at once', async () => {
    const file = new MemoryFile({ delayMs: () => 5 })
    const body = pattern(64 * 1024)
    await writeBatched(file, Readable.from(pieces(body, 1024)), 0, { batchBytes: 4096, inFlight: 2 })
    expect(file.maxActive).toBe(2)
    expect(file.bytes.equals(body)).toBe(true)
  })

  it('after a failed write, cuts the file back to the batches that landed before it', async () => {
    // The second batch fails slowly while the third lands: the third must not stay behind a hole.
    const file = new MemoryFile({ fail: (call) => call === 2, delayMs: (call) => (call === 2 ? 20 : 1) })
    const body = pattern(5 * 4096)
    await expect(writeBatched(file, Readable.from(pieces(body, 4096)), 0, { batchBytes: 4096, inFlight: 2 })).rejects.toThrow('no space left')
    expect(file.bytes.equals(body.subarray(0, 4096))).toBe(true)
  })

  it('after a broken body, keeps every byte that was written', async () => {
    const file = new MemoryFile()
    const body = pattern(3 * 4096)
    async function* broken() {
      yield* pieces(body, 4096)
      throw new Error('client went away')
    }
    await expect(writeBatched(file, broken(), 100, { batchBytes: 4096, inFlight: 2 })).rejects.toThrow('client went away')
    expect(file.bytes.subarray(100).equals(body)).toBe(true)
  })

  it('after a broken body, keeps the pieces gathered since the last batch too: they are bytes that arrived', async () => {
    const file = new MemoryFile()
    const body = pattern(2 * 4096 + 1500)
    async function* broken() {
      yield* pieces(body, 500)
      throw new Error('client went away')
    }
    await expect(writeBatched(file, broken(), 0, { batchBytes: 4096, inFlight: 2 })).rejects.toThrow('client went away')
    expect(file.bytes.equals(body)).toBe(true)
  })
})
