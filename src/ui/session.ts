/**
 * @module Stateless sessions: a signed cookie (HMAC-SHA256 under the key UiAccess gives, the same on
 * every instance) holding the account, what it logged in with, an expiry and its CSRF token. Visitors
 * without a session get a CSRF cookie of their own (double submit). Nothing is kept in memory.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { getCookie, setCookie, deleteCookie } from 'hono/cookie'

export const SESSION_COOKIE = 'enlil_session'
export const CSRF_COOKIE = 'enlil_csrf'
/** How long a login lasts. */
export const SESSION_MS = 12 * 3600_000

export interface Session {
  account: string
  /** The credential's fingerprint at login (UiAccess.credential). */
  credential: string
  expires: number
  csrf: string
}

const sign = (key: Uint8Array, body: string) => createHmac('sha256', key).update(body).digest('base64url')

export function sealSession(key: Uint8Array, session: Session): string {
  const body = Buffer.from(JSON.stringify({ a: session.account, c: session.credential, e: session.expires, x: session.csrf })).toString('base64url')
  return `${body}.${sign(key, body)}`
}

/** The session a cookie holds, when its signature is right and it has not expired. */
export function openSession(key: Uint8Array, cookie: string | undefined, now = Date.now()): Session | undefined {
  if (!cookie || cookie.length > 4096) return undefined
  const [body, mac] = cookie.split('.')
  if (!body || !mac || !sameString(mac, sign(key, body))) return undefined
  try {
    const v = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { a?: unknown; c?: unknown; e?: unknown; x?: unknown }
    if (typeof v.a !== 'string' || typeof v.c !== 'string' || typeof v.e !== 'number' || typeof v.x !== 'string' || v.e <= now) return undefined
    return { account: v.a, credential: v.c, expires: v.e, csrf: v.x }
  } catch {
    return undefined
  }
}

export const newCsrfToken = () => randomBytes(18).toString('base64url')

export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export interface CookieOptions {
  path: string
  secure: boolean
}

const attributes = (o: CookieOptions, maxAgeMs?: number) => ({
  path: o.path, httpOnly: true, secure: o.secure, sameSite: 'Lax' as const,
  ...(maxAgeMs !== undefined ? { maxAge: Math.floor(maxAgeMs / 1000) } : {}),
})

export function writeSession(c: Context, key: Uint8Array, session: Session, o: CookieOptions): void {
  setCookie(c, SESSION_COOKIE, sealSession(key, session), attributes(o, session.expires - Date.now()))
}

export function clearSession(c: Context, o: CookieOptions): void {
  deleteCookie(c, SESSION_COOKIE, attributes(o))
}

/** The visitor's CSRF cookie, set now when absent. */
export function csrfCookie(c: Context, o: CookieOptions): string {
  const existing = getCookie(c, CSRF_COOKIE)
  if (existing && /^[A-Za-z0-9_-]{24}$/.test(existing)) return existing
  const token = newCsrfToken()
  setCookie(c, CSRF_COOKIE, token, attributes(o))
  return token
}
