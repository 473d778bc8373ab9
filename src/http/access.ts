/**
 * @module The first middleware: request id, per-request logger, and when the response is done, one
 * access-log line and the request metrics. Recorded on the response's `close`, never touching it
 * (DESIGN.md: a header set after `await next()` breaks raw responses and halves throughput).
 */
import type { Context } from 'hono'
import { randomBytes } from 'node:crypto'
import type { Logger } from '../observe/log.js'
import { metrics } from '../observe/metrics.js'
import type { AppEnv } from './env.js'
import { CLIENT_CLOSED_REQUEST, clientGone, countBody } from './client-gone.js'
import { type ClientAddresses, clientAddresses } from './client-address.js'

export interface RequestContextOptions {
  log: Logger
  accessLog: boolean
  tokenPath?: string
  metricsPath?: string
  /** Whose X-Forwarded-For is believed (default: nobody's; the socket's address is the client). */
  addresses?: ClientAddresses
}

/** The route template of a path, for metrics and logs: `/v2/<name>/blobs/<digest>` → `blob`. */
export function routeTemplate(path: string, tokenPath = '/auth/token', metricsPath = '/metrics'): string {
  if (!path.startsWith('/v2')) {
    if (path === '/healthz' || path === '/readyz') return 'health'
    if (path === tokenPath) return 'token'
    if (path === metricsPath) return 'metrics'
    return 'other'
  }
  if (path === '/v2/' || path === '/v2') return 'base'
  if (path === '/v2/_catalog') return 'catalog'
  // Names may contain "blobs" or "manifests": only the last segments decide.
  const parts = path.split('/')
  const n = parts.length
  if (parts[n - 2] === 'uploads' && parts[n - 3] === 'blobs') return 'upload'
  if (parts[n - 2] === 'blobs') return 'blob'
  if (parts[n - 2] === 'manifests') return 'manifest'
  if (parts[n - 2] === 'tags' && parts[n - 1] === 'list') return 'tags'
  if (parts[n - 2] === 'referrers') return 'referrers'
  return 'other'
}

export function requestContext(options: RequestContextOptions) {
  const { log, accessLog } = options
  const addresses = options.addresses ?? clientAddresses()
  const prefix = randomBytes(4).toString('hex')
  let counter = 0
  return async function requestContext(c: Context<AppEnv>, next: () => Promise<void>) {
    const requestId = c.req.header('x-request-id')?.slice(0, 64) || `${prefix}-${(++counter).toString(36)}`
    c.set('requestId', requestId)
    c.set('log', log.child({ requestId }))
    c.set('clientAddress', addresses.ofRequest(c))
    const started = performance.now()
    const incoming = c.env?.incoming
    const socket = incoming?.socket
    const written = socket?.bytesWritten ?? 0
    const body = incoming && (c.req.header('content-length') || c.req.header('transfer-encoding')) ? countBody(incoming) : undefined
    await next()
    const outgoing = c.env?.outgoing
    const record = () => {
      const path = c.req.path
      const route = routeTemplate(path, options.tokenPath, options.metricsPath)
      const method = c.req.method
      const status = clientGone(incoming, outgoing) ? CLIENT_CLOSED_REQUEST : outgoing ? outgoing.statusCode : c.res.status
      const ms = performance.now() - started
      // What arrived, not what was announced: a client that went away sent less.
      const bytesIn = body?.received ?? c.var.bytesIn ?? (Number(c.req.header('content-length')) || 0)
      const bytesOut = socket ? socket.bytesWritten - written : Number(c.res.headers.get('content-length')) || 0
      metrics.requests.inc([route, method, String(status)])
      metrics.requestSeconds.observe(ms / 1000, [route, method])
      if (bytesIn > 0) metrics.bytesIn.inc([route], bytesIn)
      if (bytesOut > 0) metrics.bytesOut.inc([route], bytesOut)
      // Health probes arrive every few seconds: they would drown the access log.
      if (!accessLog || route === 'health') return
      // The path only: query strings may carry secrets, and the Authorization header is never read here.
      log.info('request', {
        requestId, method, path, status, route, ms: Math.round(ms * 10) / 10, bytesIn, bytesOut,
        user: c.var.subject || undefined, addr: c.var.clientAddress || undefined, ua: c.req.header('user-agent')?.slice(0, 80),
      })
    }
    if (outgoing && !outgoing.writableFinished && !outgoing.destroyed) outgoing.once('close', record)
    else record()
  }
}
