/**
 * @module htpasswd mode: HTTP Basic against an htpasswd file of bcrypt hashes (`htpasswd -B`), as
 * distribution's. Verified credentials are cached briefly (keyed by a hash of the header), so bcrypt
 * does not run on every request; the file is re-read when it changes.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import bcrypt from 'bcryptjs'
import { RegistryError } from '../oci/errors.js'
import type { Access, Authorizer, Grant } from './authorizer.js'
import { type AclRule, allowedActions } from './acl.js'

const CACHE_TTL_MS = 60_000
const CACHE_MAX = 10_000

export interface HtpasswdOptions {
  realm: string
  path: string
  /** When given, what each account (or anonymous, without credentials) may do; else everything. */
  acl?: readonly AclRule[]
}

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
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new Error(`${file}:${i + 1}: the hash of "${user}" is not bcrypt; create entries with \`htpasswd -B\``)
    }
    users.set(user, hash.replace(/^\$2y\$/, '$2b$'))
  })
  return users
}

/** Wrong credentials (as opposed to none): each auth mode answers with its own challenge. */
export class InvalidCredentialsError extends Error {
  constructor() {
    super('invalid username or password')
    this.name = 'InvalidCredentialsError'
  }
}

export interface Accounts {
  /**
   * The account proven by a Basic `Authorization` header; undefined without credentials (or the
   * empty `Basic Og==` clients send first); throws InvalidCredentialsError for wrong ones.
   */
  fromBasic(header: string | undefined): Promise<string | undefined>
}

/**
 * Accounts from an htpasswd file, re-read when it changes (looked at once a second at most).
 * Verified headers are remembered for a minute, keyed by their hash, so bcrypt runs once per login.
 */
export function createHtpasswdAccounts(path: string): Accounts {
  let loaded = { mtimeMs: -1, size: -1, users: new Map<string, string>() }
  const verified = new Map<string, { user: string; expires: number }>()
  // Compared against when the user is unknown, so that timing does not tell which users exist.
  const dummyHash = bcrypt.hashSync('enlil-no-such-user', 10)
  let checkedAt = 0

  function users(): Map<string, string> {
    const now = Date.now()
    if (now - checkedAt < 1000 && loaded.mtimeMs >= 0) return loaded.users
    checkedAt = now
    const s = statSync(path)
    if (s.mtimeMs !== loaded.mtimeMs || s.size !== loaded.size) {
      loaded = { mtimeMs: s.mtimeMs, size: s.size, users: parseHtpasswd(readFileSync(path, 'utf8'), path) }
      verified.clear()
    }
    return loaded.users
  }
  users() // a missing or malformed file stops startup, not the first login

  return {
    async fromBasic(header) {
      if (!header?.toLowerCase().startsWith('basic ')) return undefined
      const key = createHash('sha256').update(header).digest('base64')
      const table = users()
      const cached = verified.get(key)
      if (cached && cached.expires > Date.now() && table.has(cached.user)) return cached.user

      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const user = colon < 0 ? decoded : decoded.slice(0, colon)
      const password = colon < 0 ? '' : decoded.slice(colon + 1)
      if (user === '' && password === '') return undefined
      const hash = table.get(user)
      const ok = await bcrypt.compare(password, hash ?? dummyHash)
      if (!ok || !hash) throw new InvalidCredentialsError()
      if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!)
      verified.set(key, { user, expires: Date.now() + CACHE_TTL_MS })
      return user
    },
  }
}

/** The first access `acl` refuses `account` ('' = anonymous), as "actions on type name"; undefined when all is allowed. */
export function refusedAccess(acl: readonly AclRule[], account: string, ip: string, wanted: Access[]): string | undefined {
  const refused = wanted.find((w) => allowedActions(acl, { account, ip }, w).length < w.actions.length)
  return refused ? `${refused.actions.join(',')} on ${refused.type} ${refused.name}` : undefined
}

export function createHtpasswdAuthorizer(options: HtpasswdOptions): Authorizer {
  const accounts = createHtpasswdAccounts(options.path)
  const challenge = { 'WWW-Authenticate': `Basic realm="${options.realm.replace(/"/g, '')}"` }
  const unauthorized = (message: string) => new RegistryError('UNAUTHORIZED', message, undefined, { headers: challenge })

  return {
    mode: 'htpasswd',
    async authorize(request, wanted: Access[]): Promise<Grant> {
      const subject = await accounts.fromBasic(request.authorization).catch((err: unknown) => {
        throw err instanceof InvalidCredentialsError ? unauthorized(err.message) : err
      })
      if (!options.acl) {
        if (subject === undefined) throw unauthorized('authentication required: log in with your registry user and password')
        return { subject, access: wanted }
      }
      // The base endpoint challenges anonymous clients: `docker login` checks credentials there.
      if (subject === undefined && wanted.length === 0) throw unauthorized('authentication required: log in with your registry user and password')
      const what = refusedAccess(options.acl, subject ?? '', request.source, wanted)
      if (!what) return { subject: subject ?? '', access: wanted }
      // Anonymous: maybe logging in helps. An account without the right: 403.
      if (subject === undefined) throw unauthorized(`authentication required for ${what}`)
      throw new RegistryError('DENIED', `account ${subject} may not ${what}`)
    },
  }
}
