/**
 * The S3 driver's upload path against a real S3 server (Ceph RGW), every request seen through the
 * test proxy: a chunk of 5 MiB or more becomes part(s) of its own with no tail object (and the
 * requests an append costs, as upper bounds); equal parts kept where asked (R2); a multipart upload
 * past its part limit (lowered here) rolling over into segments that read back byte for byte; the
 * Tigris rename forced on a store that ignores it still ending right; the Tigris consistency header
 * on metadata requests, not on bytes.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../test/support/fault-proxy.js'
import { createBucket, deleteBucket, pendingMultipartUploads, requireS3 } from '../../test/support/s3.js'
import { createS3Driver, MIN_PART_SIZE, type S3DriverOptions } from './s3.js'

const s3 = requireS3()
const bucket = `uploads-${randomBytes(4).toString('hex')}`
const MiB = 1024 * 1024

interface Seen { method: string; url: string; headers: IncomingHttpHeaders }

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
/** A body that arrives in pieces of 1 MiB, as an HTTP request's does. */
const body = (bytes: Buffer) => Readable.from(Array.from({ length: Math.ceil(bytes.length / MiB) }, (_, i) => bytes.subarray(i * MiB, (i + 1) * MiB)))

describe.skipIf(!s3)('s3 upload path on a real S3 server', () => {
  let proxy: FaultProxy
  let seen: Seen[] = []
  beforeAll(async () => {
    await createBucket(bucket)
    proxy = await startFaultProxy({ target: s3!.endpoint })
    // A rule that never fires: it sees every request's headers.
    proxy.addRule({ match: (r) => { seen.push(r); return false }, fault: 'reset' })
  })
  afterAll(async () => {
    await proxy?.close()
    await deleteBucket(bucket)
  })

  const driver = (more: Partial<S3DriverOptions> = {}) => createS3Driver({
    bucket, region: s3!.region, endpoint: proxy.url, forcePathStyle: true,
    accessKeyId: s3!.accessKey, secretAccessKey: s3!.secretKey, partSize: MIN_PART_SIZE, ...more,
  })
  /** The requests `work` makes, as "METHOD what" lines. */
  async function requests(work: () => Promise<unknown>): Promise<string[]> {
    seen = []
    await work()
    return seen.map((r) => {
      const u = new URL(r.url, 'http://x')
      const op = u.searchParams.has('partNumber') ? (r.headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart')
        : u.searchParams.has('uploads') ? 'CreateMultipartUpload'
          : u.searchParams.has('uploadId') ? (r.method === 'POST' ? 'CompleteMultipartUpload' : 'AbortMultipartUpload')
            : u.searchParams.has('delete') ? 'DeleteObjects'
              : u.searchParams.has('list-type') ? 'ListObjectsV2'
                : r.headers['x-amz-copy-source'] ? 'CopyObject' : r.method
      return `${op} ${decodeURIComponent(u.pathname)}`
    })
  }

  it('a chunk of 5 MiB or more is part(s) of its own: no tail object, one state write, byte-identical read', async () => {
    const d = driver()
    const path = `a/_uploads/${randomBytes(4).toString('hex')}/data`
    const chunks = [randomBytes(6 * MiB), randomBytes(7 * MiB), randomBytes(12 * MiB + 12345)]
    let at = 0
    const log: string[][] = []
    for (const chunk of chunks) {
      log.push(await requests(() => d.append(path, body(chunk), { at })))
      at += chunk.length
    }
    const all = log.flat()
    expect(all.filter((l) => l.includes('.tail'))).toEqual([])
    // The first: read the state, start the multipart upload, one part, one state write.
    expect(log[0]!.length).toBeLessThanOrEqual(4)
    expect(log[0]!.filter((l) => l.startsWith('UploadPart '))).toHaveLength(1)
    // The next: the state read, the part, the state write.
    expect(log[1]!.length).toBeLessThanOrEqual(3)
    expect(log[1]!.filter((l) => l.startsWith('PUT '))).toHaveLength(1)
    // 12 MiB in parts of 5: one of 5, and the rest (under two parts) as one.
    expect(log[2]!.filter((l) => l.startsWith('UploadPart '))).toHaveLength(2)
    expect(log[2]!.length).toBeLessThanOrEqual(5)
    expect(await d.appendedSize(path)).toBe(at)
    expect(sha(await readAll(await d.reader(path)))).toBe(sha(Buffer.concat(chunks)))
  })

  it('a body of unknown length holds its last whole part back until the next fills; a break keeps it', async () => {
    const d = driver()
    const path = `h/_uploads/${randomBytes(4).toString('hex')}/data`
    const bytes = randomBytes(2 * MIN_PART_SIZE + MiB)
    const stalled = new Readable({ read() {} })
    stalled.push(bytes)
    const appending = d.append(path, stalled)
    appending.catch(() => {})
    let seen: number | undefined
    for (let i = 0; i < 200 && seen !== MIN_PART_SIZE; i++) {
      await new Promise((r) => setTimeout(r, 50))
      seen = await d.appendedSize(path)
    }
    expect(seen).toBe(MIN_PART_SIZE)
    stalled.destroy(new Error('client went away'))
    await expect(appending).rejects.toThrow('client went away')
    // The held part is whole: kept; the MiB short of a part is lost.
    expect(await d.appendedSize(path)).toBe(2 * MIN_PART_SIZE)
    await d.append(path, body(bytes.subarray(2 * MIN_PART_SIZE)), { at: 2 * MIN_PART_SIZE })
    expect(sha(await readAll(await d.reader(path)))).toBe(sha(bytes))
  })

  it('equal parts (R2): what is short of a part waits in a tail object, and reads back whole', async () => {
    const d = driver({ equalParts: true })
    const path = `b/_uploads/${randomBytes(4).toString('hex')}/data`
    const chunks = [randomBytes(6 * MiB), randomBytes(7 * MiB)]
    const first = await requests(() => d.append(path, body(chunks[0]!), { at: 0 }))
    expect(first.filter((l) => l.startsWith('PUT ') && l.includes('.tail-'))).toHaveLength(1)
    await d.append(path, body(chunks[1]!), { at: chunks[0]!.length })
    expect(sha(await readAll(await d.reader(path)))).toBe(sha(Buffer.concat(chunks)))
  })

  it('past the part limit (2 here) the upload rolls over into segments: reads and moves byte for byte, leaves nothing behind', async () => {
    const d = driver({ maxParts: 2 })
    const folder = `c/_uploads/${randomBytes(4).toString('hex')}`
    const path = `${folder}/data`
    const before = await pendingMultipartUploads(bucket)
    // 5 parts in one append, then a small chunk (a tail), then 2 more parts: three segments and a tail.
    const chunks = [randomBytes(26 * MiB), randomBytes(1000), randomBytes(11 * MiB)]
    let at = 0
    for (const chunk of chunks) {
      await d.append(path, body(chunk), { at })
      at += chunk.length
      expect(await d.appendedSize(path)).toBe(at)
    }
    const whole = Buffer.concat(chunks)
    const target = `c/blobs/${randomBytes(4).toString('hex')}/data`
    const moving = await requests(() => d.move(path, target))
    expect(moving.filter((l) => l.startsWith('UploadPartCopy'))).not.toHaveLength(0)
    expect(sha(await readAll(await d.reader(target)))).toBe(sha(whole))
    expect(sha(await readAll(await d.reader(target, { start: 25 * MiB, end: 27 * MiB })))).toBe(sha(whole.subarray(25 * MiB, 27 * MiB + 1)))
    await d.delete(folder)
    expect(await d.list('c/_uploads')).toEqual([])
    expect(await pendingMultipartUploads(bucket)).toBe(before)
  })

  it('a cancelled upload past the part limit leaves no segment and no multipart upload', async () => {
    const d = driver({ maxParts: 2 })
    const folder = `d/_uploads/${randomBytes(4).toString('hex')}`
    const before = await pendingMultipartUploads(bucket)
    await d.append(`${folder}/data`, body(randomBytes(16 * MiB)))
    await d.delete(folder)
    expect(await d.list('d/_uploads')).toEqual([])
    expect(await pendingMultipartUploads(bucket)).toBe(before)
  })

  it('Tigris rename forced on a store that ignores it: the blob is at its address, the upload gone', async () => {
    const d = driver({ rename: true })
    const folder = `e/_uploads/${randomBytes(4).toString('hex')}`
    const bytes = randomBytes(6 * MiB)
    await d.append(`${folder}/data`, body(bytes))
    const target = `e/blobs/${randomBytes(4).toString('hex')}/data`
    seen = []
    await d.move(`${folder}/data`, target)
    const copies = seen.filter((r) => r.headers['x-amz-copy-source'])
    expect(copies).toHaveLength(1)
    expect(copies[0]!.headers['x-tigris-rename']).toBe('true')
    expect(sha(await readAll(await d.reader(target)))).toBe(sha(bytes))
    expect(await d.stat(`${folder}/data`, 'file')).toBeUndefined()
    expect(await d.appendedSize(`${folder}/data`)).toBeUndefined()
  })

  it('rename off (the default): no Tigris header on the copy', async () => {
    const d = driver()
    await d.putContent('f/_uploads/x/data', 'small')
    seen = []
    await d.move('f/_uploads/x/data', 'f/blobs/x/data')
    expect(seen.filter((r) => r.headers['x-tigris-rename'])).toEqual([])
    expect((await d.getContent('f/blobs/x/data'))?.toString()).toBe('small')
  })

  it('consistent: X-Tigris-Consistent on tags, links, listings and upload state; not on blob bytes or parts', async () => {
    const d = driver({ consistent: true })
    seen = []
    await d.putContent('g/_manifests/tags/latest/current/link', 'sha256:abc')
    await d.getContent('g/_manifests/tags/latest/current/link')
    await d.list('g/_manifests/tags')
    await d.append('g/_uploads/u/data', body(randomBytes(6 * MiB)))
    await d.move('g/_uploads/u/data', 'g/blobs/u/data')
    const marked = seen.filter((r) => r.headers['x-tigris-consistent'] === 'true').map((r) => `${r.method} ${r.url}`)
    const unmarked = seen.filter((r) => r.headers['x-tigris-consistent'] === undefined).map((r) => `${r.method} ${r.url}`)
    expect(marked.some((l) => l.startsWith('PUT') && l.includes('current/link'))).toBe(true)
    expect(marked.some((l) => l.startsWith('GET') && l.includes('current/link'))).toBe(true)
    expect(marked.some((l) => l.includes('list-type=2'))).toBe(true)
    expect(marked.some((l) => l.startsWith('PUT') && l.includes('data.state'))).toBe(true)
    expect(unmarked.some((l) => l.includes('partNumber='))).toBe(true)
    expect(marked.filter((l) => l.includes('partNumber='))).toEqual([])
    seen = []
    await readAll(await d.reader('g/blobs/u/data'))
    expect(seen.map((r) => r.headers['x-tigris-consistent'])).toEqual([undefined])
    // Off (the default): never sent.
    seen = []
    await driver().getContent('g/_manifests/tags/latest/current/link')
    expect(seen.filter((r) => r.headers['x-tigris-consistent'])).toEqual([])
  })
})
