/** @module Requests refused before the app runs (by Node's HTTP parser, its request checks or the Hono adaptor) answered with the OCI error envelope. */
import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ErrorCode } from '../oci/errors.js'
import { errorBody } from './errors.js'
import { API_VERSION_HEADER } from './routes/deps.js'

/** How long a client has from its first byte (or from connecting) to the end of its headers. */
export const HEADERS_TIMEOUT_MS = 10_000

/**
 * createServer options for enlil's listener. Node checks the headers deadline only every
 * `connectionsCheckingInterval` (30 s by default), so a slow or silent client would hold a
 * connection for up to 90 s; checking each second keeps that near 10 s. A connection sending only
 * blank lines is closed by this deadline alone: llhttp skips CRLFs before a request line without
 * starting a request. Idle keep-alive connections are not affected (no request is in progress on
 * them; keepAliveTimeout closes them). The Host check is ours (guardRequests) so that its 400 carries
 * the envelope.
 */
export const EDGE_SERVER_OPTIONS = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  connectionsCheckingInterval: 1_000,
  requireHostHeader: false,
} as const satisfies ServerOptions

/** After answering, how long a connection may go on sending before it is cut. */
const LINGER_MS = 2_000

export interface Refusal {
  status: number
  code: ErrorCode
  message: string
}

/** The parser's codes for a body whose length cannot be trusted (request smuggling's raw material). */
const FRAMING_CODES = new Set(['HPE_UNEXPECTED_CONTENT_LENGTH', 'HPE_INVALID_CONTENT_LENGTH', 'HPE_INVALID_TRANSFER_ENCODING', 'HPE_INVALID_CHUNK_SIZE'])

/** Parser codes answered in words of our own: their reasons ("Invalid EOF state") would not help. */
const OWN_ANSWERS: Record<string, Refusal> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'SIZE_INVALID', message: `the request line and headers are larger than ${maxHeaderSize / 1024} KiB` },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, code: 'SIZE_INVALID', message: 'the extensions of a chunk in the chunked body are too large' },
  HPE_INVALID_EOF_STATE: { status: 400, code: 'SIZE_INVALID', message: 'the connection ended before the request was complete (a body shorter than its Content-Length, or no last chunk)' },
  // "PRI * HTTP/2.0": HTTP/2 with prior knowledge, as Go answers it without h2.
  HPE_PAUSED_H2_UPGRADE: { status: 505, code: 'UNSUPPORTED', message: 'HTTP/2 is not supported on this listener: send HTTP/1.1' },
}

type ClientError = Error & { code?: string; reason?: unknown; rawPacket?: unknown; bytesParsed?: unknown; syscall?: unknown }

/**
 * What to answer to an error Node reports through `clientError`, or undefined when there is nobody to
 * answer (the peer reset the connection, or the error is the socket's own). Pure: the unit tests' subject.
 */
export function describeClientError(err: ClientError, headersTimeoutMs: number): Refusal | undefined {
  if (err.code === 'ECONNRESET' || typeof err.syscall === 'string') return undefined
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, code: 'UNSUPPORTED', message: `the request line and headers did not arrive within ${headersTimeoutMs / 1000} s` }
  }
  const own = OWN_ANSWERS[err.code ?? '']
  if (own) return own
  // A Go client with TLS verification off tries TLS first; it needs an HTTP answer (its "server gave
  // HTTP response to HTTPS client") to fall back to http://, a closed socket fails the push with EOF.
  if (err.code === 'HPE_INVALID_METHOD' && err.bytesParsed === 0 && Buffer.isBuffer(err.rawPacket) && err.rawPacket[0] === 0x16) {
    return { status: 400, code: 'UNSUPPORTED', message: 'a TLS handshake arrived on a plain-HTTP port: use http:// for this address' }
  }
  // llhttp's reasons are fixed phrases ("Duplicate Content-Length"), never the client's bytes.
  const reason = typeof err.reason === 'string' && err.reason !== '' ? lowerFirstWord(err.reason) : 'malformed request'
  if (FRAMING_CODES.has(err.code ?? '')) {
    return { status: 400, code: 'SIZE_INVALID', message: `the framing of the request body (Content-Length, Transfer-Encoding, chunk sizes) is invalid: ${reason}` }
  }
  return { status: 400, code: 'UNSUPPORTED', message: `the request could not be parsed as HTTP/1.1: ${reason}` }
}

/** "Invalid header value char" → "invalid header value char"; "Content-Length overflow" stays. */
function lowerFirstWord(reason: string): string {
  return /^[A-Z][a-z]*(?=[\s,.:]|$)/.test(reason) ? reason[0]!.toLowerCase() + reason.slice(1) : reason
}

