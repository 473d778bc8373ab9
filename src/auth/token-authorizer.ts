/**
 * @module Token mode, registry side: Bearer tokens from enlil's own token service, verified once
 * and remembered until they expire (keyed by a hash), checked against the access each request needs.
 */
import { createHash } from 'node:crypto'
import { RegistryError } from '../oci/errors.js'
import type { Access, Action, Authorizer, Grant } from './authorizer.js'
import { formatScope, type VerifiedToken } from './token.js'

const CACHE_MAX = 10_000

export interface TokenAuthorizerOptions {
  /** Verifies a bearer token: enlil's own issuer, or an external one's keys. */
  verify: (token: string) => Promise<VerifiedToken>
  service: string
  /** The token endpoint's URL; undefined: enlil's own, `<the request's base URL><path>`. */
  realm?: string
  /** enlil's own token endpoint path (default /auth/token). */
  path?: string
  /**
   * Whether `subject` may pull `name` beyond what its token names (a mount without `from`): enlil's
   * own token service asks its ACL; an external issuer's tokens grant only what they hold.
   */
  mayPull?: (subject: string, name: string, source: string) => boolean
}

export function createTokenAuthorizer(options: TokenAuthorizerOptions): Authorizer {
  const verified = new Map<string, VerifiedToken>()

  const challenge = (baseUrl: string, wanted: Access[], error?: string) => {
    const realm = options.realm ?? `${baseUrl}${options.path ?? '/auth/token'}`
    const scope = wanted.map(formatScope).join(' ')
    const parts = [`realm="${realm}"`, `service="${options.service}"`]
    if (scope) parts.push(`scope="${scope}"`)
    if (error) parts.push(`error="${error}"`)
    return { 'WWW-Authenticate': `Bearer ${parts.join(',')}` }
  }

  return {
    mode: 'token',
    async authorize(request, wanted: Access[]): Promise<Grant> {
      const header = request.authorization
      if (!header?.toLowerCase().startsWith('bearer ')) {
        throw new RegistryError('UNAUTHORIZED', 'authentication required: get a token from the realm in WWW-Authenticate', undefined, { headers: challenge(request.baseUrl(), wanted) })
      }
      const key = createHash('sha256').update(header).digest('base64')
      let token = verified.get(key)
      if (!token || token.expiresAt <= Date.now()) {
        try {
          token = await options.verify(header.slice(7).trim())
        } catch (err) {
          throw new RegistryError('UNAUTHORIZED', `invalid token: ${(err as Error).message}`, undefined, { headers: challenge(request.baseUrl(), wanted, 'invalid_token') })
        }
        if (verified.size >= CACHE_MAX) verified.clear()
        verified.set(key, token)
      }
      const granted = token.access
      const grants = (w: Access, action: Action) => granted.some((g) => g.type === w.type && g.name === w.name && (g.actions.includes(action) || g.actions.includes('*')))
      const missing = wanted.filter((w) => !w.actions.every((action) => grants(w, action)))
      if (missing.length > 0) {
        throw new RegistryError('UNAUTHORIZED', `the token does not grant ${missing.map(formatScope).join(' ')}`, undefined, {
          headers: challenge(request.baseUrl(), wanted, 'insufficient_scope'),
        })
      }
      const subject = token.subject
      return {
        subject, access: wanted,
        mayPull: (name) => grants({ type: 'repository', name, actions: [] }, 'pull') || (options.mayPull?.(subject, name, request.source) ?? false),
      }
    },
  }
}
