/** @module The auth middleware in front of every /v2/ route: asks the Authorizer for the access the request needs. */
import type { Context, MiddlewareHandler } from 'hono'
import { accessFor } from '../auth/scope.js'
import type { Authorizer } from '../auth/authorizer.js'
import type { AppEnv } from './env.js'
import { baseUrl } from './headers.js'
import { basicCredentials, refusedLogin } from '../auth/accounts.js'
import { RegistryError } from '../oci/errors.js'

/**
 * One warning per refused login, saying why (unknown user, wrong password, a key that can't see
 * the bucket, too many failures); the account as sent, never the password or secret.
 */
export function logRefusedLogin(c: Context<AppEnv>, err: unknown, authorization: string | undefined): void {
  const refused = refusedLogin(err)
  if (refused) c.var.log?.warn('login refused', { account: refused.account, reason: refused.reason, client: c.var.clientAddress })
  else if (err instanceof RegistryError && err.code === 'TOOMANYREQUESTS') {
    c.var.log?.warn('login refused', { account: basicCredentials(authorization).user.slice(0, 256), reason: 'too many failed logins from this address: locked out for a minute', client: c.var.clientAddress })
  }
}

export function authenticate(authorizer: Authorizer, publicUrl?: string): MiddlewareHandler<AppEnv> {
  return async function authenticate(c, next) {
    // The endpoint middleware ran first: every request under /v2/ has one.
    const wanted = c.var.endpoint ? accessFor(c.req.method, c.var.endpoint) : []
    // Resolved once by requestContext (access.ts) from the socket and the trusted proxies' headers.
    const source = c.var.clientAddress
    const grant = await authorizer.authorize({
      authorization: c.req.header('authorization'), source,
      baseUrl: () => baseUrl(publicUrl, c.req.url, c.req.raw.headers),
    }, wanted).catch((err: unknown) => {
      logRefusedLogin(c, err, c.req.header('authorization'))
      throw err
    })
    c.set('subject', grant.subject)
    c.set('grant', grant)
    await next()
  }
}
