/**
 * @module Slows down password guessing: failed logins from one source are answered later and
 * later, and after too many within a minute the source gets 429 until the minute has passed.
 */
import { RegistryError } from '../oci/errors.js'

const WINDOW_MS = 60_000
const MAX_FAILURES = 10
const MAX_SOURCES = 10_000

export function createLoginThrottle(now: () => number = Date.now) {
  const failures = new Map<string, { count: number; since: number }>()
  const current = (source: string) => {
    const entry = failures.get(source)
    if (!entry || now() - entry.since > WINDOW_MS) return undefined
    return entry
  }
  return {
    /** Throws 429 TOOMANYREQUESTS while the source is locked out. */
    check(source: string): void {
      const entry = current(source)
      if (entry && entry.count >= MAX_FAILURES) {
        const wait = Math.ceil((entry.since + WINDOW_MS - now()) / 1000)
        throw new RegistryError('TOOMANYREQUESTS', `too many failed logins from this address; try again in ${wait} s`, undefined, { headers: { 'Retry-After': String(wait) } })
      }
    },
    /** Records a failure; resolves after the delay the source has earned (50 ms, doubling, at most 2 s). */
    async failed(source: string): Promise<void> {
      const entry = current(source) ?? { count: 0, since: now() }
      entry.count++
      if (failures.size >= MAX_SOURCES && !failures.has(source)) failures.clear()
      failures.set(source, entry)
      await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** (entry.count - 1))))
    },
    succeeded(source: string): void {
      failures.delete(source)
    },
  }
}
export type LoginThrottle = ReturnType<typeof createLoginThrottle>
