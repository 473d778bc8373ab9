/**
 * A fault-injecting HTTP proxy for tests, between enlil and the S3 server: it forwards every request
 * unchanged (the Host header too, so SigV4 signatures still hold) and, by rates drawn from a seeded
 * PRNG or by rules a test sets, answers 503 SlowDown or 500 InternalError in S3's XML instead, cuts
 * the connection partway through a response body (a TCP reset or a plain close), or holds a response
 * back before relaying it.
 */
import { Agent, createServer, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from 'node:http'

export type FaultKind = 'slowDown' | 'internalError' | 'reset' | 'hold'

/** Probabilities per request, each in [0, 1]; at most one fault is injected into a request. */
export type FaultRates = Partial<Record<FaultKind, number>>

export interface FaultRule {
  /** Which requests: method and URL (path and query) as the proxy received them. */
  match: (req: { method: string; url: string; headers: IncomingHttpHeaders }) => boolean
  fault: FaultKind
  /** How many matching requests get the fault; then the rule is spent. Default: every one. */
  times?: number
  /** For `reset`: the share of the body relayed before the cut, in (0, 1). Default: random. */
  at?: number
}

export interface ProxiedRequest {
  method: string
  url: string
  range?: string
  ifMatch?: string
  fault?: FaultKind
  /** The status relayed or answered (a cut body still has its status). */
  status?: number
  /** Response body bytes relayed from the S3 server (what enlil read back). */
  bytes: number
}

export interface FaultProxyOptions {
  /** The S3 endpoint, e.g. http://127.0.0.1:9000. */
  target: string
  seed?: number
  rates?: FaultRates
  /** Range of a held response's delay in ms. Default [200, 1000]. */
  holdMs?: [number, number]
}

export interface FaultProxy {
  url: string
  /** Requests seen, and faults injected by kind (a reset counts only when a body was cut). */
  counts: Record<FaultKind | 'requests', number>
  log: ProxiedRequest[]
  setRates(rates: FaultRates): void
  /** Adds a rule, checked before the rates; returns its removal. */
  addRule(rule: FaultRule): () => void
  close(): Promise<void>
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'expect', 'proxy-connection', 'upgrade'])

function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target)
  const random = seededRandom(options.seed ?? 1)
  const [holdMin, holdMax] = options.holdMs ?? [200, 1000]
  let rates: FaultRates = options.rates ?? {}
  const rules: (FaultRule & { left: number })[] = []
  const counts: FaultProxy['counts'] = { requests: 0, slowDown: 0, internalError: 0, reset: 0, hold: 0 }
  const log: ProxiedRequest[] = []
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })

  /** The fault for a request: a live rule first, else one draw against the rates. */
  function pick(req: IncomingMessage): { fault?: FaultKind; at?: number } {
    const seen = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }
    for (const rule of rules) {
      if (rule.left > 0 && rule.match(seen)) {
        rule.left--
        return { fault: rule.fault, at: rule.at }
      }
    }
    const draw = random()
    let sum = 0
    for (const kind of ['slowDown', 'internalError', 'reset', 'hold'] as const) {
      sum += rates[kind] ?? 0
      if (draw < sum) return { fault: kind }
    }
    return {}
  }

  function answer(req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest, status: number, code: string, message: string): void {
    // Read the request body first, as a server that refuses it after looking would.
    req.resume()
    req.once('end', () => {
      const body = s3Error(code, message)
      entry.status = status
      res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
    })
  }

  /** Relays the response, cutting it after `at` of its body when asked. */
  function relay(req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest, cut: { at?: number } | undefined, holdFor: number): void {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value
    const upstream = request({
      protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent,
    }, (up) => {
      const send = () => {
        if (res.destroyed) return void up.destroy()
        const out: Record<string, string | string[]> = {}
        for (const [name, value] of Object.entries(up.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
        entry.status = up.statusCode
        const length = Number(up.headers['content-length'] ?? NaN)
        const hasBody = req.method !== 'HEAD' && up.statusCode !== 204 && up.statusCode !== 304 && (Number.isNaN(length) || length >= 2)
        res.writeHead(up.statusCode ?? 502, out)
        up.on('data', (chunk: Buffer) => { entry.bytes += chunk.length })
        if (!cut || !hasBody) {
          up.pipe(res)
          return
        }
        // Cut after a share of the body: of its announced length, or of the first chunk when chunked.
        const share = cut.at ?? 0.05 + 0.9 * random()
        const resetHard = random() < 0.5
        let limit = Number.isNaN(length) ? -1 : Math.min(length - 1, Math.max(1, Math.floor(length * share)))
        let sent = 0
        up.on('data', (chunk: Buffer) => {
          if (limit < 0) limit = Math.max(1, Math.floor(chunk.length * share))
          const room = limit - sent
          if (room <= 0) return
          const piece = chunk.length > room ? chunk.subarray(0, room) : chunk
          sent += piece.length
          const full = sent >= limit
          res.write(piece, () => {
            if (!full) return
            up.destroy()
            // Let the bytes leave before the cut, so the reader sees a body broken off, not none.
            setTimeout(() => {
              const socket = res.socket
              if (resetHard && socket && 'resetAndDestroy' in socket) socket.resetAndDestroy()
              else socket?.destroy()
            }, 5)
          })
          if (full) {
            counts.reset++
            entry.fault = 'reset'
          }
        })
        up.on('end', () => { if (sent < limit || limit < 0) res.end() })
      }
      if (holdFor > 0) setTimeout(send, holdFor)
      else send()
      up.on('error', () => res.destroy())
    })
    upstream.on('error', () => res.destroy())
    res.on('close', () => { if (!res.writableFinished) upstream.destroy() })
    req.pipe(upstream)
  }

  const server = createServer((req, res) => {
    counts.requests++
    const entry: ProxiedRequest = {
      method: req.method ?? 'GET', url: req.url ?? '/', bytes: 0,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers['if-match'] ? { ifMatch: req.headers['if-match'] } : {}),
    }
    log.push(entry)
    const { fault, at } = pick(req)
    if (fault === 'slowDown' || fault === 'internalError') {
      counts[fault]++
      entry.fault = fault
      if (fault === 'slowDown') answer(req, res, entry, 503, 'SlowDown', 'Please reduce your request rate.')
      else answer(req, res, entry, 500, 'InternalError', 'We encountered an internal error. Please try again.')
      return
    }
    let holdFor = 0
    if (fault === 'hold') {
      counts.hold++
      entry.fault = 'hold'
      holdFor = holdMin + Math.floor(random() * (holdMax - holdMin))
    }
    relay(req, res, entry, fault === 'reset' ? { at } : undefined, holdFor)
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const port = (server.address() as { port: number }).port

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    log,
    setRates(next) { rates = next },
    addRule(rule) {
      const live = { ...rule, left: rule.times ?? Infinity }
      rules.push(live)
      return () => { rules.splice(rules.indexOf(live), 1) }
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((ok) => server.close(() => ok()))
      agent.destroy()
    },
  }
}
