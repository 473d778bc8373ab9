/**
 * @module Accounts: users with bcrypt passwords and labels, from an htpasswd file (`htpasswd -B`)
 * or docker_auth's users YAML. Verified credentials are cached briefly (keyed by a hash of the
 * header), so bcrypt does not run on every request; the file is re-read when it changes.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import bcrypt from 'bcryptjs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import type { Access } from './authorizer.js'
import { type AclRule, allowedActions, type Principal } from './acl.js'

const CACHE_TTL_MS = 60_000
const CACHE_MAX = 10_000

export interface Account {
  hash: string
  labels: Record<string, string[]>
}

/**
 * Reads an accounts file: an htpasswd file, or cesanta/docker_auth's users YAML
 * (`users: {name: {password: <bcrypt>, labels: {group: [...]}}}`), whose labels the ACL's
 * `${labels:…}` and `labels:` matches use.
 */
export function parseAccounts(text: string, file = 'users'): Map<string, Account> {
  if (!/^\s*users\s*:/m.test(text)) {
    return new Map([...parseHtpasswd(text, file)].map(([user, hash]) => [user, { hash, labels: {} }]))
  }
  const parsed = usersFileSchema.safeParse(parseYaml(text))
  if (!parsed.success) {
    throw new Error(`${file}: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  }
  const accounts = new Map<string, Account>()
  for (const [user, entry] of Object.entries(parsed.data.users)) {
    // docker_auth's `"": {}` lets anonymous clients get tokens; enlil always does, and its ACL decides.
    if (user === '' && entry.password === undefined) continue
    if (entry.password === undefined) throw new Error(`${file}: "${user}" has no password`)
    if (!BCRYPT.test(entry.password)) throw new Error(`${file}: the password of "${user}" is not a bcrypt hash; create one with \`htpasswd -nB <user>\``)
    const labels = Object.fromEntries(Object.entries(entry.labels ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]))
    accounts.set(user, { hash: entry.password.replace(/^\$2y\$/, '$2b$'), labels })
  }
  return accounts
}

const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/
const usersFileSchema = z.object({
  users: z.record(z.string(), z.object({
    password: z.string().optional(),
    labels: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  }).loose()),
})

/** Parses an htpasswd file; throws naming the line when a hash is not bcrypt. */
export function parseHtpasswd(text: string, file = 'htpasswd'): Map<string, string> {
  const users = new Map<string, string>()
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim()
    if (!trimmed || trimmed.startsWith('#')) return
    const colon = trimmed.indexOf(':')
    if (colon <= 0) throw new Error(`${file}:${i + 1}: expected user:hash`)
    const user = trimmed.slice(0, colon)
    const hash = trimmed.slice(colon + 1)
    if (!BCRYPT.test(hash)) {
      throw new Error(`${file}:${i + 1}: the hash of "${user}" is not bcrypt; create entries with \`htpasswd -B\``)
    }
    users.set(user, hash.replace(/^\$2y\$/, '$2b$'))
  })
  return users
}

/**
 * Wrong credentials (as opposed to none): each auth mode answers with its own challenge. The
 * client hears only "invalid username or password"; `account` and `reason` (unknown user, wrong
 * password, a key that can't see the bucket; never the secret) are for the registry's log.
 */
export class InvalidCredentialsError extends Error {
  constructor(readonly account = '', readonly reason = 'invalid credentials') {
    super('invalid username or password')
    this.name = 'InvalidCredentialsError'
  }
}

/** What the log says about a refused login: who (as sent), why, from where. Never the password. */
export function refusedLogin(err: unknown): { account: string; reason: string } | undefined {
  if (err instanceof InvalidCredentialsError) return { account: err.account.slice(0, 256), reason: err.reason }
  const cause = (err as { loginRefused?: { account: string; reason: string } } | undefined)?.loginRefused
  return cause
}

