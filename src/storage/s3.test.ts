/**
 * The S3 driver against a real S3 server (Ceph RGW, started by the test run): the driver contract
 * with S3's real 5 MiB part minimum, virtual-hosted addressing, cancel aborting multipart uploads,
 * S3 failures surfacing as typed errors, and bodies that break off mid-read being read on.
 */
import { createServer, type Server } from 'node:http'
import { Agent } from 'node:http'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBucket, deleteBucket, pendingMultipartUploads, requireS3 } from '../../test/support/s3.js'
import { type FaultProxy, startFaultProxy } from '../../test/support/fault-proxy.js'
import { describeStorageDriver } from './driver.contract.js'
import { createS3Driver, MIN_PART_SIZE, type S3DriverOptions } from './s3.js'
import { PathNotFoundError, StorageUnavailableError } from './driver.js'

const s3 = requireS3()
const bucket = `driver-${randomBytes(4).toString('hex')}`

const options = (): S3DriverOptions => ({
  bucket, region: s3!.region, endpoint: s3!.endpoint, forcePathStyle: true,
  accessKeyId: s3!.accessKey, secretAccessKey: s3!.secretKey,
  // The smallest part S3 allows: every append test crosses part boundaries, and the server
  // refuses (EntityTooSmall) any completed upload with a smaller non-final part.
  partSize: MIN_PART_SIZE, rootDirectory: '/registry/root',
})

