/** Read-only mode and quotas on the S3 store (Ceph RGW), the same checks as on the filesystem. */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { createS3Driver } from '../src/storage/s3.js'
import { describeOperations } from './support/operations-suite.js'
import { createBucket, deleteBucket, requireS3 } from './support/s3.js'

const s3 = requireS3()
const bucket = `ops-${randomBytes(4).toString('hex')}`

if (s3) {
  beforeAll(() => createBucket(bucket))
  afterAll(() => deleteBucket(bucket))
  describeOperations('s3', () => createS3Driver({
    bucket, region: s3.region, endpoint: s3.endpoint, forcePathStyle: true,
    accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey, redirect: false,
  }), () => `ops-${randomBytes(4).toString('hex')}`)
} else {
  describe.skip('operations on s3 (no S3 server)', () => { it('needs Ceph RGW', () => {}) })
}
