/**
 * A hostile corpus over raw sockets against a real enlil process: requests Node's HTTP parser (or
 * the Hono adaptor) refuses before the app runs still get the OCI error envelope with a fitting
 * status, a connection sending only blank lines is answered within seconds, and an idle keep-alive
 * client is not cut by the headers deadline.
 */
import { connect, createServer, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'

interface Answer {
  status?: number
  headers: Record<string, string>
  body: string
  /** The connection ended (or was reset) before a whole response arrived. */
  cut: boolean
  elapsedMs: number
}

const sockets = new Set<Socket>()

/** Parses one response out of `raw` once it is complete (headers plus Content-Length bytes). */
function parseResponse(raw: Buffer): Omit<Answer, 'cut' | 'elapsedMs'> | undefined {
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = Number(headers['content-length'] ?? 0)
  if (raw.length < end + 4 + length) return undefined
  return { status: Number(statusLine!.split(' ')[1]), headers, body: raw.subarray(end + 4, end + 4 + length).toString('utf8') }
}

/**
 * Sends `request` on a fresh connection and resolves with the first response, or with what arrived
 * when the connection ended or `timeoutMs` passed. `drip` re-sends the bytes every 200 ms instead.
 */
function exchange(port: number, request: Buffer | string, options: { timeoutMs?: number; halfClose?: boolean; drip?: boolean } = {}): Promise<Answer> {
  const started = Date.now()
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    sockets.add(socket)
    let raw = Buffer.alloc(0)
    let done = false
    const finish = (cut: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearInterval(dripping)
      socket.destroy()
      sockets.delete(socket)
      const parsed = parseResponse(raw)
      resolve({ ...(parsed ?? { headers: {}, body: raw.toString('latin1') }), cut: cut && !parsed, elapsedMs: Date.now() - started })
    }
    const timer = setTimeout(() => finish(true), options.timeoutMs ?? 5_000)
    const dripping = options.drip ? setInterval(() => socket.write(request), 200) : undefined
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk])
      if (parseResponse(raw)) finish(false)
    })
    socket.on('error', () => finish(true))
    socket.on('close', () => finish(true))
    socket.write(request, () => {
      if (options.halfClose) socket.end()
    })
  })
}

/** The first bytes a real TLS client sends: its ClientHello, caught by a plain TCP listener. */
async function clientHello(): Promise<Buffer> {
  const catcher = createServer()
  await new Promise<void>((ok) => catcher.listen(0, '127.0.0.1', ok))
  try {
    return await new Promise<Buffer>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('no ClientHello within 5 s')), 5_000)
      catcher.once('connection', (socket) => socket.once('data', (hello: Buffer) => {
        clearTimeout(timer)
        socket.destroy()
        ok(hello)
      }))
      const client = tlsConnect({ port: (catcher.address() as { port: number }).port, host: '127.0.0.1', servername: 'registry.test', rejectUnauthorized: false })
      client.on('error', () => {})
      client.once('close', () => client.destroy())
    })
  } finally {
    catcher.close()
  }
}

const GET = (headers: string) => `GET /v2/ HTTP/1.1\r\nHost: registry.test\r\n${headers}\r\n`
const POST = (headers: string, body = '') => `POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: registry.test\r\n${headers}\r\n${body}`
/**
 * A monolithic upload: the app reads this body, so a fault in it is met while no response has begun
 * (a session POST is answered 202 before its body is read, and the 400 would come second).
 */
const UPLOAD = (headers: string, body = '') =>
  `POST /v2/a/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: registry.test\r\n${headers}\r\n${body}`

