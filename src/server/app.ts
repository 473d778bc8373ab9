/** @module createApp: middleware and routes, no I/O of its own; what the tests import. */
import { Hono } from 'hono'
import type { Logger } from '../observe/log.js'
import type { Registry } from '../registry/index.js'
import type { AppEnv } from '../http/env.js'
import type { Authorizer } from '../auth/authorizer.js'
import { authenticate } from '../http/auth.js'
import { clientAddresses } from '../http/client-address.js'
import { type TokenRouteOptions, tokenRoutes } from '../http/routes/token.js'
import { notFound, onError } from '../http/errors.js'
import { API_VERSION_HEADER, type RouteDeps } from '../http/routes/deps.js'
import { blobRoutes } from '../http/routes/blobs.js'
import { uploadRoutes } from '../http/routes/uploads.js'
import { manifestRoutes } from '../http/routes/manifests.js'
import { listingRoutes } from '../http/routes/listings.js'
import { requestContext } from '../http/access.js'
import { endpoint } from '../http/endpoint.js'
import { refuseWritesWhenReadOnly } from '../http/readonly.js'
import type { Notifier } from '../observe/notifications.js'
import { metricsText } from '../observe/metrics-cluster.js'
import { PROMETHEUS_CONTENT_TYPE } from '../observe/metrics.js'
import { type UiOptions, uiRoutes } from '../ui/routes.js'
import type { Router } from '../mirror/routes.js'
import { refusePushesToMirrors } from './mirror.js'
import { type ForwardingOptions, forwardedHop, forwardedRequests, forwardUploads, ownerForLocation } from '../http/forwarding.js'

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
  /** Serve Prometheus metrics at this path on this app (metrics.public); unauthenticated. */
  publicMetricsPath?: string
  /** Webhooks (notifications.endpoints). */
  notifier?: Notifier
  /** The proxies whose X-Forwarded-For is believed (http.trustedproxies); none by default. */
  trustedProxies?: readonly string[]
  /** The web UI (ui.enabled): mounted at its path; omitted, no UI. */
  ui?: Omit<UiOptions, 'registry' | 'deleteEnabled' | 'publicUrl' | 'notifier'>
  /** The pull-through cache's names (server/mirror.ts): pushes into them are refused. */
  mirror?: Router
  /** Upload requests relayed to the process holding the upload's live digest (server/instances.ts). */
  forwarding?: ForwardingOptions
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  const deps: RouteDeps = {
    registry: options.registry,
    deleteEnabled: options.deleteEnabled ?? true,
    manifestMaxSize: options.manifestMaxSize ?? 4 * 1024 * 1024,
    publicUrl: options.publicUrl,
    notifier: options.notifier,
    uploadOwner: options.forwarding && ((c) => ownerForLocation(c, options.forwarding!.self)),
  }
  const app = new Hono<AppEnv>()
  const addresses = clientAddresses(options.trustedProxies)
  app.use(requestContext({ log: options.log, accessLog: options.accessLog ?? true, tokenPath: options.tokenService ? (options.tokenPath ?? '/auth/token') : undefined, metricsPath: options.publicMetricsPath, addresses }))
  // Before auth and routing: the one reading of the path that both of them use.
  app.use(endpoint())
  const metricsPath = options.publicMetricsPath
  if (metricsPath) app.get(metricsPath, async (c) => c.body(await metricsText(), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }))
  // The internal hop's header is refused from clients; a verified hop was authorized at its edge.
  app.use('/v2/*', forwardedRequests())
  if (options.authorizer) {
    const auth = authenticate(options.authorizer, options.publicUrl)
    app.use('/v2/*', (c, next) => (forwardedHop(c) ? next() : auth(c, next)))
  }
  // After auth, as distribution does: an unauthenticated client hears 401 first.
  app.use('/v2/*', refuseWritesWhenReadOnly(options.registry.readOnly))
  if (options.mirror) app.use('/v2/*', refusePushesToMirrors(options.mirror))
  if (options.forwarding) app.use('/v2/*', forwardUploads(options.forwarding))
  if (options.tokenService) app.route(options.tokenPath ?? '/auth/token', tokenRoutes({ ...options.tokenService, addresses }))

  // Liveness and readiness for fly.io and Kubernetes; outside /v2, so never behind auth.
  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    try {
      await withTimeout(options.registry.ready(), 5_000)
      return c.json({ status: 'ready' })
    } catch (err) {
      c.var.log.warn('readiness check failed', { err })
      return c.json({ status: 'unavailable', reason: `the storage backend does not answer or cannot be written: ${(err as Error).message.split('\n')[0]}` }, 503)
    }
  })
  app.get('/v2/', (c) => c.body('{}', 200, { ...API_VERSION_HEADER, 'Content-Type': 'application/json; charset=utf-8' }))
  app.get('/v2', (c) => c.body('{}', 200, { ...API_VERSION_HEADER, 'Content-Type': 'application/json; charset=utf-8' }))
  app.route('/v2', listingRoutes(deps))
  app.route('/v2', uploadRoutes(deps))
  app.route('/v2', blobRoutes(deps))
  app.route('/v2', manifestRoutes(deps))
  if (options.ui) {
    const ui = options.ui
    app.get(`${ui.path}/`, (c) => c.redirect(ui.path, 301))
    app.route(ui.path, uiRoutes({ ...ui, registry: options.registry, deleteEnabled: deps.deleteEnabled, publicUrl: options.publicUrl, notifier: options.notifier }))
    // A browser opening the registry's address lands on the UI; API clients never ask for HTML at /.
    app.get('/', (c) => (c.req.header('accept')?.includes('text/html') ? c.redirect(ui.path, 302) : c.notFound()))
  }

  app.onError(onError)
  app.notFound(notFound)
  return app
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, fail) => { timer = setTimeout(() => fail(new Error(`no answer within ${ms} ms`)), ms) })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}
