/**
 * @module The storage-driver contract: one suite that every driver passes (filesystem, s3).
 * Kept out of the build like the tests; each driver's test file calls describeStorageDriver.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { AppendOffsetError, PathNotFoundError, type StorageDriver } from './driver.js'

export interface ContractOptions {
  /** The driver's multipart part size, when it has one: appends are tested across its boundaries. */
  partSize?: number
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A stream of `size` bytes from `source`, delivered in pieces of `piece` bytes. */
function pieces(source: Buffer, piece: number): Readable {
  let offset = 0
  return new Readable({
    read() {
      if (offset >= source.length) return void this.push(null)
      this.push(source.subarray(offset, offset + piece))
      offset += piece
    },
  })
}

export function describeStorageDriver(name: string, makeDriver: () => StorageDriver | Promise<StorageDriver>, options: ContractOptions = {}): void {
  const part = options.partSize ?? 64 * 1024
  describe(`storage driver contract: ${name}`, () => {
    const unique = () => `contract/${randomBytes(6).toString('hex')}`

    it('usage sums the bytes under a folder, recursively', async () => {
      const d = await makeDriver()
      const base = unique()
      expect(await d.usage(base)).toBe(0)
      await d.putContent(`${base}/a`, 'x'.repeat(10))
      await d.putContent(`${base}/deep/er/b`, 'y'.repeat(32))
      await d.putContent(`${base}-sibling/c`, 'z'.repeat(5))
      expect(await d.usage(base)).toBe(42)
      await d.delete(base)
      await d.delete(`${base}-sibling`)
    })

    it('stageContent: staged bytes stay out of sight until published; discarded ones never appear', async () => {
      const d = await makeDriver()
      const base = unique()
      const kept = await d.stageContent(`${base}/tags/v1/current/link`, 'sha256:one')
      const dropped = await d.stageContent(`${base}/tags/v2/current/link`, 'sha256:two')
      expect(await d.getContent(`${base}/tags/v1/current/link`)).toBeUndefined()
      await kept.publish()
      expect((await d.getContent(`${base}/tags/v1/current/link`))?.toString()).toBe('sha256:one')
      await dropped.discard()
      expect(await d.getContent(`${base}/tags/v2/current/link`)).toBeUndefined()
      expect((await d.list(`${base}/tags/v2/current`))).toEqual([])
      // Publishing replaces what was there, like putContent.
      await (await d.stageContent(`${base}/tags/v1/current/link`, 'sha256:three')).publish()
      expect((await d.getContent(`${base}/tags/v1/current/link`))?.toString()).toBe('sha256:three')
      await d.delete(base)
    })

    it('putContent / getContent / stat / delete a small object', async () => {
      const d = await makeDriver()
      const base = unique()
      expect(await d.getContent(`${base}/a/link`)).toBeUndefined()
      expect(await d.stat(`${base}/a/link`)).toBeUndefined()
      await d.putContent(`${base}/a/link`, 'sha256:abc')
      expect((await d.getContent(`${base}/a/link`))?.toString()).toBe('sha256:abc')
      const info = await d.stat(`${base}/a/link`)
      expect(info).toMatchObject({ size: 10, isDirectory: false })
      expect((await d.stat(`${base}/a`))?.isDirectory).toBe(true)
      expect(await d.stat(`${base}/a/missing`, 'file')).toBeUndefined()
      expect(await d.stat(`${base}/a/link`, 'file')).toMatchObject({ size: 10, isDirectory: false })
      await d.putContent(`${base}/a/link`, 'sha256:defg')
      expect((await d.getContent(`${base}/a/link`))?.toString()).toBe('sha256:defg')
      await d.putOnce(`${base}/b/link`, 'once')
      expect((await d.getContent(`${base}/b/link`))?.toString()).toBe('once')
      await d.delete(`${base}/a/link`)
      expect(await d.getContent(`${base}/a/link`)).toBeUndefined()
      await d.delete(`${base}/a/link`) // idempotent
    })

    it('createOnce: exactly one of many concurrent creators wins, and the winner\'s content is what every reader sees', async () => {
      const d = await makeDriver()
      const base = unique()
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => d.createOnce(`${base}/claims/one`, `writer ${i}`)))
      expect(results.filter(Boolean)).toHaveLength(1)
      const winner = results.indexOf(true)
      expect((await d.getContent(`${base}/claims/one`))?.toString()).toBe(`writer ${winner}`)
      expect(await d.createOnce(`${base}/claims/one`, 'late')).toBe(false)
      expect((await d.getContent(`${base}/claims/one`))?.toString()).toBe(`writer ${winner}`)
      expect(await d.list(`${base}/claims`)).toEqual(['one'])
      await d.delete(`${base}/claims/one`)
      expect(await d.createOnce(`${base}/claims/one`, 'again')).toBe(true)
      await d.delete(base)
    })

    it('lists direct children, files and folders, and [] for a missing folder', async () => {
      const d = await makeDriver()
      const base = unique()
      await Promise.all(['x/1', 'x/2', 'y/deep/3', 'z'].map((p) => d.putContent(`${base}/${p}`, p)))
      expect((await d.list(base)).sort()).toEqual(['x', 'y', 'z'])
      expect((await d.list(`${base}/y`)).sort()).toEqual(['deep'])
      expect(await d.list(`${base}/missing`)).toEqual([])
    })

    it('deletes a folder with everything in it', async () => {
      const d = await makeDriver()
      const base = unique()
      await Promise.all(['f/a', 'f/b/c', 'f/b/d/e', 'g'].map((p) => d.putContent(`${base}/${p}`, p)))
      await d.delete(`${base}/f`)
      expect(await d.list(base)).toEqual(['g'])
      expect(await d.stat(`${base}/f/b/c`)).toBeUndefined()
    })

    it('writeStream stores a streamed object whole, readable in full and by range', async () => {
      const d = await makeDriver()
      const path = `${unique()}/blob/data`
      const bytes = randomBytes(3 * part + 123)
      expect(await d.writeStream(path, pieces(bytes, 7777))).toBe(bytes.length)
      expect((await readAll(await d.reader(path))).equals(bytes)).toBe(true)
      const ranged = await readAll(await d.reader(path, { start: part - 5, end: part + 4 }))
      expect(ranged.equals(bytes.subarray(part - 5, part + 5))).toBe(true)
      expect((await d.stat(path))?.size).toBe(bytes.length)
    })

    it('reader of a missing object throws PathNotFoundError', async () => {
      const d = await makeDriver()
      await expect(d.reader(`${unique()}/nothing`)).rejects.toBeInstanceOf(PathNotFoundError)
    })

    it('append assembles chunks of any size, across part boundaries, then reads back and moves', async () => {
      const d = await makeDriver()
      const base = unique()
      const path = `${base}/_uploads/u/data`
      // Sizes chosen to straddle part boundaries: tiny, under a part, exactly one, more than two.
      const sizes = [1, part - 1, part, 1000, 2 * part + 17, 3]
      const all = randomBytes(sizes.reduce((a, b) => a + b, 0))
      expect(await d.appendedSize(path)).toBeUndefined()
      let offset = 0
      for (const size of sizes) {
        const written = await d.append(path, pieces(all.subarray(offset, offset + size), 4096))
        expect(written).toBe(size)
        offset += size
        expect(await d.appendedSize(path)).toBe(offset)
      }
      const back = await readAll(await d.reader(path))
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(all).digest('hex'))
      // Appending after a read-back continues the same object.
      const more = randomBytes(part + 5)
      await d.append(path, Readable.from([more]))
      expect(await d.appendedSize(path)).toBe(all.length + more.length)
      await d.move(path, `${base}/blobs/final/data`)
      const moved = await readAll(await d.reader(`${base}/blobs/final/data`))
      expect(moved.equals(Buffer.concat([all, more]))).toBe(true)
      expect(await d.appendedSize(path)).toBeUndefined()
      await d.delete(`${base}/_uploads/u`)
      expect(await d.list(`${base}/_uploads`)).toEqual([])
    })

    it('append of a body over a MiB in small pieces keeps every byte in order', async () => {
      const d = await makeDriver()
      const path = `${unique()}/_uploads/u/data`
      // Larger than the filesystem's one-call threshold: what was read to decide goes back to the stream.
      const head = randomBytes(3)
      const body = randomBytes(1024 * 1024 + 4097)
      await d.append(path, Readable.from([head]))
      expect(await d.append(path, pieces(body, 4096))).toBe(body.length)
      const stored = await readAll(await d.reader(path))
      expect(stored.equals(Buffer.concat([head, body]))).toBe(true)
    })

    it('move of a plain object, and PathNotFoundError for a missing source', async () => {
      const d = await makeDriver()
      const base = unique()
      await d.putContent(`${base}/from`, 'bytes')
      await d.move(`${base}/from`, `${base}/to/here`)
      expect((await d.getContent(`${base}/to/here`))?.toString()).toBe('bytes')
      expect(await d.getContent(`${base}/from`)).toBeUndefined()
      await expect(d.move(`${base}/nope`, `${base}/x`)).rejects.toBeInstanceOf(PathNotFoundError)
    })

    it('a failing append stream leaves the object consistent for the next append', async () => {
      const d = await makeDriver()
      const path = `${unique()}/_uploads/u/data`
      const first = randomBytes(part + 10)
      await d.append(path, Readable.from([first]))
      const broken = new Readable({
        read() {
          this.push(randomBytes(1000))
          this.destroy(new Error('client went away'))
        },
      })
      await expect(d.append(path, broken)).rejects.toThrow()
      const size = (await d.appendedSize(path))!
      expect(size).toBeGreaterThanOrEqual(first.length)
      const stored = await readAll(await d.reader(path))
      expect(stored.length).toBe(size)
      expect(stored.subarray(0, first.length).equals(first)).toBe(true)
    })

    it('an append that breaks off keeps, in order, what it stored: at least every whole part', async () => {
      const d = await makeDriver()
      const path = `${unique()}/_uploads/u/data`
      const first = randomBytes(part + 10)
      await d.append(path, Readable.from([first]))
      // Over 256 KiB: the filesystem gathers smaller bodies and writes them whole or not at all.
      const rest = randomBytes(Math.max(2 * part + 500, 300 * 1024))
      let sent = 0
      const broken = new Readable({
        read() {
          // Breaks off once its bytes were taken, as a client that goes away mid-request does.
          if (sent >= rest.length) return void setTimeout(() => this.destroy(new Error('client went away')), 50)
          this.push(rest.subarray(sent, sent + 64 * 1024))
          sent += 64 * 1024
        },
      })
      await expect(d.append(path, broken)).rejects.toThrow('client went away')
      const size = (await d.appendedSize(path))!
      // Parts of `part` bytes from the start: the whole ones are kept, only a tail in memory may be lost.
      expect(size).toBeGreaterThanOrEqual(Math.floor((first.length + rest.length) / part) * part)
      expect(size).toBeLessThanOrEqual(first.length + rest.length)
      const all = Buffer.concat([first, rest])
      const stored = await readAll(await d.reader(path))
      expect(stored.equals(all.subarray(0, size))).toBe(true)
      // The next append continues exactly there.
      expect(await d.append(path, Readable.from([all.subarray(size)]), { at: size })).toBe(all.length - size)
      expect((await readAll(await d.reader(path))).equals(all)).toBe(true)
      await d.delete(path)
    })

    it('an append from the wrong offset (at) writes nothing and says how many bytes the object holds', async () => {
      const d = await makeDriver()
      const path = `${unique()}/_uploads/u/data`
      const first = randomBytes(1000)
      await expect(d.append(path, Readable.from([first]), { at: 5 })).rejects.toMatchObject({ name: 'AppendOffsetError', expected: 5, actual: 0 })
      expect(await d.append(path, Readable.from([first]), { at: 0 })).toBe(1000)
      for (const body of [randomBytes(10), randomBytes(part + 1)]) {
        const err = await d.append(path, Readable.from([body]), { at: 0 }).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(AppendOffsetError)
        expect((err as AppendOffsetError).actual).toBe(1000)
      }
      expect(await d.appendedSize(path)).toBe(1000)
      expect((await readAll(await d.reader(path))).equals(first)).toBe(true)
      await d.delete(path)
    })

    it('an append whose guard refuses writes nothing more', async () => {
      const d = await makeDriver()
      const path = `${unique()}/_uploads/u/data`
      const first = randomBytes(300)
      await d.append(path, Readable.from([first]))
      const refuse = () => { throw new Error('lost the session') }
      for (const body of [randomBytes(10), randomBytes(2 * part + 1)]) {
        await expect(d.append(path, Readable.from([body]), { at: 300, guard: refuse })).rejects.toThrow('lost the session')
        expect(await d.appendedSize(path)).toBe(300)
      }
      expect((await readAll(await d.reader(path))).equals(first)).toBe(true)
      await d.delete(path)
    })

    it('copyTo, where offered, writes the bytes (or a range) into a writable', async () => {
      const d = await makeDriver()
      if (!d.copyTo) return
      const path = `${unique()}/blob`
      const bytes = randomBytes(2 * part + 99)
      await d.writeStream(path, Readable.from([bytes]))
      const collect = () => {
        const chunks: Buffer[] = []
        const sink = new Writable({ write(chunk: Buffer, _e, done) { chunks.push(Buffer.from(chunk)); done() } })
        return { sink, bytes: () => Buffer.concat(chunks) }
      }
      const whole = collect()
      await d.copyTo(path, whole.sink)
      expect(whole.bytes().equals(bytes)).toBe(true)
      const part2 = collect()
      await d.copyTo(path, part2.sink, { start: 10, end: part + 10 })
      expect(part2.bytes().equals(bytes.subarray(10, part + 11))).toBe(true)
      // With the object's size known: a small object may be read in one call, ranges included.
      const small = `${path}-small`
      const few = randomBytes(1000)
      await d.putContent(small, few)
      for (const [range, expected] of [[undefined, few], [{ start: 7, end: 99 }, few.subarray(7, 100)]] as const) {
        const out = collect()
        await d.copyTo(small, out.sink, range, few.length)
        expect(out.bytes().equals(expected)).toBe(true)
      }
      const sized = collect()
      await d.copyTo(path, sized.sink, { start: 1, end: 5 }, bytes.length)
      expect(sized.bytes().equals(bytes.subarray(1, 6))).toBe(true)
      await expect(d.copyTo(`${path}-missing`, collect().sink, undefined, 10)).rejects.toBeInstanceOf(PathNotFoundError)
    })

    it('refuses paths that climb out of the root', async () => {
      const d = await makeDriver()
      await expect(d.getContent('../outside')).rejects.toThrow()
      await expect(d.putContent('a/../../outside', 'x')).rejects.toThrow()
    })
  })
}
