/**
 * @module Whether an S3 key pair may log in to the registry of a bucket (S3-key logins): a key
 * that may read the bucket (HeadBucket), or, as anu has it, a key whose ListBuckets shows the
 * bucket (on Tigris any key of the bucket's organisation, even one given no permission on it).
 */
import { HeadBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3'
import { StorageUnavailableError } from './driver.js'

export interface BucketAddress {
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle?: boolean
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode

/** The store's refusal of a key pair in words for the log; undefined when it is no refusal (the store can't tell). */
function refusal(err: unknown): string | undefined {
  const name = (err as { name?: string; Code?: string }).name
  if (name === 'InvalidAccessKeyId') return 'the store does not know this access key ID'
  if (name === 'SignatureDoesNotMatch') return 'wrong secret for this access key ID'
  const status = statusOf(err)
  if (status === 403 || status === 400 || status === 401) return `the store refused the key pair (${name ?? status})`
  return undefined
}

/**
 * Resolves true when the pair may log in, else why not; throws StorageUnavailableError when the
 * store can't tell (unreachable, 5xx).
 */
export function bucketReader(address: BucketAddress): (accessKeyId: string, secretAccessKey: string) => Promise<true | string> {
  return async (accessKeyId, secretAccessKey) => {
    const client = new S3Client({
      region: address.region, ...(address.endpoint ? { endpoint: address.endpoint } : {}), forcePathStyle: address.forcePathStyle ?? false,
      credentials: { accessKeyId, secretAccessKey }, maxAttempts: 2,
    })
    const unavailable = (err: unknown) => new StorageUnavailableError(`cannot check S3 credentials: ${(err as Error).message}`, err)
    try {
      try {
        await client.send(new HeadBucketCommand({ Bucket: address.bucket }))
        return true
      } catch (err) {
        const status = statusOf(err)
        if (status !== 403 && status !== 400 && status !== 404 && status !== 401) throw unavailable(err)
      }
      // HeadBucket has no body to say why: ListBuckets tells an unknown key from a wrong secret, and
      // shows the buckets the key's account owns.
      try {
        const list = await client.send(new ListBucketsCommand({}))
        if ((list.Buckets ?? []).some((b) => b.Name === address.bucket)) return true
        return `the key cannot see bucket ${address.bucket} (HeadBucket refused, ListBuckets does not show it)`
      } catch (err) {
        const why = refusal(err)
        if (why === undefined) throw unavailable(err)
        return why === `the store refused the key pair (${(err as Error).name})` ? `the key cannot see bucket ${address.bucket} (HeadBucket and ListBuckets refused)` : why
      }
    } finally {
      client.destroy()
    }
  }
}
