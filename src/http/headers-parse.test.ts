import { describe, expect, it } from 'vitest'
import { RegistryError } from '../oci/errors.js'
import { baseUrl, nextLink, parseContentRange, parsePageSize, parseRangeHeader } from './headers.js'

const statusOf = (fn: () => unknown): number | undefined => {
  try {
    fn()
  } catch (err) {
    return err instanceof RegistryError ? err.status : -1
  }
  return undefined
}

describe('Range of a blob GET', () => {
  it('reads the three forms against the blob size', () => {
    expect(parseRangeHeader(undefined, 10)).toBeUndefined()
    expect(parseRangeHeader('bytes=2-5', 10)).toEqual({ start: 2, end: 5 })
    expect(parseRangeHeader('bytes=7-', 10)).toEqual({ start: 7, end: 9 })
    expect(parseRangeHeader('bytes=-3', 10)).toEqual({ start: 7, end: 9 })
    expect(parseRangeHeader('bytes=5-100', 10)).toEqual({ start: 5, end: 9 })
    expect(parseRangeHeader('bytes=-100', 10)).toEqual({ start: 0, end: 9 })
    expect(parseRangeHeader('bytes=0-1,4-5', 10)).toBeUndefined()
  })
  it('answers 416 with Content-Range bytes */size when unsatisfiable or malformed', () => {
    for (const h of ['bytes=10-', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'items=1-2']) expect(statusOf(() => parseRangeHeader(h, 10)), h).toBe(416)
    try {
      parseRangeHeader('bytes=20-30', 10)
    } catch (err) {
      expect((err as RegistryError).response.headers).toEqual({ 'Content-Range': 'bytes */10' })
    }
  })
})

describe('Content-Range of an upload chunk', () => {
  it("takes the spec's form and the HTTP forms", () => {
    expect(parseContentRange(undefined)).toBeUndefined()
    expect(parseContentRange('0-99')).toEqual({ start: 0, end: 99 })
    expect(parseContentRange('bytes 100-199/*')).toEqual({ start: 100, end: 199 })
    expect(parseContentRange('bytes=5-5')).toEqual({ start: 5, end: 5 })
  })
  it('answers 416 when it is not a range', () => {
    for (const h of ['', 'abc', '9-1', '-5', '1-']) expect(statusOf(() => parseContentRange(h)), h).toBe(416)
  })
})

describe('pagination and URLs', () => {
  it('reads n and builds the next link', () => {
    expect(parsePageSize(undefined)).toBeUndefined()
    expect(parsePageSize('0')).toBe(0)
    expect(parsePageSize('20000')).toBe(10000)
    expect(statusOf(() => parsePageSize('-1'))).toBe(400)
    expect(statusOf(() => parsePageSize('1e3'))).toBe(400)
    expect(nextLink('/v2/a/tags/list', 2, 'v1.0+x')).toBe('</v2/a/tags/list?n=2&last=v1.0%2Bx>; rel="next"')
  })
  it('builds absolute URLs from the public URL, the proxy headers, or the Host', () => {
    const h = (o: Record<string, string>) => ({ get: (n: string) => o[n.toLowerCase()] })
    expect(baseUrl('https://reg.example.com/', 'http://10.0.0.1:5000/v2/', h({}))).toBe('https://reg.example.com')
    expect(baseUrl(undefined, 'http://10.0.0.1:5000/v2/', h({ host: 'localhost:5000' }))).toBe('http://localhost:5000')
    expect(baseUrl(undefined, 'http://10.0.0.1:5000/v2/', h({ host: 'x', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'reg.example.com' }))).toBe('https://reg.example.com')
  })
})
