/**
 * The S3 driver against a real S3 server (Ceph RGW, started by the test run): the driver contract
 * with S3's real 5 MiB part minimum, virtual-hosted addressing, cancel aborting multipart uploads,
 * and S3 failures surfacing as typed errors.
 */
import { createServer, type Server } from 'node:http'
import { Agent } from 'node:http'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBucket, deleteBucket, pendingMultipartUploads, requireS3 } from '../../test/support/s3.js'
import { describeStorageDriver } from './driver.contract.js'
import { createS3Driver, MIN_PART_SIZE, type S3DriverOptions } from './s3.js'
import { StorageUnavailableError } from './driver.js'

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
})
