/** @module htpasswd mode, as distribution's: HTTP Basic against the accounts file, optionally limited by ACL rules. */
import { RegistryError } from '../oci/errors.js'
import { type AclRule, allowedActions } from './acl.js'
import type { Access, Authorizer, Grant } from './authorizer.js'
import { createAccounts, InvalidCredentialsError, refusedAccess } from './accounts.js'
import { loginKey } from './throttle.js'
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
      const key = loginKey(request.authorization, request.source)
      if (key !== undefined) throttle.check(key)
      const subject = await accounts.fromBasic(request.authorization).catch(async (err: unknown) => {
        if (!(err instanceof InvalidCredentialsError)) throw err
        if (key !== undefined) await throttle.failed(key)
        throw unauthorized(err.message)
      })
      if (subject !== undefined && key !== undefined) throttle.succeeded(key)
      if (!options.acl) {
        if (subject === undefined) throw unauthorized('authentication required: log in with your registry user and password')
        return { subject, access: wanted, mayPull: () => true }
      }
      // The base endpoint challenges anonymous clients: `docker login` checks credentials there.
      if (subject === undefined && wanted.length === 0) throw unauthorized('authentication required: log in with your registry user and password')
      const who = { account: subject ?? '', labels: subject ? accounts.labels(subject) : {}, ip: request.source }
      const what = refusedAccess(options.acl, who, wanted)
      const acl = options.acl
      if (!what) return { subject: subject ?? '', access: wanted, mayPull: (name) => allowedActions(acl, who, { type: 'repository', name, actions: ['pull'] }).length > 0 }
      // Anonymous: maybe logging in helps. An account without the right: 403.
      if (subject === undefined) throw unauthorized(`authentication required for ${what}`)
      throw new RegistryError('DENIED', `account ${subject} may not ${what}`)
    },
  }
}
