/** @module Range, Content-Range, Link and absolute URLs: parse and build, pure functions. */
import { RegistryError } from '../oci/errors.js'
import type { ByteRange } from '../storage/driver.js'

/**
 * `Range: bytes=a-b | a- | -n` against a blob of `size` bytes. undefined: serve the whole blob
 * (no header, or several ranges, which a server may ignore). Throws 416 when unsatisfiable.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (!m) {
    if (/^\s*bytes\s*=.*,/i.test(header)) return undefined
    throw unsatisfiable(size, `malformed Range header "${header.slice(0, 80)}": expected bytes=start-end`)
  }
  const [, a, b] = m
  let start: number
  let end: number
  if (a === '' && b === '') throw unsatisfiable(size, 'Range header names no bytes')
  if (a === '') {
    const suffix = Number(b)
    if (suffix === 0) throw unsatisfiable(size, 'a suffix range of 0 bytes is empty')
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(a)
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
    if (b !== '' && Number(b) < start) throw unsatisfiable(size, `range end ${b} is before its start ${a}`)
  }
  if (start >= size) throw unsatisfiable(size, `range starts at ${start} but the blob has ${size} bytes`)
  return { start, end }
}

function unsatisfiable(size: number, message: string): RegistryError {
  return new RegistryError('RANGE_INVALID', message, { size }, { headers: { 'Content-Range': `bytes */${size}` } })
}

/**
 * Content-Range of an upload chunk. The spec's form is `<start>-<end>`; the HTTP forms
 * `bytes <start>-<end>/<total|*>` and `bytes=<start>-<end>` are accepted too.
 */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined
  const m = /^\s*(?:bytes[ =])?\s*(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/i.exec(header)
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError('BLOB_UPLOAD_INVALID', `malformed Content-Range "${header.slice(0, 80)}": expected <start>-<end> with end >= start`, undefined, { status: 416 })
  }
  return { start: Number(m[1]), end: Number(m[2]) }
}

/** `n` of a paginated listing: a non-negative integer, or undefined when absent. */
export function parsePageSize(n: string | undefined, max = 10_000): number | undefined {
  if (n === undefined || n === '') return undefined
  if (!/^\d+$/.test(n)) throw new RegistryError('PAGINATION_NUMBER_INVALID', `n must be a non-negative integer, got "${n.slice(0, 40)}"`)
  return Math.min(Number(n), max)
}

/** Link header to the next page (relative, as the spec shows). */
export function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`
}

/**
 * The base URL clients should use in Location headers: the configured public URL, else the
 * request's own scheme and Host (with port), honouring X-Forwarded-Proto/Host from a proxy.
 */
export function baseUrl(publicUrl: string | undefined, requestUrl: string, headers: { get(name: string): string | null | undefined }): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '')
  const url = new URL(requestUrl)
  const proto = headers.get('x-forwarded-proto')?.split(',')[0]?.trim() || url.protocol.replace(':', '')
  const host = headers.get('x-forwarded-host')?.split(',')[0]?.trim() || headers.get('host') || url.host
  return `${proto}://${host}`
}
