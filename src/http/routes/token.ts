/**
 * @module The token service (Docker token spec): GET with Basic credentials and `scope` parameters,
 * and the OAuth2 POST (`grant_type=password` or `refresh_token`). Grants are what the ACL allows,
 * within what was asked; without ACL rules an account gets everything it asks, anonymous nothing.
 */
import { type Context, Hono } from 'hono'
import type { AclRule } from '../../auth/acl.js'
import { allowedActions, mayHaveAccess } from '../../auth/acl.js'
import type { Access } from '../../auth/authorizer.js'
import { type Accounts, InvalidCredentialsError } from '../../auth/accounts.js'
import { parseScope, type TokenIssuer } from '../../auth/token.js'
import { isName } from '../../oci/names.js'
import { throttledLogin } from '../../auth/throttle.js'
import { sharedLoginThrottle } from '../../auth/throttle-cluster.js'
import type { AppEnv } from '../env.js'
import { type ClientAddresses, clientAddresses } from '../client-address.js'
import { logRefusedLogin } from '../auth.js'

export interface TokenRouteOptions {
  accounts: Accounts
  issuer: TokenIssuer
  acl?: readonly AclRule[]
  /** Which proxies' X-Forwarded-For is believed, when no requestContext resolved the address (default: nobody's). */
  addresses?: ClientAddresses
}

function grants(options: TokenRouteOptions, account: string | undefined, ip: string, service: string, scopes: string[]): Access[] {
  // A repository outside the name grammar can't be served, so nothing is granted on it: a glob
  // such as public/* would otherwise match an encoded public/secret%2fx.
  const wanted = scopes.flatMap((s) => s.split(' ')).filter(Boolean).map(parseScope)
    .filter((a): a is Access => a !== undefined && (a.type !== 'repository' || isName(a.name)))
  return wanted.map((w) => {
    const who = { account: account ?? '', labels: account ? options.accounts.labels(account) : {}, ip, service }
    const actions = options.acl ? allowedActions(options.acl, who, w) : account ? w.actions : []
    return { ...w, actions }
  }).filter((a) => a.actions.length > 0)
}

const basicOf = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

const oauthError = (error: string, description: string, status: 400 | 401) =>
  new Response(JSON.stringify({ error, error_description: description }), { status, headers: { 'Content-Type': 'application/json' } })

export function tokenRoutes(options: TokenRouteOptions) {
  const throttle = sharedLoginThrottle()
  const addresses = options.addresses ?? clientAddresses()
  /** The client's address: the one requestContext resolved for this request (mounted alone: resolved here). */
  const addressOf = (c: Context<AppEnv>) => c.var.clientAddress ?? addresses.ofRequest(c)
  /**
   * The account of Basic credentials; wrong ones are slowed down and, repeated, lock that account
   * out from that address (429). Anonymous requests are never throttled.
   */
  const login = (source: string, header: string | undefined) => throttledLogin(throttle, options.accounts, header, source)
  /** `refreshFor`: the Basic header that proved `account`, when a refresh token is asked for. */
  const answer = async (account: string | undefined, access: Access[], service: string, refreshFor?: string) => {
    const token = await options.issuer.issue(account ?? '', access, service)
    return {
      token, access_token: token, expires_in: options.issuer.expiresInSeconds, issued_at: new Date().toISOString(),
      ...(refreshFor && account ? { refresh_token: await options.issuer.issueRefresh(account, options.accounts.credentialOf(account, refreshFor)) } : {}),
    }
  }
  /** The account of a refresh token, while it still holds the credential it logged in with and has some access. */
  const refreshed = async (token: string): Promise<string> => {
    const { subject, credential } = await options.issuer.verifyRefresh(token)
    if (credential === undefined || !(await options.accounts.stillHolds(subject, credential))) {
      throw new Error(`account ${subject} was removed or its password or key changed since this token was issued: log in again`)
    }
    if (options.acl && !mayHaveAccess(options.acl, { account: subject, labels: options.accounts.labels(subject) })) {
      throw new Error(`account ${subject} has no access to this registry anymore`)
    }
    return subject
  }

  return new Hono<AppEnv>()
    .get('/', async (c) => {
      const ip = addressOf(c)
      let account: string | undefined
      try {
        account = await login(ip, c.req.header('authorization'))
      } catch (err) {
        logRefusedLogin(c, err, c.req.header('authorization'))
        if (err instanceof InvalidCredentialsError) return oauthError('invalid_grant', err.message, 401)
        throw err
      }
      const service = c.req.query('service') ?? ''
      const access = grants(options, account, ip, service, c.req.queries('scope') ?? [])
      return c.json(await answer(account, access, service, c.req.query('offline_token') === 'true' ? c.req.header('authorization') : undefined))
    })
    .post('/', async (c) => {
      const ip = addressOf(c)
      const form = await c.req.parseBody()
      const field = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '')
      const scopes = [field('scope')]
      const grantType = field('grant_type')
      let account: string | undefined
      if (grantType === 'password') {
        try {
          account = await login(ip, basicOf(field('username'), field('password')))
        } catch (err) {
          logRefusedLogin(c, err, basicOf(field('username'), field('password')))
          if (err instanceof InvalidCredentialsError) return oauthError('invalid_grant', 'invalid username or password', 401)
          throw err
        }
        if (!account) return oauthError('invalid_grant', 'username and password are required', 400)
      } else if (grantType === 'refresh_token') {
        try {
          account = await refreshed(field('refresh_token'))
        } catch (err) {
          c.var.log?.warn('login refused', { reason: `refresh token: ${(err as Error).message}`, client: ip })
          return oauthError('invalid_grant', `invalid refresh token: ${(err as Error).message}`, 401)
        }
      } else {
        return oauthError('unsupported_grant_type', `grant_type must be password or refresh_token, not "${grantType}"`, 400)
      }
      const access = grants(options, account, ip, field('service'), scopes)
      return c.json(await answer(account, access, field('service'), grantType === 'password' && field('access_type') === 'offline' ? basicOf(field('username'), field('password')) : undefined))
    })
}
