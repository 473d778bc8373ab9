/** @module createApp: middleware and routes, no I/O of its own; what the tests import. */
import { Hono } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { randomBytes } from 'node:crypto'
import type { Logger } from './log.js'
import type { Registry } from './registry/index.js'
import type { AppEnv } from './http/env.js'
import type { Authorizer } from './auth/authorizer.js'
import { authenticate } from './http/auth.js'
import { type TokenRouteOptions, tokenRoutes } from './http/routes/token.js'
import { notFound, onError } from './http/errors.js'
import { API_VERSION_HEADER, type RouteDeps } from './http/routes/deps.js'
import { blobRoutes } from './http/routes/blobs.js'
import { uploadRoutes } from './http/routes/uploads.js'
import { manifestRoutes } from './http/routes/manifests.js'
import { listingRoutes } from './http/routes/listings.js'

export interface AppOptions {
  registry: Registry
  /** Omitted: no authentication (every request may do everything). */
  authorizer?: Authorizer
  /** Token mode: the token service, mounted at `tokenPath` (default /auth/token). */
  tokenService?: TokenRouteOptions
  tokenPath?: string
  log: Logger
  deleteEnabled?: boolean
  manifestMaxSize?: number
  publicUrl?: string
  accessLog?: boolean
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  const deps: RouteDeps = {
    registry: options.registry,
    deleteEnabled: options.deleteEnabled ?? true,
    manifestMaxSize: options.manifestMaxSize ?? 4 * 1024 * 1024,
    publicUrl: options.publicUrl,
  }
  const app = new Hono<AppEnv>()
  app.use(requestContext(options.log, options.accessLog ?? true))
  if (options.authorizer) app.use('/v2/*', authenticate(options.authorizer, options.publicUrl))
  if (options.tokenService) app.route(options.tokenPath ?? '/auth/token', tokenRoutes(options.tokenService))

  // Liveness and readiness for fly.io and Kubernetes; outside /v2, so never behind auth.
  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    try {
      await withTimeout(options.registry.ready(), 5_000)
      return c.json({ status: 'ready' })
    } catch (err) {
      c.var.log.warn('readiness check failed', { err })
      return c.json({ status: 'unavailable', reason: 'the storage backend does not answer' }, 503)
    }
  })
  app.get('/v2/', (c) => c.body('{}', 200, { ...API_VERSION_HEADER, 'Content-Type': 'application/json; charset=utf-8' }))
  app.get('/v2', (c) => c.body('{}', 200, { ...API_VERSION_HEADER, 'Content-Type': 'application/json; charset=utf-8' }))
  app.route('/v2', listingRoutes(deps))
  app.route('/v2', uploadRoutes(deps))
  app.route('/v2', blobRoutes(deps))
  app.route('/v2', manifestRoutes(deps))

  app.onError(onError)
  app.notFound(notFound)
  return app
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, fail) => { timer = setTimeout(() => fail(new Error(`no answer within ${ms} ms`)), ms) })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

/** Request id, per-request logger, and one access line per request (written after, never touching the response). */
function requestContext(log: Logger, accessLog: boolean) {
  const prefix = randomBytes(4).toString('hex')
  let counter = 0
  return async function requestContext(c: import('hono').Context<AppEnv>, next: () => Promise<void>) {
    const requestId = c.req.header('x-request-id')?.slice(0, 64) || `${prefix}-${(++counter).toString(36)}`
    c.set('requestId', requestId)
    c.set('log', log.child({ requestId }))
    const started = performance.now()
    await next()
    // Health probes arrive every few seconds: they would drown the access log.
    if (!accessLog || c.req.path === '/healthz' || c.req.path === '/readyz') return
    const status = c.res === RESPONSE_ALREADY_SENT ? (c.env?.outgoing?.statusCode ?? 0) : c.res.status
    log.info('request', {
      requestId, method: c.req.method, path: c.req.path, status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ua: c.req.header('user-agent')?.slice(0, 80),
    })
  }
}
