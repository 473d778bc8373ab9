/**
 * @module Slows down password guessing without letting anyone turn it against others. Failed
 * logins are counted per account *and* client address: each failure is answered later than the
 * last (50 ms, doubling, at most 2 s), and after 10 within a minute that account gets 429 from that
 * address until the minute is over. Requests without credentials are never throttled, and neither
 * is any other account or address, so a guesser (or a proxy that makes all clients one address)
 * locks out only what it guessed at. The table is bounded without ever being cleared whole: when
 * full, expired entries go first, then the oldest that are not locked out.
 */
import { RegistryError } from '../oci/errors.js'
import { type Accounts, basicCredentials, InvalidCredentialsError } from './accounts.js'

export const WINDOW_MS = 60_000
export const MAX_FAILURES = 10
/** About 150 bytes each: a full table is a few MiB, and filling it takes 50,000 wrong passwords a minute. */
export const MAX_KEYS = 50_000
/** Longer names are cut: the key must stay small whatever a client sends. */
const MAX_NAME = 256

/** What a client should wait, in ms, after its `count`-th failure in a row (50 ms, doubling, at most 2 s). */
export const delayAfter = (count: number) => Math.min(2000, 50 * 2 ** (Math.max(1, count) - 1))

/**
 * The throttle key of a request: the account named in its Basic credentials, verified or not (an
 * unknown user is keyed by the name it sent), and the client address. Undefined without
 * credentials (including the empty `Basic Og==` clients send first): those are never throttled.
 */
export function loginKey(authorization: string | undefined, address: string): string | undefined {
  const { user, password } = basicCredentials(authorization)
  if (user === '' && password === '') return undefined // as accounts.ts: no credentials
  // The address never holds a space, so "<address> <user>" is unambiguous.
  return `${address} ${user.slice(0, MAX_NAME)}`
}

/** Failures of one key within the current window, which started at `since` (ms since the epoch). */
export interface Failures {
  count: number
  since: number
}

export const isCurrent = (entry: Failures | undefined, now: number): entry is Failures => entry !== undefined && now - entry.since <= WINDOW_MS
export const isLocked = (entry: Failures | undefined, now: number) => isCurrent(entry, now) && entry.count >= MAX_FAILURES

/** Throws 429 TOOMANYREQUESTS, with Retry-After, when `entry` is a lock-out at `now`. */
export function refuseWhenLocked(entry: Failures | undefined, now: number): void {
  if (!isLocked(entry, now)) return
  const wait = Math.max(1, Math.ceil((entry!.since + WINDOW_MS - now) / 1000))
  throw new RegistryError('TOOMANYREQUESTS', `too many failed logins for this account from this address; try again in ${wait} s`, undefined, { headers: { 'Retry-After': String(wait) } })
}

export interface FailureTable {
  get(key: string): Failures | undefined
  /** Counts a failure of `key`; says which keys were dropped to make room for it. */
  record(key: string): { entry: Failures; evicted: string[] }
  forget(key: string): boolean
  entries(): IterableIterator<[string, Failures]>
  readonly size: number
}

/**
 * The failures of every key, at most `maxKeys` of them. A Map keeps insertion order, and an entry
 * is inserted when its window starts (a new window re-inserts it), so the first entries are always
 * the oldest windows: expired ones are found at the front without scanning the rest.
 */
export function createFailureTable(options: { now?: () => number; maxKeys?: number } = {}): FailureTable {
  const now = options.now ?? Date.now
  const maxKeys = Math.max(1, options.maxKeys ?? MAX_KEYS)
  const table = new Map<string, Failures>()
  const makeRoom = (at: number): string[] => {
    const evicted: string[] = []
    const drop = (key: string) => {
      table.delete(key)
      evicted.push(key)
    }
    for (const [key, entry] of table) {
      if (isCurrent(entry, at)) break
      drop(key)
    }
    if (table.size < maxKeys) return evicted
    for (const [key, entry] of table) {
      if (!isLocked(entry, at)) {
        drop(key)
        return evicted
      }
    }
    // Every entry is a lock-out: the oldest is the one closest to its end anyway.
    drop(table.keys().next().value!)
    return evicted
  }
  return {
    get: (key) => table.get(key),
    record(key) {
      const at = now()
      const existing = table.get(key)
      if (isCurrent(existing, at)) {
        existing.count++
        return { entry: existing, evicted: [] }
      }
      if (existing) table.delete(key) // its window is over: a new one starts at the end of the order
      const evicted = table.size >= maxKeys ? makeRoom(at) : []
      const entry = { count: 1, since: at }
      table.set(key, entry)
      return { entry, evicted }
    },
    forget: (key) => table.delete(key),
    entries: () => table.entries(),
    get size() {
      return table.size
    },
  }
}

/** What the auth modes call around a login; `key` comes from `loginKey`. */
export interface LoginThrottle {
  /** Throws 429 TOOMANYREQUESTS while the key is locked out. Never waits, never leaves the process. */
  check(key: string): void
  /** Records a failure; resolves after the delay the key has earned (50 ms, doubling, at most 2 s). */
  failed(key: string): Promise<void>
  /** A successful login forgets the key's failures. */
  succeeded(key: string): void
}

/** The throttle of one process (throttle-cluster.ts shares one across `--workers N`). */
export function createLoginThrottle(options: { now?: () => number; maxKeys?: number } = {}): LoginThrottle {
  const now = options.now ?? Date.now
  const table = createFailureTable(options)
  return {
    check: (key) => refuseWhenLocked(table.get(key), now()),
    async failed(key) {
      const { entry } = table.record(key)
      await new Promise((r) => setTimeout(r, delayAfter(entry.count)))
    },
    succeeded(key) {
      table.forget(key)
    },
  }
}

/**
 * The account of a Basic `Authorization` header, through the throttle: a locked-out key gets 429
 * before any password is checked, a wrong password waits out its delay and then throws
 * InvalidCredentialsError, a right one forgets the key's failures. Undefined without credentials.
 */
export async function throttledLogin(throttle: LoginThrottle, accounts: Accounts, authorization: string | undefined, address: string): Promise<string | undefined> {
  const key = loginKey(authorization, address)
  if (key !== undefined) throttle.check(key)
  try {
    const account = await accounts.fromBasic(authorization)
    if (account !== undefined && key !== undefined) throttle.succeeded(key)
    return account
  } catch (err) {
    if (err instanceof InvalidCredentialsError && key !== undefined) await throttle.failed(key)
    throw err
  }
}
