/** @module htpasswd mode, as distribution's: HTTP Basic against the accounts file, optionally limited by ACL rules. */
import { RegistryError } from '../oci/errors.js'
import type { AclRule } from './acl.js'
import type { Access, Authorizer, Grant } from './authorizer.js'
import { createAccounts, InvalidCredentialsError, refusedAccess } from './accounts.js'
import { createLoginThrottle } from './throttle.js'

export interface HtpasswdOptions {
  realm: string
  path: string
  /** When given, what each account (or anonymous, without credentials) may do; else everything. */
  acl?: readonly AclRule[]
}

export function createHtpasswdAuthorizer(options: HtpasswdOptions): Authorizer {
  const accounts = createAccounts(options.path)
  const throttle = createLoginThrottle()
  const challenge = { 'WWW-Authenticate': `Basic realm="${options.realm.replace(/"/g, '')}"` }
  const unauthorized = (message: string) => new RegistryError('UNAUTHORIZED', message, undefined, { headers: challenge })

  return {
    mode: 'htpasswd',
    async authorize(request, wanted: Access[]): Promise<Grant> {
      throttle.check(request.source)
      const subject = await accounts.fromBasic(request.authorization).catch(async (err: unknown) => {
        if (!(err instanceof InvalidCredentialsError)) throw err
        await throttle.failed(request.source)
        throw unauthorized(err.message)
      })
      if (subject !== undefined) throttle.succeeded(request.source)
      if (!options.acl) {
        if (subject === undefined) throw unauthorized('authentication required: log in with your registry user and password')
        return { subject, access: wanted }
      }
      // The base endpoint challenges anonymous clients: `docker login` checks credentials there.
      if (subject === undefined && wanted.length === 0) throw unauthorized('authentication required: log in with your registry user and password')
      const who = { account: subject ?? '', labels: subject ? accounts.labels(subject) : {}, ip: request.source }
      const what = refusedAccess(options.acl, who, wanted)
      if (!what) return { subject: subject ?? '', access: wanted }
      // Anonymous: maybe logging in helps. An account without the right: 403.
      if (subject === undefined) throw unauthorized(`authentication required for ${what}`)
      throw new RegistryError('DENIED', `account ${subject} may not ${what}`)
    },
  }
}
