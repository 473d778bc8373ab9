/** @module The auth middleware in front of every /v2/ route: asks the Authorizer for the access the request needs. */
import type { MiddlewareHandler } from 'hono'
import { accessFor } from '../auth/scope.js'
import type { Authorizer } from '../auth/authorizer.js'
import type { AppEnv } from './env.js'
import { baseUrl } from './headers.js'

export function authenticate(authorizer: Authorizer, publicUrl?: string): MiddlewareHandler<AppEnv> {
  return async function authenticate(c, next) {
    // The endpoint middleware ran first: every request under /v2/ has one.
    const wanted = c.var.endpoint ? accessFor(c.req.method, c.var.endpoint) : []
    // Resolved once by requestContext (access.ts) from the socket and the trusted proxies' headers.
    const source = c.var.clientAddress
    const grant = await authorizer.authorize({
      authorization: c.req.header('authorization'), source,
      baseUrl: () => baseUrl(publicUrl, c.req.url, c.req.raw.headers),
    }, wanted)
    c.set('subject', grant.subject)
    c.set('grant', grant)
    await next()
  }
}
