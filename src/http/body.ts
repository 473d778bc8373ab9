/**
 * @module Request and response bodies on the blob paths.
 *
 * Served by @hono/node-server, blob bytes go through the raw Node request and response (DESIGN.md:
 * 0.94–0.97x of raw node:http, where Web streams lose 20–40%). Under `app.request()` (tests) the
 * same code falls back to the Fetch objects.
 */
import { Readable, type Writable } from 'node:stream'
import type { Context } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { RegistryError } from '../oci/errors.js'
import type { AppEnv } from './env.js'

/** The request body as a Node stream, without buffering it. */
export function requestBody(c: Context<AppEnv>): Readable {
  const incoming = c.env?.incoming
  if (incoming && 'pipe' in incoming) return incoming as Readable
  const body = c.req.raw.body
  return body ? Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>) : Readable.from([])
}

/** True when the request announces a body (a non-zero Content-Length, or chunked transfer encoding). */
export function hasBody(c: Context<AppEnv>): boolean {
  const length = c.req.header('content-length')
  if (length !== undefined) return Number(length) > 0
  return (c.req.header('transfer-encoding') ?? '').toLowerCase().includes('chunked')
}

/** Reads a small body (a manifest) into memory, refusing more than `max` bytes with 413. */
export async function readCapped(c: Context<AppEnv>, max: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? NaN)
  if (declared > max) throw tooLarge(max, declared)
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of requestBody(c)) {
    total += (chunk as Buffer).length
    if (total > max) throw tooLarge(max, total)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, total)
}

function tooLarge(max: number, size: number): RegistryError {
  return new RegistryError('SIZE_INVALID', `manifest of ${size} bytes or more exceeds the limit of ${max} bytes`, { limit: max }, { status: 413 })
}

/**
 * Sends blob bytes as the response body. On a Node server they are copied into the raw response,
 * awaiting the whole copy (returning early truncates downloads); a client that goes away ends it
 * quietly, and a failure before the first byte (the bytes are gone) is thrown for the error
 * handler to answer. Under `app.request()` they go out as a Web stream.
 */
export async function sendBytes(
  c: Context<AppEnv>, status: number, headers: Record<string, string>,
  body: { copyTo(out: Writable): Promise<void>; stream(): Promise<Readable> },
): Promise<Response> {
  const outgoing = c.env?.outgoing
  if (outgoing && 'writeHead' in outgoing) {
    // The head goes out with the first bytes: bytes found gone when opened are still a clean 404.
    outgoing.statusCode = status
    for (const [name, value] of Object.entries(headers)) outgoing.setHeader(name, value)
    try {
      await body.copyTo(outgoing)
    } catch (err) {
      if (!outgoing.headersSent) {
        for (const name of Object.keys(headers)) outgoing.removeHeader(name)
        throw err
      }
      c.var.log.debug('response body ended early', { err: (err as Error).message })
      outgoing.destroy()
    }
    return RESPONSE_ALREADY_SENT
  }
  return new Response(Readable.toWeb(await body.stream()) as ReadableStream<Uint8Array>, { status, headers })
}