export interface Accounts {
  /**
   * The account proven by a Basic `Authorization` header; undefined without credentials (or the
   * empty `Basic Og==` clients send first); throws InvalidCredentialsError for wrong ones.
   */
  fromBasic(header: string | undefined): Promise<string | undefined>
  /** The account's labels (groups…), for the ACL; {} for anonymous or unknown. */
  labels(account: string): Record<string, string[]>
  /**
   * What a refresh token of `account` keeps (sealed) to tell later whether the account still holds
   * the credential it logged in with: the stored hash for a users file, the key pair for S3 keys.
   * `header` is the Basic header that just proved the account.
   */
  credentialOf(account: string, header: string): string
  /** False once the account is removed or its password or key changed (within the file's reload interval). */
  stillHolds(account: string, credential: string): Promise<boolean>
}

/** User and password of a Basic header (both '' when there is none). */
export function basicCredentials(header: string | undefined): { user: string; password: string } {
  if (!header?.toLowerCase().startsWith('basic ')) return { user: '', password: '' }
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * Accounts from an htpasswd file, re-read when it changes (looked at once a second at most).
 * Verified headers are remembered for a minute, keyed by their hash, so bcrypt runs once per login.
 */
export function createAccounts(path: string): Accounts {
  let loaded = { mtimeMs: -1, size: -1, users: new Map<string, Account>() }
  let checkedAt = 0
  let version = 0
  function users(): { version: number; table: Map<string, Account> } {
    const now = Date.now()
    if (now - checkedAt < 1000 && loaded.mtimeMs >= 0) return { version, table: loaded.users }
    checkedAt = now
    const s = statSync(path)
    if (s.mtimeMs !== loaded.mtimeMs || s.size !== loaded.size) {
      loaded = { mtimeMs: s.mtimeMs, size: s.size, users: parseAccounts(readFileSync(path, 'utf8'), path) }
      version++
    }
    return { version, table: loaded.users }
  }
  users() // a missing or malformed file stops startup, not the first login
  return verifyingAccounts(users)
}

/** Accounts from the content of an accounts file given at start (e.g. a base64 secret), fixed for the process's life. */
export function createAccountsFromText(text: string, name: string): Accounts {
  const table = parseAccounts(text, name)
  return verifyingAccounts(() => ({ version: 1, table }))
}

function verifyingAccounts(users: () => { version: number; table: Map<string, Account> }): Accounts {
  const verified = new Map<string, { user: string; expires: number }>()
  let verifiedVersion = users().version
  // Compared against when the user is unknown, so that timing does not tell which users exist.
  const dummyHash = bcrypt.hashSync('enlil-no-such-user', 10)

  return {
    async fromBasic(header) {
      if (!header?.toLowerCase().startsWith('basic ')) return undefined
      const key = createHash('sha256').update(header).digest('base64')
      const { version, table } = users()
      if (version !== verifiedVersion) {
        verified.clear() // a changed file may have changed passwords
        verifiedVersion = version
      }
      const cached = verified.get(key)
      if (cached && cached.expires > Date.now() && table.has(cached.user)) return cached.user

      const { user, password } = basicCredentials(header)
      if (user === '' && password === '') return undefined
      const hash = table.get(user)?.hash
      const ok = await bcrypt.compare(password, hash ?? dummyHash)
      if (!ok || !hash) throw new InvalidCredentialsError(user, hash ? 'wrong password' : 'unknown user')
      if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!)
      verified.set(key, { user, expires: Date.now() + CACHE_TTL_MS })
      return user
    },
    labels: (account) => users().table.get(account)?.labels ?? {},
    // A new password is a new bcrypt hash (a new salt), even when it is the same password.
    credentialOf: (account) => users().table.get(account)?.hash ?? '',
    stillHolds: async (account, credential) => credential !== '' && users().table.get(account)?.hash === credential,
  }
}

/** The first access `acl` refuses `account` ('' = anonymous), as "actions on type name"; undefined when all is allowed. */
export function refusedAccess(acl: readonly AclRule[], who: Principal, wanted: Access[]): string | undefined {
  const refused = wanted.find((w) => allowedActions(acl, who, w).length < w.actions.length)
  return refused ? `${refused.actions.join(',')} on ${refused.type} ${refused.name}` : undefined
}

