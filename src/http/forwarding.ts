/**
 * @module Forwarding an upload request to the process that holds its live hash.
 *
 * Node can't serialize a running sha256, so the process that received an upload's bytes so far is
 * the only one that can continue its digest without reading them back from the store. The upload's
 * `Location` names that process (`?_owner=<id>`, an id and nothing else: addresses come from the
 * store's announcements, never from a client). A PATCH or PUT landing elsewhere is relayed to the
 * owner's internal listener: the body streams through untouched, status and headers come back as
 * the owner wrote them. Auth is checked here at the edge; the hop carries an HMAC (cluster secret)
 * over method, target, owner, time and the caller's account, which the owner checks before it reads
 * a byte of the body (`Expect: 100-continue`). So while the owner refuses or can't be reached, the
 * body is still unread and this process handles the request itself (re-reading the stored bytes at
 * completion, as before). If the owner dies after the body started to flow, the client gets 503
 * UNAVAILABLE and resumes from the upload's `Range` (the stored bytes are all there).
 *
 * On the public listener the hop's header is refused outright: it is not a way around auth.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { type IncomingHttpHeaders, type IncomingMessage, request, type RequestListener, type ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Context, MiddlewareHandler } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { RegistryError } from '../oci/errors.js'
import type { AppEnv } from './env.js'
import { errorBody } from './errors.js'
import { metrics } from '../observe/metrics.js'

/** The hop's header: `v1 <unix ms> <owner id> <account b64url> <client b64url> <mac b64url>`. */
export const FORWARD_HEADER = 'enlil-forward'
/** The query parameter of an upload's Location that names its owner. */
export const OWNER_PARAM = '_owner'
/** A process id as announced: 16 hex digits. */
export const PROCESS_ID = /^[0-9a-f]{16}$/
/** How far the hop's clock may be off (a replay is only good this long, and only to the same owner and target). */
const MAX_SKEW_MS = 60_000
/** How long the owner may take to accept the hop (connect + 100 Continue) before this process goes on alone. */
const ACCEPT_TIMEOUT_MS = 5_000

export interface ForwardingOptions {
  /** This process's id. */
  self: string
  /** The cluster secret (cluster.secret, or the one the primary of --workers generated). */
  secret: Buffer
  /** The base URL (`http://host:port`) of a live process's internal listener, or undefined when it is gone. */
  lookup(id: string): Promise<string | undefined>
}

interface Hop {
  subject: string
  client: string
}

/** Requests that came through an internal listener with a valid hop signature. */
const verified = new WeakMap<IncomingMessage, Hop>()

