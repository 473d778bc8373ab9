/**
 * @module Accounts that are S3 key pairs (user = access key ID, password = secret key), checked by
 * asking the storage endpoint whether they may read the registry's bucket: the "log in with your
 * Tigris keys" setup. Answers are cached briefly, keyed by a hash of the credentials.
 */
import { createHash } from 'node:crypto'
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { StorageUnavailableError } from '../storage/driver.js'
import { type Accounts, basicCredentials, InvalidCredentialsError } from './accounts.js'

const OK_TTL_MS = 5 * 60_000
const REFUSED_TTL_MS = 30_000
const CACHE_MAX = 10_000

export interface S3KeyAccountsOptions {
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle?: boolean
}

export function createS3KeyAccounts(options: S3KeyAccountsOptions): Accounts {
  const answers = new Map<string, { ok: boolean; expires: number }>()

  async function check(accessKeyId: string, secretAccessKey: string): Promise<boolean> {
    const client = new S3Client({
      region: options.region, ...(options.endpoint ? { endpoint: options.endpoint } : {}), forcePathStyle: options.forcePathStyle ?? false,
      credentials: { accessKeyId, secretAccessKey }, maxAttempts: 2,
    })
    try {
      await client.send(new HeadBucketCommand({ Bucket: options.bucket }))
      return true
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      if (status === 403 || status === 400 || status === 404) return false
      throw new StorageUnavailableError(`cannot check S3 credentials: ${(err as Error).message}`, err)
    } finally {
      client.destroy()
    }
  }

  const remember = (header: string, ok: boolean) => {
    const answer = { ok, expires: Date.now() + (ok ? OK_TTL_MS : REFUSED_TTL_MS) }
    if (answers.size >= CACHE_MAX) answers.delete(answers.keys().next().value!)
    answers.set(createHash('sha256').update(header).digest('base64'), answer)
    return answer
  }

  const accounts: Accounts = {
    async fromBasic(header) {
      if (!header?.toLowerCase().startsWith('basic ')) return undefined
      const { user, password } = basicCredentials(header)
      if (user === '' && password === '') return undefined
      let answer = answers.get(createHash('sha256').update(header).digest('base64'))
      if (!answer || answer.expires < Date.now()) answer = remember(header, user !== '' && password !== '' && (await check(user, password)))
      if (!answer.ok) throw new InvalidCredentialsError()
      return user
    },
    labels: () => ({}),
    // The secret itself: each refresh asks the store again (not the answer cache) whether the key
    // still reads the bucket, so a deleted or rotated key ends its refresh tokens at once.
    credentialOf: (_account, header) => basicCredentials(header).password,
    async stillHolds(account, secret) {
      const ok = account !== '' && secret !== '' && (await check(account, secret))
      remember(`Basic ${Buffer.from(`${account}:${secret}`).toString('base64')}`, ok)
      return ok
    },
  }
  return accounts
}
