/**
 * @module The request's endpoint, read once from the raw request line before auth and routing
 * (oci/endpoints.ts). The Node adapter hands Hono a URL that WHATWG parsing may have rewritten
 * (`/v2/bad/%2e/victim` becomes `/v2/bad/victim`); a request whose raw path differs from what
 * routing sees is refused, so what is authorised is what the route serves.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { type Endpoint, parseEndpoint, type RepositoryEndpoint } from '../oci/endpoints.js'
import { RegistryError } from '../oci/errors.js'
import type { AppEnv } from './env.js'

/** Path and query of the request target exactly as the client sent them. */
export function rawTarget(c: Context<AppEnv>): { path: string; query: string } {
  let target = c.env?.incoming?.url ?? c.req.url
  // Absolute form (`GET http://host/v2/… HTTP/1.1`), and the full URL under app.request() in tests.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target)
  if (scheme) target = target.slice(scheme[0].length) || '/'
  const q = target.indexOf('?')
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) }
}

export function endpoint(): MiddlewareHandler<AppEnv> {
  return async function endpoint(c, next) {
    const { path, query } = rawTarget(c)
    const routed = new URL(c.req.url).pathname
    if (path !== routed) {
      throw new RegistryError('NAME_INVALID', `the path "${path.slice(0, 120)}" is not in canonical form (a "." or ".." segment, a backslash, or characters a URL parser rewrites): it is refused, never served under another name`, { path: path.slice(0, 120) })
    }
    c.set('endpoint', parseEndpoint(path, query))
    await next()
  }
}

/** The route's endpoint, of the kind the route serves; anything else is a routing bug, not a client's fault. */
export function endpointOf<K extends RepositoryEndpoint['kind']>(c: Context<AppEnv>, kind: K): Extract<Endpoint, { kind: K }> {
  const found = c.var.endpoint
  if (found?.kind !== kind) throw new Error(`route for ${kind} reached with endpoint ${found?.kind ?? 'none'}`)
  return found as Extract<Endpoint, { kind: K }>
}
