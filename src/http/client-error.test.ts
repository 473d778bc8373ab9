/** @module Unit tests: parser errors → statuses and messages, the raw response, and the safety rules of the clientError handler. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { RequestError } from '@hono/node-server'
import { describeClientError, installClientErrors, rawResponse, refuseRequest, requestErrorResponse } from './client-error.js'

/** An error shaped as Node's parser reports it. */
function parseError(code: string, reason?: string, rawPacket?: Buffer, bytesParsed = 10): Error {
  return Object.assign(new Error(`Parse Error: ${reason ?? ''}`), { code, reason, rawPacket, bytesParsed })
}

describe('describeClientError', () => {
  it('answers nobody when the peer is gone or the socket itself failed', () => {
    expect(describeClientError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 10_000)).toBeUndefined()
    expect(describeClientError(Object.assign(new Error('pipe'), { code: 'EPIPE', syscall: 'write' }), 10_000)).toBeUndefined()
  })

  it('maps the size limits to 431 and 413', () => {
    expect(describeClientError(parseError('HPE_HEADER_OVERFLOW', 'Header overflow'), 10_000)).toMatchObject({ status: 431, code: 'SIZE_INVALID', message: expect.stringMatching(/16 KiB/) })
    expect(describeClientError(parseError('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'Chunk extensions overflow'), 10_000)).toMatchObject({ status: 413, code: 'SIZE_INVALID' })
  })

  it('maps the headers deadline to 408 and names it', () => {
    const timeout = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })
    expect(describeClientError(timeout, 10_000)).toEqual({ status: 408, code: 'UNSUPPORTED', message: 'the request line and headers did not arrive within 10 s' })
  })

  it('maps framing faults to 400 SIZE_INVALID with the parser reason', () => {
    for (const [code, reason] of [
      ['HPE_UNEXPECTED_CONTENT_LENGTH', 'Duplicate Content-Length'],
      ['HPE_INVALID_CONTENT_LENGTH', 'Invalid character in Content-Length'],
      ['HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding can\'t be present with Content-Length'],
      ['HPE_INVALID_CHUNK_SIZE', 'Invalid character in chunk size'],
    ] as const) {
      const refusal = describeClientError(parseError(code, reason), 10_000)
      expect(refusal).toMatchObject({ status: 400, code: 'SIZE_INVALID' })
      expect(refusal!.message.toLowerCase()).toContain(reason.toLowerCase())
    }
  })

  it('lowers only a plain first word of the reason', () => {
    expect(describeClientError(parseError('HPE_INVALID_HEADER_TOKEN', 'Invalid header value char'), 10_000)!.message)
      .toBe('the request could not be parsed as HTTP/1.1: invalid header value char')
    expect(describeClientError(parseError('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding can\'t be present with Content-Length'), 10_000)!.message)
      .toMatch(/: Transfer-Encoding can't/)
  })

  it('answers a request cut short, HTTP/2 prior knowledge and unknown codes in its own words', () => {
    expect(describeClientError(parseError('HPE_INVALID_EOF_STATE'), 10_000)).toMatchObject({ status: 400, code: 'SIZE_INVALID', message: expect.stringMatching(/ended before the request was complete/) })
    expect(describeClientError(parseError('HPE_PAUSED_H2_UPGRADE', 'Pause on PRI/Upgrade'), 10_000)).toMatchObject({ status: 505, code: 'UNSUPPORTED' })
    expect(describeClientError(parseError('HPE_SOMETHING_NEW'), 10_000)).toMatchObject({ status: 400, code: 'UNSUPPORTED', message: expect.stringMatching(/malformed request$/) })
  })

  it('answers a TLS ClientHello with 400 and says so; other bad methods stay a parse error', () => {
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
    expect(describeClientError(parseError('HPE_INVALID_METHOD', 'Invalid method encountered', hello, 0), 10_000)).toMatchObject({ status: 400, message: expect.stringMatching(/TLS handshake/) })
    expect(describeClientError(parseError('HPE_INVALID_METHOD', 'Invalid method encountered', Buffer.from('FOO'), 0), 10_000)!.message).toMatch(/invalid method/)
  })
})

describe('rawResponse', () => {
  it('is a complete HTTP/1.1 response with the envelope that closes the connection', () => {
    const raw = rawResponse({ status: 431, code: 'SIZE_INVALID', message: 'too big: é' }, new Date(0))
    const [head, body] = raw.split('\r\n\r\n')
    const lines = head!.split('\r\n')
    expect(lines[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large')
    expect(lines).toContain('Content-Type: application/json; charset=utf-8')
    expect(lines).toContain('Docker-Distribution-API-Version: registry/2.0')
    expect(lines).toContain('Connection: close')
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength(body!)}`)
    expect(JSON.parse(body!)).toEqual({ errors: [{ code: 'SIZE_INVALID', message: 'too big: é', detail: null }] })
  })
})

describe('refuseRequest', () => {
  const request = (httpVersion: string, headers: Record<string, string> = { host: 'x' }) => {
    const [major, minor] = httpVersion.split('.').map(Number)
    return { httpVersion, httpVersionMajor: major, httpVersionMinor: minor, headers } as unknown as IncomingMessage
  }

  it('lets HTTP/1.1 with Host and HTTP/1.0 through', () => {
    expect(refuseRequest(request('1.1'))).toBeUndefined()
    expect(refuseRequest(request('1.0', {}))).toBeUndefined()
  })

  it('refuses HTTP/0.9, other major versions and HTTP/1.1 without Host', () => {
    expect(refuseRequest(request('0.9'))).toMatchObject({ status: 400 })
    expect(refuseRequest(request('2.0'))).toMatchObject({ status: 505, message: expect.stringMatching(/HTTP\/2\.0/) })
    expect(refuseRequest(request('1.1', {}))).toMatchObject({ status: 400, message: expect.stringMatching(/Host/) })
  })
})

describe('requestErrorResponse', () => {
  it('answers the adaptor refusals with 400 and anything else with 500, both as the envelope', async () => {
    const refused = requestErrorResponse(new RequestError('Invalid URL'))
    expect(refused.status).toBe(400)
    expect(refused.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    expect(await refused.json()).toEqual({ errors: [{ code: 'UNSUPPORTED', message: 'the request target or Host header is not valid: invalid URL', detail: null }] })
    const failed = requestErrorResponse(new Error('boom'))
    expect(failed.status).toBe(500)
    expect((await failed.json()).errors[0].code).toBe('UNKNOWN')
  })
})

describe('installClientErrors', () => {
  /** A socket that records what is written to it, with an optional response in progress. */
  function fakeSocket(inFlight?: Partial<ServerResponse>) {
    const written: string[] = []
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk.toString())
        done()
      },
    })
    Object.assign(socket, { _httpMessage: inFlight ?? null })
    return { socket, written }
  }
  const server = createServer()
  installClientErrors(server)
  const badHeader = () => parseError('HPE_INVALID_HEADER_TOKEN', 'Invalid header token')

  it('writes one envelope response and ends the socket, however often the parser reports', async () => {
    const { socket, written } = fakeSocket()
    server.emit('clientError', badHeader(), socket)
    server.emit('clientError', badHeader(), socket)
    await new Promise((r) => setImmediate(r))
    expect(written).toHaveLength(1)
    expect(written[0]).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
    expect(socket.writableEnded).toBe(true)
    socket.destroy()
  })

  it('writes nothing once a response has begun on the socket, and destroys it', () => {
    const { socket, written } = fakeSocket({ headersSent: true })
    server.emit('clientError', badHeader(), socket)
    expect(written).toHaveLength(0)
    expect(socket.destroyed).toBe(true)
  })

  it('writes nothing to a reset connection or a socket that cannot take it', () => {
    const reset = fakeSocket()
    server.emit('clientError', Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset.socket)
    expect(reset.written).toHaveLength(0)
    expect(reset.socket.destroyed).toBe(true)
    const ended = fakeSocket()
    ended.socket.end()
    server.emit('clientError', badHeader(), ended.socket)
    expect(ended.written).toHaveLength(0)
    expect(ended.socket.destroyed).toBe(true)
  })
})