describe.skipIf(!s3)('s3 driver on a real S3 server', () => {
  beforeAll(() => createBucket(bucket))
  afterAll(() => deleteBucket(bucket))

  describeStorageDriver('s3', () => createS3Driver(options()), { partSize: MIN_PART_SIZE })

  it('deleting an upload folder aborts its multipart upload', async () => {
    const d = createS3Driver(options())
    const before = await pendingMultipartUploads(bucket)
    await d.append('cancel/_uploads/u1/data', Readable.from([randomBytes(MIN_PART_SIZE + 1)]))
    expect(await pendingMultipartUploads(bucket)).toBe(before + 1)
    await d.delete('cancel/_uploads/u1')
    expect(await pendingMultipartUploads(bucket)).toBe(before)
    expect(await d.appendedSize('cancel/_uploads/u1/data')).toBeUndefined()
  })

  it('records each part in the state as it completes: another instance sees them while the append runs', async () => {
    const writer = createS3Driver(options())
    const other = createS3Driver(options())
    const path = `midway/_uploads/${randomBytes(4).toString('hex')}/data`
    const bytes = randomBytes(2 * MIN_PART_SIZE + 1024 * 1024)
    // Sends two parts and a MiB of the three parts and a MiB it announced, then stalls like a
    // client whose connection hangs.
    const body = new Readable({ read() {} })
    body.push(bytes)
    const appending = writer.append(path, body, { length: 3 * MIN_PART_SIZE + 1024 * 1024 })
    appending.catch(() => {})
    let seen: number | undefined
    for (let i = 0; i < 200 && seen !== 2 * MIN_PART_SIZE; i++) {
      await new Promise((r) => setTimeout(r, 50))
      seen = await other.appendedSize(path)
    }
    // What a process killed now leaves: the two parts, not the MiB held in memory.
    expect(seen).toBe(2 * MIN_PART_SIZE)
    body.destroy(new Error('client went away'))
    await expect(appending).rejects.toThrow('client went away')
    expect(await other.appendedSize(path)).toBe(2 * MIN_PART_SIZE)
    // Another instance continues from there and reads back every byte in order.
    await other.append(path, Readable.from([bytes.subarray(2 * MIN_PART_SIZE)]), { at: 2 * MIN_PART_SIZE })
    const chunks: Buffer[] = []
    for await (const chunk of await other.reader(path)) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true)
    await other.delete(path.slice(0, -'/data'.length))
  })

  it('works with virtual-hosted-style addressing (bucket in the host name, as Tigris wants)', async () => {
    const endpoint = new URL(s3!.endpoint)
    const dnsName = process.env.ENLIL_TEST_S3_DNS_NAME ?? 's3.test'
    // Node can't resolve <bucket>.<dns name>: send every such host to the local server, noting it.
    const looked: string[] = []
    const agent = new Agent({
      lookup: (host, opts, done) => {
        looked.push(host)
        const reply = done as (e: null, a: string | { address: string; family: number }[], f?: number) => void
        if ((opts as { all?: boolean }).all) reply(null, [{ address: endpoint.hostname, family: 4 }])
        else reply(null, endpoint.hostname, 4)
      },
    })
    const d = createS3Driver({
      ...options(), forcePathStyle: false, endpoint: `http://${dnsName}:${endpoint.port}`,
      client: { requestHandler: new NodeHttpHandler({ httpAgent: agent }) },
    })
    await d.putContent('vhost/link', 'sha256:abc')
    expect((await d.getContent('vhost/link'))?.toString()).toBe('sha256:abc')
    expect(await d.list('vhost')).toEqual(['link'])
    expect(looked).toContain(`${bucket}.${dnsName}`)
    const url = await createS3Driver({ ...options(), forcePathStyle: false, endpoint: `http://${dnsName}:${endpoint.port}`, redirect: true }).redirectUrl!('vhost/link')
    expect(new URL(url!).hostname).toBe(`${bucket}.${dnsName}`)
  })

  describe('when the server fails', () => {
    let failing: Server
    let port = 0
    beforeAll(async () => {
      // A server that answers every request 503 SlowDown, like a throttling store.
      failing = createServer((req, res) => {
        req.resume()
        res.writeHead(503, { 'Content-Type': 'application/xml' })
        res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>')
      })
      await new Promise<void>((ok) => failing.listen(0, '127.0.0.1', ok))
      port = (failing.address() as { port: number }).port
    })
    afterAll(() => new Promise<void>((ok) => failing.close(() => ok())))

    it('retries, then reports StorageUnavailableError (rendered as 503 to clients)', async () => {
      const d = createS3Driver({ ...options(), endpoint: `http://127.0.0.1:${port}`, client: { maxAttempts: 2, retryMode: 'standard' } })
      await expect(d.getContent('any/link')).rejects.toBeInstanceOf(StorageUnavailableError)
      await expect(d.putContent('any/link', 'x')).rejects.toBeInstanceOf(StorageUnavailableError)
    })
  })

  describe('when a body breaks off after its headers', () => {
    let proxy: FaultProxy
    beforeAll(async () => { proxy = await startFaultProxy({ target: s3!.endpoint }) })
    afterAll(() => proxy.close())
    const through = () => createS3Driver({ ...options(), endpoint: proxy.url })
    const gets = (key: string) => (req: { method: string; url: string }) => req.method === 'GET' && req.url.split('?')[0]!.endsWith(key)
    const readAll = async (r: Readable) => {
      const chunks: Buffer[] = []
      for await (const c of r) chunks.push(c as Buffer)
      return Buffer.concat(chunks)
    }

    it('a stream resumes where it stopped (Range from the next byte, If-Match the first ETag), as often as it makes progress', async () => {
      const d = through()
      const bytes = randomBytes(3 * 1024 * 1024 + 17)
      await d.writeStream('resume/blob', Readable.from([bytes]))
      const from = proxy.log.length
      const remove = proxy.addRule({ match: gets('/resume/blob'), fault: 'reset', times: 3, at: 0.4 })
      try {
        expect((await readAll(await d.reader('resume/blob'))).equals(bytes)).toBe(true)
        const seen = proxy.log.slice(from).filter((r) => gets('/resume/blob')(r))
        expect(seen.map((r) => r.fault)).toEqual(['reset', 'reset', 'reset', undefined])
        const starts = seen.slice(1).map((r) => Number(/^bytes=(\d+)-(\d+)$/.exec(r.range ?? '')?.[1]))
        expect(starts.every((s, i) => s > (starts[i - 1] ?? 0))).toBe(true)
        expect(seen.slice(1).every((r) => r.range?.endsWith(`-${bytes.length - 1}`) && r.ifMatch === seen[1]!.ifMatch && r.ifMatch)).toBe(true)
        // A range resumes inside the range.
        proxy.addRule({ match: gets('/resume/blob'), fault: 'reset', times: 2, at: 0.5 })
        expect((await readAll(await d.reader('resume/blob', { start: 100, end: 2_000_099 }))).equals(bytes.subarray(100, 2_000_100))).toBe(true)
      } finally {
        remove()
      }
    })

    it('breaks in a row without progress end the stream with StorageUnavailableError', async () => {
      const d = through()
      await d.putContent('resume/small', randomBytes(5000))
      const remove = proxy.addRule({ match: gets('/resume/small'), fault: 'reset', times: 20, at: 0.001 })
      try {
        await expect(readAll(await d.reader('resume/small'))).rejects.toBeInstanceOf(StorageUnavailableError)
      } finally {
        remove()
      }
    })

    it('a small object is read again whole; when every read breaks, StorageUnavailableError; a missing one stays missing', async () => {
      const d = through()
      await d.putContent('resume/link', 'sha256:0123456789abcdef')
      let remove = proxy.addRule({ match: gets('/resume/link'), fault: 'reset', times: 2, at: 0.5 })
      expect((await d.getContent('resume/link'))?.toString()).toBe('sha256:0123456789abcdef')
      remove()
      remove = proxy.addRule({ match: gets('/resume/link'), fault: 'reset' })
      try {
        await expect(d.getContent('resume/link')).rejects.toBeInstanceOf(StorageUnavailableError)
      } finally {
        remove()
      }
      // A 404's body broken off is retried by the SDK: still "not there", not an outage.
      remove = proxy.addRule({ match: gets('/resume/none'), fault: 'reset', times: 2 })
      try {
        expect(await d.getContent('resume/none')).toBeUndefined()
        await expect(d.reader('resume/none')).rejects.toBeInstanceOf(PathNotFoundError)
      } finally {
        remove()
      }
    })
  })
})
