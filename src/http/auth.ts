/** @module The auth middleware in front of every /v2/ route: asks the Authorizer for the access the request needs. */
import type { MiddlewareHandler } from 'hono'
import { accessFor } from '../auth/scope.js'
import type { Authorizer } from '../auth/authorizer.js'
import type { AppEnv } from './env.js'
import { baseUrl } from './headers.js'
import { type ClientAddresses, clientAddresses } from './client-address.js'

export function authenticate(authorizer: Authorizer, publicUrl?: string, addresses: ClientAddresses = clientAddresses()): MiddlewareHandler<AppEnv> {
  return async function authenticate(c, next) {
    const url = new URL(c.req.url)
    const wanted = accessFor(c.req.method, url.pathname, url.searchParams)
    const source = addresses.ofRequest(c)
    const grant = await authorizer.authorize({
      authorization: c.req.header('authorization'), source,
      baseUrl: () => baseUrl(publicUrl, c.req.url, c.req.raw.headers),
    }, wanted)
    c.set('subject', grant.subject)
    await next()
  }
}
