/** @module The one error handler: RegistryError → the spec's JSON envelope; anything else → 500 UNKNOWN, logged once. */
import type { Context } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { type ErrorCode, isRegistryError, RegistryError } from '../oci/errors.js'
import type { AppEnv } from './env.js'
import { CLIENT_CLOSED_REQUEST, requestBrokeOff } from './client-gone.js'
import { API_VERSION_HEADER } from './routes/deps.js'
import { metrics } from '../observe/metrics.js'

export function errorBody(code: ErrorCode, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] })
}

export function onError(err: Error, c: Context<AppEnv>): Response {
  const outgoing = c.env?.outgoing
  if (outgoing && 'headersSent' in outgoing && outgoing.headersSent) {
    // Too late for a status: the body was on its way. Cut the connection so the client sees a failure.
    c.var.log?.warn('request failed after the response started', { err })
    outgoing.destroy()
    return RESPONSE_ALREADY_SENT
  }
  // A refusal of ours that cut the body short (a quota met mid-upload) is answered while the
  // client is still there; only a connection that closed is the client's leaving.
  const socket = c.env?.outgoing?.socket ?? c.env?.incoming?.socket
  const refusedMidBody = isRegistryError(err) && socket != null && !socket.destroyed
  if (!refusedMidBody && requestBrokeOff(c.env?.incoming)) {
    // The request broke off because its client left: nobody hears an answer, and it is no error of ours.
    c.var.log?.info('client closed the request', { method: c.req.method, path: c.req.path, reason: err.message })
    return new Response(null, { status: CLIENT_CLOSED_REQUEST })
  }
  const known = isRegistryError(err) ? err : fromStorage(err)
  if (!known) {
    c.var.log?.error('unexpected error', { err, method: c.req.method, path: c.req.path })
    metrics.storageErrors.inc(['other'])
  } else if (known !== err) {
    c.var.log?.warn('storage error', { err, method: c.req.method, path: c.req.path })
    metrics.storageErrors.inc([err.name === 'StorageFullError' ? 'full' : 'unavailable'])
  }
  const error = known ?? new RegistryError('UNKNOWN', 'internal error; the request id identifies it in the registry log', { requestId: c.var.requestId })
  // docker recognizes a v2 registry by this header, on a 401 to GET /v2/ too.
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8', ...API_VERSION_HEADER, ...error.response.headers }
  // HEAD responses carry no body: the status and headers are the answer.
  const body = c.req.method === 'HEAD' ? null : errorBody(error.code, error.message, error.detail)
  return new Response(body, { status: error.status, headers })
}

/** Storage trouble the client should hear about in words, not as a 500. */
function fromStorage(err: Error): RegistryError | undefined {
  if (err.name === 'StorageUnavailableError') {
    return new RegistryError('UNAVAILABLE', 'the storage backend is unavailable or throttling; retry shortly', undefined, { headers: { 'Retry-After': '5' } })
  }
  if (err.name === 'StorageFullError') {
    return new RegistryError('DENIED', 'storage is full: the registry cannot accept more data right now; nothing was stored', undefined, { status: 507 })
  }
  return undefined
}

export function notFound(c: Context<AppEnv>): Response {
  const message = `no such endpoint: ${c.req.method} ${c.req.path}`
  return new Response(c.req.method === 'HEAD' ? null : errorBody('UNSUPPORTED', message), { status: 404, headers: { 'Content-Type': 'application/json; charset=utf-8' } })
}

