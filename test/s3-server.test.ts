/**
 * The S3 server the test run starts (Ceph RGW, test/setup/s3-server.ts) behaves like real S3 in
 * the ways enlil's tests rely on: a toy server that passed these would hide the bugs that matter.
 */
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand,
  GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client, S3ServiceException, UploadPartCommand,
} from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBucket, deleteBucket, requireS3, s3Client } from './support/s3.js'

const s3 = requireS3()
const bucket = `server-${randomBytes(4).toString('hex')}`
const MiB = 1024 * 1024

/** The error a command fails with, to look at its S3 code and HTTP status. */
async function failure(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p
  } catch (err) {
    if (err instanceof S3ServiceException) return err
    throw err
  }
  throw new Error('the request succeeded')
}

/** A multipart upload of the given part sizes; returns CompleteMultipartUpload's promise. */
async function multipart(client: S3Client, key: string, sizes: number[]): Promise<unknown> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
  const parts = []
  for (const [i, size] of sizes.entries()) {
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: randomBytes(size) }))
    parts.push({ PartNumber: i + 1, ETag })
  }
  try {
    return await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }))
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => {})
    throw err
  }
}

describe.skipIf(!s3)('the test S3 server (Ceph RGW) is a real S3', () => {
  beforeAll(() => createBucket(bucket))
  afterAll(() => deleteBucket(bucket))

  it('stores an object and gives it back', async () => {
    const client = s3Client()
    const body = randomBytes(100_000)
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/b', Body: body }))
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b' }))
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true)
  })

  it('refuses a multipart upload with a non-final part under 5 MiB (EntityTooSmall), accepts one of 5 MiB', async () => {
    const client = s3Client()
    const err = await failure(multipart(client, 'small-part', [5 * MiB - 1, 10]))
    expect(err.name).toBe('EntityTooSmall')
    expect(err.$metadata.httpStatusCode).toBe(400)
    await multipart(client, 'min-part', [5 * MiB, 10])
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'min-part' }))
    expect(got.ContentLength).toBe(5 * MiB + 10)
  })

  it('answers 412 to a PutObject with If-None-Match: * on an existing key', async () => {
    const client = s3Client()
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'once', Body: 'first', IfNoneMatch: '*' }))
    const err = await failure(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'once', Body: 'second', IfNoneMatch: '*' })))
    expect(err.$metadata.httpStatusCode).toBe(412)
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'once' }))
    expect(await got.Body!.transformToString()).toBe('first')
  })

  it('checks SigV4 signatures', async () => {
    const bad = new S3Client({
      region: s3!.region, endpoint: s3!.endpoint, forcePathStyle: true,
      credentials: { accessKeyId: s3!.accessKey, secretAccessKey: `${s3!.secretKey}-wrong` },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    })
    const err = await failure(bad.send(new ListBucketsCommand({})))
    expect(err.$metadata.httpStatusCode).toBe(403)
    expect(err.name).toBe('SignatureDoesNotMatch')
  })

  it('serves virtual-hosted-style requests (<bucket>.<rgw_dns_name>)', async () => {
    const endpoint = new URL(s3!.endpoint)
    const dnsName = process.env.ENLIL_TEST_S3_DNS_NAME ?? 's3.test'
    // Node can't resolve <bucket>.s3.test: every name goes to the server's address, and is noted.
    const looked: string[] = []
    const agent = new Agent({
      keepAlive: true,
      lookup: (host, opts, done) => {
        looked.push(host)
        const reply = done as (e: null, a: string | { address: string; family: number }[], f?: number) => void
        if ((opts as { all?: boolean }).all) reply(null, [{ address: endpoint.hostname, family: 4 }])
        else reply(null, endpoint.hostname, 4)
      },
    })
    const client = new S3Client({
      region: s3!.region, endpoint: `http://${dnsName}:${endpoint.port}`, forcePathStyle: false,
      credentials: { accessKeyId: s3!.accessKey, secretAccessKey: s3!.secretKey },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({ httpAgent: agent }),
    })
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'vhost/x', Body: 'hosted' }))
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'vhost/x' }))
      expect(await got.Body!.transformToString()).toBe('hosted')
      expect(new Set(looked)).toEqual(new Set([`${bucket}.${dnsName}`]))
      // And the object is the one path-style clients see: the host name picked the bucket.
      const path = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: 'vhost/x' }))
      expect(await path.Body!.transformToString()).toBe('hosted')
    } finally {
      client.destroy()
      agent.destroy()
    }
  })
})