function mac(secret: Buffer, fields: string[]): string {
  return createHmac('sha256', secret).update(fields.join('\n')).digest('base64url')
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url')
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8')

function signHop(secret: Buffer, method: string, target: string, owner: string, hop: Hop, now = Date.now()): string {
  const ts = String(now)
  const subject = b64(hop.subject)
  const client = b64(hop.client)
  return `v1 ${ts} ${owner} ${subject} ${client} ${mac(secret, ['v1', ts, owner, subject, client, method, target])}`
}

type Verdict = { ok: true; hop: Hop } | { ok: false; status: 403 | 421; message: string }

function verifyHop(secret: Buffer, self: string, req: IncomingMessage, now = Date.now()): Verdict {
  const value = req.headers[FORWARD_HEADER]
  const parts = typeof value === 'string' ? value.split(' ') : []
  if (parts.length !== 6 || parts[0] !== 'v1') return { ok: false, status: 403, message: 'this listener only takes requests forwarded by another enlil process of this registry' }
  const [, ts, owner, subject, client, given] = parts as [string, string, string, string, string, string]
  const method = req.method ?? ''
  const expected = Buffer.from(mac(secret, ['v1', ts, owner, subject, client, method, req.url ?? '']))
  const actual = Buffer.from(given)
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return { ok: false, status: 403, message: 'the forwarded request\'s signature does not match: the processes must share cluster.secret' }
  if (!/^\d{1,15}$/.test(ts) || Math.abs(now - Number(ts)) > MAX_SKEW_MS) return { ok: false, status: 403, message: 'the forwarded request is too old (or the clocks of the processes differ by more than a minute)' }
  if (method !== 'PATCH' && method !== 'PUT') return { ok: false, status: 403, message: 'only upload chunks are forwarded' }
  if (owner !== self) return { ok: false, status: 421, message: 'this process is not the owner of the upload (it restarted?)' }
  return { ok: true, hop: { subject: unb64(subject), client: unb64(client) } }
}

function refuse(res: ServerResponse, status: number, message: string): void {
  const body = errorBody('DENIED', message)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' })
  res.end(body)
}

/**
 * The internal listener's handlers: a forwarded request whose signature holds goes on to the app
 * (marked, so auth is not asked again and it is never forwarded further); anything else is refused
 * before its body is read. `checkContinue` is the server's event for `Expect: 100-continue`.
 */
export function internalHandlers(options: Pick<ForwardingOptions, 'self' | 'secret'>, app: RequestListener): { request: RequestListener; checkContinue: RequestListener } {
  const accept = (req: IncomingMessage, res: ServerResponse, continued: boolean) => {
    const verdict = verifyHop(options.secret, options.self, req)
    if (!verdict.ok) return refuse(res, verdict.status, verdict.message)
    verified.set(req, verdict.hop)
    if (continued) res.writeContinue()
    return app(req, res)
  }
  return { request: (req, res) => accept(req, res, false), checkContinue: (req, res) => accept(req, res, true) }
}

/** The hop this request came by, when it came through an internal listener with a valid signature. */
export function forwardedHop(c: Context<AppEnv>): Hop | undefined {
  const incoming = c.env?.incoming
  return incoming ? verified.get(incoming as IncomingMessage) : undefined
}

/**
 * On every listener: the hop's header from anywhere but a verified hop is refused (403 DENIED), and
 * a verified hop carries the account and client address the edge established.
 */
export function forwardedRequests(): MiddlewareHandler<AppEnv> {
  return async function forwardedRequests(c, next) {
    const hop = forwardedHop(c)
    if (hop) {
      c.set('subject', hop.subject)
      if (hop.client) c.set('clientAddress', hop.client)
    } else if (c.req.header(FORWARD_HEADER) !== undefined) {
      throw new RegistryError('DENIED', `the ${FORWARD_HEADER} header is for enlil's own processes and is not accepted from clients`)
    }
    await next()
  }
}

/**
 * The owner to write into an upload's Location: this process for a request it handles that may
 * write (POST, PATCH, PUT); for a status GET, the owner the client named (when well-formed).
 */
export function ownerForLocation(c: Context<AppEnv>, self: string): string | undefined {
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return self
  const named = c.req.query(OWNER_PARAM)
  return named !== undefined && PROCESS_ID.test(named) ? named : undefined
}

/** Headers that belong to one connection, not to the request or response (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect'])

function endToEnd(headers: IncomingHttpHeaders, drop: string[] = []): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !drop.includes(name)) out[name] = value
  }
  return out
}

/**
 * PATCH and PUT of an upload whose Location names another live process: relayed there. Falls
 * through to this process's own handling when the owner is this process, unknown, gone, or
 * refuses before the body flowed.
 */
export function forwardUploads(options: ForwardingOptions): MiddlewareHandler<AppEnv> {
  return async function forwardUploads(c, next) {
    if (c.req.method !== 'PATCH' && c.req.method !== 'PUT') return next()
    const ep = c.var.endpoint
    if (ep?.kind !== 'upload' || ep.session === '' || forwardedHop(c)) return next()
    const owner = c.req.query(OWNER_PARAM)
    if (owner === undefined || owner === options.self || !PROCESS_ID.test(owner)) return next()
    const incoming = c.env?.incoming as IncomingMessage | undefined
    const outgoing = c.env?.outgoing as ServerResponse | undefined
    // Origin-form targets only: an absolute-form one (`PATCH http://elsewhere/…`) must not pick the host.
    if (!incoming || !outgoing || !('writeHead' in outgoing) || !incoming.url?.startsWith('/')) return next()
    const base = await options.lookup(owner).catch(() => undefined)
    if (!base) {
      metrics.uploadForwards.inc(['owner-gone'])
      return next()
    }
    const hop = { subject: c.var.subject ?? '', client: c.var.clientAddress ?? '' }
    const outcome = await relay(incoming, outgoing, base, owner, hop, options.secret)
    metrics.uploadForwards.inc([outcome])
    if (outcome === 'fallback') {
      c.var.log.warn('the owner of the upload did not take the forwarded request: handling it here (its bytes are read back to finish the digest)', { owner })
      return next()
    }
    return RESPONSE_ALREADY_SENT
  }
}

type Outcome = 'relayed' | 'fallback' | 'owner-lost'

function relay(incoming: IncomingMessage, outgoing: ServerResponse, base: string, owner: string, hop: Hop, secret: Buffer): Promise<Outcome> {
  const target = incoming.url ?? '/'
  const method = incoming.method ?? 'PATCH'
  const headers = endToEnd(incoming.headers, ['authorization', 'cookie', FORWARD_HEADER])
  // The owner builds Location from what the client asked for: the same host, the same scheme.
  if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = (incoming.socket as TLSSocket).encrypted ? 'https' : 'http'
  headers[FORWARD_HEADER] = signHop(secret, method, target, owner, hop)
  headers.expect = '100-continue'
  const hasBody = incoming.headers['content-length'] !== undefined ? incoming.headers['content-length'] !== '0' : incoming.headers['transfer-encoding'] !== undefined

  return new Promise<Outcome>((resolve) => {
    let flowing = false
    let responded = false
    let settled = false
    const done = (outcome: Outcome) => {
      if (settled) return
      settled = true
      clearTimeout(acceptTimer)
      incoming.off('close', clientGone)
      resolve(outcome)
    }
    const at = new URL(base)
    const hopReq = request({ protocol: 'http:', hostname: at.hostname.replace(/^\[|\]$/g, ''), port: at.port, path: target, method, headers, agent: false })
    const acceptTimer = setTimeout(() => { if (!flowing) hopReq.destroy(new Error('the owner did not accept the request in time')) }, ACCEPT_TIMEOUT_MS)
    const startBody = () => {
      if (flowing) return
      flowing = true
      clearTimeout(acceptTimer)
      if (hasBody) incoming.pipe(hopReq)
      else hopReq.end()
    }
    // The client left: the owner sees its request cut, as it would have without the hop.
    const clientGone = () => { if (!incoming.complete) hopReq.destroy() }
    incoming.once('close', clientGone)
    hopReq.on('continue', startBody)
    hopReq.on('response', (res) => {
      if (!flowing) {
        // Refused before a byte of the body moved (not the owner any more, another secret): ours to handle.
        res.resume()
        hopReq.destroy()
        return done('fallback')
      }
      responded = true
      const out = endToEnd(res.headers)
      // What the client still sends after the owner answered early (a 416) is not read: end the connection.
      if (!incoming.complete) out.connection = 'close'
      outgoing.writeHead(res.statusCode ?? 502, out)
      res.pipe(outgoing)
      res.once('error', () => outgoing.destroy())
      outgoing.once('close', () => {
        if (!incoming.complete) incoming.unpipe(hopReq)
        done('relayed')
      })
    })
    hopReq.on('error', () => {
      if (!flowing) return done('fallback')
      incoming.unpipe(hopReq)
      // The owner answered and closed while the client still sent (an early 416): its answer is relayed.
      if (responded) return
      if (!outgoing.headersSent) {
        const body = errorBody('UNAVAILABLE', 'the process receiving this upload stopped during the request; the bytes it stored are kept: ask the upload\'s Range (GET its Location) and send the rest again')
        outgoing.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Docker-Distribution-API-Version': 'registry/2.0', 'Retry-After': '1', Connection: 'close' })
        outgoing.end(body)
      } else outgoing.destroy()
      done('owner-lost')
    })
    hopReq.flushHeaders()
  })
}
