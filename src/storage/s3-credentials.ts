/** @module Whether an S3 key pair may read a bucket: one HeadBucket with those credentials (S3-key logins). */
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { StorageUnavailableError } from './driver.js'

export interface BucketAddress {
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle?: boolean
}

/** Resolves true when the pair reads the bucket, false when the store refuses it; throws StorageUnavailableError when the store can't tell. */
export function bucketReader(address: BucketAddress): (accessKeyId: string, secretAccessKey: string) => Promise<boolean> {
  return async (accessKeyId, secretAccessKey) => {
    const client = new S3Client({
      region: address.region, ...(address.endpoint ? { endpoint: address.endpoint } : {}), forcePathStyle: address.forcePathStyle ?? false,
      credentials: { accessKeyId, secretAccessKey }, maxAttempts: 2,
    })
    try {
      await client.send(new HeadBucketCommand({ Bucket: address.bucket }))
      return true
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      if (status === 403 || status === 400 || status === 404) return false
      throw new StorageUnavailableError(`cannot check S3 credentials: ${(err as Error).message}`, err)
    } finally {
      client.destroy()
    }
  }
}
