/**
 * The S3 server of the tests, for registry-level tests: a fresh bucket per test file, and the
 * environment that points enlil (or distribution) at it.
 */
import {
  AbortMultipartUploadCommand, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, S3Client,
} from '@aws-sdk/client-s3'
import { execFileSync } from 'node:child_process'
import { requirePart } from './processes.js'

export interface S3Server {
  endpoint: string
  region: string
  accessKey: string
  secretKey: string
}

/** The server the test run started, or undefined (and a clear skip, or a failure under CI=true). */
export function requireS3(): S3Server | undefined {
  const endpoint = process.env.ENLIL_TEST_S3_ENDPOINT
  const ok = requirePart(Boolean(endpoint), 'an S3 server (Ceph RGW)', 'apt-get install ceph-mon ceph-osd radosgw ceph-common')
  if (!ok || !endpoint) return undefined
  return {
    endpoint,
    region: process.env.ENLIL_TEST_S3_REGION ?? 'us-east-1',
    accessKey: process.env.ENLIL_TEST_S3_ACCESS_KEY ?? 'test',
    secretKey: process.env.ENLIL_TEST_S3_SECRET_KEY ?? 'testsecret',
  }
}

function server(): S3Server {
  const s = requireS3()
  if (!s) throw new Error('no S3 server')
  return s
}

export function s3Client(): S3Client {
  const s = server()
  return new S3Client({
    region: s.region, endpoint: s.endpoint, forcePathStyle: true,
    credentials: { accessKeyId: s.accessKey, secretAccessKey: s.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

export async function createBucket(bucket: string): Promise<void> {
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }))
}

/** Empties and removes a bucket, aborting unfinished multipart uploads. */
export async function deleteBucket(bucket: string): Promise<void> {
  const client = s3Client()
  for (let page = 0; page < 1000; page++) {
    const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
    const keys = (list.Contents ?? []).map((o) => ({ Key: o.Key! }))
    if (keys.length === 0) break
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }))
  }
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  for (const u of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! })).catch(() => {})
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {})
}

/** Unfinished multipart uploads left in a bucket (a cancelled upload must leave none). */
export async function pendingMultipartUploads(bucket: string): Promise<number> {
  const uploads = await s3Client().send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  return uploads.Uploads?.length ?? 0
}

/** The environment a distribution-on-Tigris user has, pointed at the test server. */
export function enlilS3Environment(bucket: string): Record<string, string> {
  const s = server()
  return {
    REGISTRY_STORAGE: 's3',
    REGISTRY_STORAGE_S3_BUCKET: bucket,
    REGISTRY_STORAGE_S3_ACCESSKEY: s.accessKey,
    REGISTRY_STORAGE_S3_SECRETKEY: s.secretKey,
    REGISTRY_STORAGE_S3_REGION: s.region,
    REGISTRY_STORAGE_S3_REGIONENDPOINT: s.endpoint,
    REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
  }
}

/**
 * Runs radosgw-admin against the test run's RGW (e.g. `key create`): S3 keys that a test can
 * create and delete at the store. Resolves with its stdout.
 */
export function rgwAdmin(...args: string[]): string {
  const conf = process.env.ENLIL_TEST_RGW_CONF
  if (!conf) throw new Error('no RGW of this test run (ENLIL_TEST_RGW_CONF)')
  return execFileSync('radosgw-admin', ['-c', conf, ...args], { encoding: 'utf8', timeout: 60_000 })
}
