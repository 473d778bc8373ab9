/**
 * @module Accounts that are S3 key pairs (user = access key ID, password = secret key), checked by
 * asking the storage endpoint whether they may read the registry's bucket: the "log in with your
 * Tigris keys" setup. The check itself is given by the entry (it talks to the store); answers are
 * cached briefly, keyed by a hash of the credentials.
 */
import { createHash } from 'node:crypto'
import { type Accounts, basicCredentials, InvalidCredentialsError } from './accounts.js'

const OK_TTL_MS = 5 * 60_000
const REFUSED_TTL_MS = 30_000
const CACHE_MAX = 10_000

export interface S3KeyAccountsOptions {
  /**
   * Whether the key pair may log in: true, or why not (an unknown key, a wrong secret, a key that
   * can't see the bucket); rejects (an error the client hears as "storage unavailable") when the
   * store can't tell.
   */
  canRead(accessKeyId: string, secretAccessKey: string): Promise<true | string>
}

export function createS3KeyAccounts(options: S3KeyAccountsOptions): Accounts {
  const answers = new Map<string, { ok: boolean; reason?: string; expires: number }>()
  const check = options.canRead

  const remember = (header: string, verdict: true | string) => {
    const ok = verdict === true
    const answer = { ok, reason: ok ? undefined : verdict as string, expires: Date.now() + (ok ? OK_TTL_MS : REFUSED_TTL_MS) }
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
      if (!answer || answer.expires < Date.now()) answer = remember(header, user === '' || password === '' ? 'an empty access key ID or secret' : await check(user, password))
      if (!answer.ok) throw new InvalidCredentialsError(user, answer.reason)
      return user
    },
    labels: () => ({}),
    // The secret itself: each refresh asks the store again (not the answer cache) whether the key
    // still reads the bucket, so a deleted or rotated key ends its refresh tokens at once.
    credentialOf: (_account, header) => basicCredentials(header).password,
    async stillHolds(account, secret) {
      const verdict = account === '' || secret === '' ? 'an empty access key ID or secret' : await check(account, secret)
      remember(`Basic ${Buffer.from(`${account}:${secret}`).toString('base64')}`, verdict)
      return verdict === true
    },
  }
  return accounts
}