/** A complete HTTP/1.1 response with the envelope, for a socket no ServerResponse is writing to. */
export function rawResponse(refusal: Refusal, now = new Date()): string {
  const body = errorBody(refusal.code, refusal.message)
  return [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    ...Object.entries(API_VERSION_HEADER).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Date: ${now.toUTCString()}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n')
}

/**
 * What Node would pass to the app but enlil does not serve: versions other than HTTP/1.x (a request
 * line without a version parses as HTTP/0.9) and HTTP/1.1 without Host (RFC 9112 §3.2).
 */
export function refuseRequest(req: IncomingMessage): Refusal | undefined {
  if (req.httpVersionMajor === 0) {
    return { status: 400, code: 'UNSUPPORTED', message: 'the request line has no HTTP version or an HTTP/0.x one: send HTTP/1.1' }
  }
  if (req.httpVersionMajor !== 1) {
    return { status: 505, code: 'UNSUPPORTED', message: `HTTP/${req.httpVersion} is not supported on this listener: send HTTP/1.1` }
  }
  if (req.httpVersionMinor === 1 && req.headers.host === undefined) {
    return { status: 400, code: 'UNSUPPORTED', message: 'an HTTP/1.1 request needs a Host header' }
  }
  return undefined
}

function answer(res: ServerResponse, refusal: Refusal, close: boolean): void {
  const body = errorBody(refusal.code, refusal.message)
  res.writeHead(refusal.status, {
    'Content-Type': 'application/json; charset=utf-8', ...API_VERSION_HEADER,
    'Content-Length': Buffer.byteLength(body), ...(close ? { Connection: 'close' } : {}),
  })
  res.end(body) // Node drops the body of a HEAD response itself
}

/** Wraps the app's request listener: what refuseRequest refuses never reaches it. */
export function guardRequests(listener: (req: IncomingMessage, res: ServerResponse) => unknown) {
  return function guardedRequest(req: IncomingMessage, res: ServerResponse): void {
    const refusal = refuseRequest(req)
    if (refusal) answer(res, refusal, true)
    else void listener(req, res)
  }
}

/**
 * The Hono adaptor's errorHandler: it calls this when it cannot build a Request (a target that is
 * neither a path nor an absolute URL, an invalid Host, a backslash in the path) and would otherwise
 * send an empty 400. Its messages are fixed phrases, safe to repeat.
 */
export function requestErrorResponse(err: unknown): Response {
  const headers = { 'Content-Type': 'application/json; charset=utf-8', ...API_VERSION_HEADER }
  if (err instanceof Error && err.name === 'RequestError') {
    return new Response(errorBody('UNSUPPORTED', `the request target or Host header is not valid: ${lowerFirstWord(err.message)}`), { status: 400, headers })
  }
  return new Response(errorBody('UNKNOWN', 'internal error'), { status: 500, headers })
}

/** Sockets already answered: the parser reports its error again for each further chunk. */
const answered = new WeakSet<Duplex>()

function answerAndClose(socket: Duplex, response: string): void {
  answered.add(socket)
  // End rather than destroy: closing with unread input sends a reset, and the peer's kernel then drops
  // the answer before the client reads it. The input still arriving is read and discarded (by the
  // errored parser) until the client closes, or for LINGER_MS.
  socket.end(response)
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
  // Once the client has closed its side too, close as soon as the answer has left.
  const closeWhenSent = () => (socket.writableFinished ? socket.destroy() : socket.once('finish', () => socket.destroy()))
  if (socket.readableEnded) closeWhenSent()
  else socket.once('end', closeWhenSent)
}

/**
 * Installs the `clientError` and `checkExpectation` handlers on enlil's server, so that a request
 * Node refuses is answered with the envelope, not an empty 400/408/413/417/431. Node's own safety
 * rules are kept: nothing is written to a socket that cannot take it, or on which a response has
 * begun (a second status line would corrupt it).
 */
export function installClientErrors(server: Server): void {
  server.on('clientError', function clientError(err: ClientError, socket: Duplex) {
    if (answered.has(socket)) return
    const refusal = describeClientError(err, server.headersTimeout)
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
    if (!refusal || !socket.writable || inFlight?.headersSent) {
      socket.destroy()
      return
    }
    answerAndClose(socket, rawResponse(refusal))
  })
  // Node sends an empty 417 for an Expect other than 100-continue when nobody listens for this.
  server.on('checkExpectation', function checkExpectation(req: IncomingMessage, res: ServerResponse) {
    const refusal = refuseRequest(req)
    if (refusal) {
      answer(res, refusal, true)
      return
    }
    answer(res, { status: 417, code: 'UNSUPPORTED', message: 'the Expect header is not supported: only "100-continue" is' }, false)
  })
}
