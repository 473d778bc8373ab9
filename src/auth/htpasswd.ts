/** @module htpasswd mode, as distribution's: HTTP Basic against the accounts file, optionally limited by ACL rules. */
import { RegistryError } from '../oci/errors.js'
import { type AclRule, mayPullRepository } from './acl.js'
import type { Access, Authorizer, Grant } from './authorizer.js'
import { createAccounts, InvalidCredentialsError, refusedAccess } from './accounts.js'
import { throttledLogin } from './throttle.js'
import { sharedLoginThrottle } from './throttle-cluster.js'

export interface HtpasswdOptions {
  realm: string
  path: string
  /** When given, what each account (or anonymous, without credentials) may do; else everything. */
  acl?: readonly AclRule[]
}

export function createHtpasswdAuthorizer(options: HtpasswdOptions): Authorizer {
  const accounts = createAccounts(options.path)
  const throttle = sharedLoginThrottle()
  const challenge = { 'WWW-Authenticate': `Basic realm="${options.realm.replace(/"/g, '')}"` }
  const unauthorized = (message: string) => new RegistryError('UNAUTHORIZED', message, undefined, { headers: challenge })

  return {
    mode: 'htpasswd',
    async authorize(request, wanted: Access[]): Promise<Grant> {
      // Only logins are throttled, per account and address: anonymous requests never are.
      const subject = await throttledLogin(throttle, accounts, request.authorization, request.source).catch((err: unknown) => {
        // The why goes to the registry's log (http/auth.ts), not to the client.
        throw err instanceof InvalidCredentialsError ? Object.assign(unauthorized(err.message), { loginRefused: { account: err.account, reason: err.reason } }) : err
      })
      if (!options.acl) {
        if (subject === undefined) throw unauthorized('authentication required: log in with your registry user and password')
        return { subject, access: wanted, mayPull: () => true }
      }
      // The base endpoint challenges anonymous clients: `docker login` checks credentials there.
      if (subject === undefined && wanted.length === 0) throw unauthorized('authentication required: log in with your registry user and password')
      const who = { account: subject ?? '', labels: subject ? accounts.labels(subject) : {}, ip: request.source }
      const what = refusedAccess(options.acl, who, wanted)
      const acl = options.acl
      if (!what) return { subject: subject ?? '', access: wanted, mayPull: (name) => mayPullRepository(acl, who, name) }
      // Anonymous: maybe logging in helps. An account without the right: 403.
      if (subject === undefined) throw unauthorized(`authentication required for ${what}`)
      throw new RegistryError('DENIED', `account ${subject} may not ${what}`)
    },
  }
}