/** name, request, expected status, expected code (when the code says something the status does not). */
const CORPUS_ROWS: Array<[string, string, number, string?]> = [
  // request lines
  ['garbage method', 'FOO\x01BAR /v2/ HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400, 'UNSUPPORTED'],
  ['no HTTP version (HTTP/0.9)', 'GET /v2/\r\nHost: registry.test\r\n\r\n', 400, 'UNSUPPORTED'],
  ['HTTP/9.9', 'GET /v2/ HTTP/9.9\r\nHost: registry.test\r\n\r\n', 400, 'UNSUPPORTED'],
  ['HTTP/2.0 in an HTTP/1 request line', 'GET /v2/ HTTP/2.0\r\nHost: registry.test\r\n\r\n', 505, 'UNSUPPORTED'],
  ['HTTP/2 preface on the HTTP/1.1 port', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'UNSUPPORTED'],
  ['space in the path', 'GET /v2/a b/tags/list HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400],
  ['control character in the path', 'GET /v2/\x01/tags/list HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400],
  ['DEL in the path', 'GET /v2/\x7f HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400],
  ['target that is not a path', 'GET v2/ HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400],
  ['asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400],
  ['backslash in the path', 'GET /v2/..\\..\\etc HTTP/1.1\r\nHost: registry.test\r\n\r\n', 400],
  ['bare LF line endings', 'GET /v2/ HTTP/1.1\nHost: registry.test\n\n', 400],
  // headers
  ['a header larger than 16 KiB', GET(`X-Big: ${'a'.repeat(20_000)}\r\n`), 431, 'SIZE_INVALID'],
  ['a 1 MiB header, still arriving when the answer goes out', GET(`X-Big: ${'a'.repeat(1 << 20)}\r\n`), 431, 'SIZE_INVALID'],
  ['3000 small headers', GET(Array.from({ length: 3_000 }, (_, i) => `X-${i}: y\r\n`).join('')), 431, 'SIZE_INVALID'],
  ['header without a colon', GET('NoColonHere\r\n'), 400],
  ['space in a header name', GET('Bad Name: v\r\n'), 400],
  ['space before the colon', 'GET /v2/ HTTP/1.1\r\nHost : registry.test\r\n\r\n', 400],
  ['separator in a header name', GET('Ba(d: v\r\n'), 400],
  ['control character in a header value', GET('X-A: a\x01b\r\n'), 400],
  ['NUL in a header value', GET('X-A: a\x00b\r\n'), 400],
  ['obsolete line folding', GET('X-A: a\r\n folded\r\n'), 400],
  ['bare CR in a header', GET('X-A: a\rX-B: b\r\n'), 400],
  ['HTTP/1.1 without Host', 'GET /v2/ HTTP/1.1\r\n\r\n', 400, 'UNSUPPORTED'],
  ['HTTP/1.0 without Host', 'GET /v2/ HTTP/1.0\r\n\r\n', 400, 'UNSUPPORTED'],
  ['Host that is not a host', 'GET /v2/ HTTP/1.1\r\nHost: a b\r\n\r\n', 400, 'UNSUPPORTED'],
  // framing
  ['two Content-Lengths that differ', POST('Content-Length: 1\r\nContent-Length: 2\r\n', 'ab'), 400, 'SIZE_INVALID'],
  ['Content-Length and Transfer-Encoding', POST('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 400, 'SIZE_INVALID'],
  ['Content-Length not a number', POST('Content-Length: abc\r\n'), 400, 'SIZE_INVALID'],
  ['negative Content-Length', POST('Content-Length: -1\r\n'), 400, 'SIZE_INVALID'],
  ['Content-Length overflow', POST('Content-Length: 99999999999999999999999\r\n'), 400, 'SIZE_INVALID'],
  ['chunk size not hex', UPLOAD('Transfer-Encoding: chunked\r\n', 'zz\r\nab\r\n0\r\n\r\n'), 400, 'SIZE_INVALID'],
  ['Transfer-Encoding: chunked, gzip', POST('Transfer-Encoding: chunked, gzip\r\n', '0\r\n\r\n'), 400, 'SIZE_INVALID'],
  ['Transfer-Encoding: gzip', POST('Transfer-Encoding: gzip\r\n'), 400, 'SIZE_INVALID'],
  ['chunk extensions over the limit', UPLOAD('Transfer-Encoding: chunked\r\n', `1;${'a'.repeat(20_000)}\r\nx\r\n0\r\n\r\n`), 413, 'SIZE_INVALID'],
  ['chunk longer than its size', UPLOAD('Transfer-Encoding: chunked\r\n', '1\r\nxY\r\n0\r\n\r\n'), 400],
  // expectations
  ['Expect: something-else', GET('Expect: something-else\r\n'), 417, 'UNSUPPORTED'],
]
const CORPUS = CORPUS_ROWS.map(([name, request, status, code]) => ({ name, request, status, code }))

describe('malformed requests against a real enlil', () => {
  let root = ''
  let enlil: Running | undefined
  beforeAll(async () => {
    root = tempDir('malformed')
    enlil = await startEnlil(root)
  })
  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await enlil?.stop()
    removeDir(root)
  })

  const expectEnvelope = (answer: Answer, status: number, code?: string) => {
    expect(answer.status, `body: ${answer.body}`).toBe(status)
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(answer.headers['docker-distribution-api-version']).toBe('registry/2.0')
    const envelope = JSON.parse(answer.body) as { errors: Array<{ code: string; message: string; detail: unknown }> }
    expect(envelope.errors).toHaveLength(1)
    expect(envelope.errors[0]!.code).toMatch(/^[A-Z_]+$/)
    if (code) expect(envelope.errors[0]!.code).toBe(code)
    expect(envelope.errors[0]!.message.length).toBeGreaterThan(10)
    return envelope.errors[0]!
  }

  it.each(CORPUS)('$name → $status with the envelope', async ({ request, status, code }) => {
    expectEnvelope(await exchange(enlil!.port, Buffer.from(request, 'latin1')), status, code)
  })

  it('a body cut short by the client closing its side → 400 with the envelope', async () => {
    const answer = await exchange(enlil!.port, UPLOAD('Content-Length: 10\r\n', 'ab'), { halfClose: true })
    expectEnvelope(answer, 400, 'SIZE_INVALID')
  })

  it('a TLS ClientHello on the plain-HTTP port → 400, which Go clients need to fall back to http://', async () => {
    const answer = await exchange(enlil!.port, await clientHello())
    expect(answer.body.startsWith('{')).toBe(true)
    expect(expectEnvelope(answer, 400).message).toMatch(/TLS/)
  })

  it('a well-formed request still works, so the corpus did not take the server down', async () => {
    const answer = await exchange(enlil!.port, GET('Connection: close\r\n'))
    expect(answer.status).toBe(200)
  })

  // The two slow cases wait out the headers deadline (10 s, checked each second) side by side.
  it.concurrent('a connection sending only blank lines → 408 within seconds, not after 60 s', async () => {
    const answer = await exchange(enlil!.port, '\r\n', { drip: true, timeoutMs: 20_000 })
    expect(answer.elapsedMs).toBeLessThan(15_000)
    expect(answer.elapsedMs).toBeGreaterThanOrEqual(9_000)
    expectEnvelope(answer, 408)
  }, 30_000)

  it.concurrent('a keep-alive client idle for longer than the headers deadline keeps its connection', async () => {
    const socket = connect(enlil!.port, '127.0.0.1')
    sockets.add(socket)
    try {
      let raw = Buffer.alloc(0)
      let closed = false
      socket.on('data', (chunk: Buffer) => { raw = Buffer.concat([raw, chunk]) })
      socket.on('close', () => { closed = true })
      socket.on('error', () => {})
      const next = async () => {
        for (let i = 0; i < 100 && !parseResponse(raw); i++) await new Promise((r) => setTimeout(r, 50))
        const parsed = parseResponse(raw)
        raw = Buffer.alloc(0)
        return parsed
      }
      socket.write(GET(''))
      expect((await next())?.status).toBe(200)
      await new Promise((r) => setTimeout(r, 12_500))
      expect(closed).toBe(false)
      socket.write(GET(''))
      expect((await next())?.status).toBe(200)
    } finally {
      socket.destroy()
      sockets.delete(socket)
    }
  }, 30_000)
})
