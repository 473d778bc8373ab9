/**
 * @module The web UI's view of the auth mode (ui/access.ts): the same accounts, ACL rules and login
 * throttle as the API, and the key that signs its session cookies, which every instance sharing the
 * config derives alike (the token signing key; in htpasswd mode the accounts file).
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { Config } from '../config/schema.js'
import type { Logger } from '../observe/log.js'
import { type Accounts, createAccounts, createAccountsFromText } from '../auth/accounts.js'
import { allowedActions, type AclRule } from '../auth/acl.js'
import type { Access } from '../auth/authorizer.js'
import { throttledLogin } from '../auth/throttle.js'
import { sharedLoginThrottle } from '../auth/throttle-cluster.js'
import { createExternalVerifier } from '../auth/external-issuer.js'
import { formatScope } from '../auth/token.js'
import { isName } from '../oci/names.js'
import { everything, nothing, type Right, type UiAccess } from '../ui/access.js'
import type { AppOptions } from './app.js'

const INFO = 'enlil web ui session'
const derive = (material: Uint8Array) => new Uint8Array(hkdfSync('sha256', material, Buffer.alloc(0), INFO, 32))
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const fingerprint = (s: string) => (s ? createHash('sha256').update(s).digest('base64url').slice(0, 16) : '')

/** What the rules give `account` on a repository; without rules: everything to accounts, nothing to anonymous (as the API). */
function ruleRights(acl: readonly AclRule[] | undefined, accounts: Accounts | undefined, account: string, name: string, source: string): Set<Right> {
  if (!isName(name)) return nothing()
  if (!acl) return account ? everything() : nothing()
  const who = { account, labels: account && accounts ? accounts.labels(account) : {}, ip: source }
  return new Set(allowedActions(acl, who, { type: 'repository', name, actions: ['pull', 'push', 'delete'] }) as Right[])
}

function ruleAdmin(acl: readonly AclRule[] | undefined, accounts: Accounts | undefined, account: string, source: string): boolean {
  if (!acl) return account !== ''
  const who = { account, labels: account && accounts ? accounts.labels(account) : {}, ip: source }
  return allowedActions(acl, who, { type: 'registry', name: 'catalog', actions: ['*'] }).includes('*')
}

export async function createUiAccess(config: Config, auth: Pick<AppOptions, 'tokenService'>, log: Logger): Promise<UiAccess> {
  const acl = config.auth.acl
  const throttle = sharedLoginThrottle()
  if (config.auth.mode === 'htpasswd') {
    const path = config.auth.htpasswd!.path!
    const accounts = createAccounts(path)
    // The accounts file holds secrets (bcrypt hashes) every instance shares: a changed file ends every session.
    let keyed = { mtimeMs: -1, size: -1, key: new Uint8Array() }
    return {
      kind: 'accounts',
      async sessionKey() {
        const s = statSync(path)
        if (s.mtimeMs !== keyed.mtimeMs || s.size !== keyed.size) keyed = { mtimeMs: s.mtimeMs, size: s.size, key: derive(readFileSync(path)) }
        return keyed.key
      },
      login: async (user, password, source) => (await throttledLogin(throttle, accounts, basic(user, password), source)) ?? '',
      credential: (account) => fingerprint(accounts.credentialOf(account, '')),
      rights: async (account, name, source) => ruleRights(acl, accounts, account, name, source),
      mayList: async () => true,
      isAdmin: (account, source) => ruleAdmin(acl, accounts, account, source),
    }
  }
  if (config.auth.mode === 'token') {
    const token = config.auth.token!
    if (token.rootcertbundle || token.jwks) return externalAccess(config, log)
    const service = auth.tokenService!
    const accounts = service.accounts
    const pem = token.signingkey ? readFileSync(token.signingkey) : token.signingkeyb64 ? Buffer.from(token.signingkeyb64, 'base64') : undefined
    // Without a configured key the tokens die with the process; so do the sessions.
    const key = derive(pem ?? randomBytes(32))
    return {
      kind: 'accounts',
      ...(token.s3keys ? { s3Keys: true } : {}),
      sessionKey: async () => key,
      login: async (user, password, source) => (await throttledLogin(throttle, accounts, basic(user, password), source)) ?? '',
      // S3 key pairs: the secret is the credential; the session's lifetime bounds a rotated key's.
      credential: (account) => (token.s3keys ? '' : fingerprint(accounts.credentialOf(account, ''))),
      rights: async (account, name, source) => ruleRights(acl, accounts, account, name, source),
      mayList: async () => true,
      isAdmin: (account, source) => ruleAdmin(acl, accounts, account, source),
    }
  }
  // No auth: every visitor may do everything, as on the API; sessions only carry the CSRF token.
  const key = derive(randomBytes(32))
  return {
    kind: 'open',
    sessionKey: async () => key,
    rights: async () => everything(),
    mayList: async () => true,
    isAdmin: () => true,
  }
}

/**
 * An external issuer owns the accounts: the UI browses with the rights it gives anonymous clients,
 * asked of its realm as `docker pull` would (an anonymous token request), remembered for a minute.
 */
async function externalAccess(config: Config, log: Logger): Promise<UiAccess> {
  const token = config.auth.token!
  const verify = await createExternalVerifier({ issuer: token.issuer, service: token.service, rootCertBundle: token.rootcertbundle, jwks: token.jwks })
  const realm = token.realm!
  const granted = new Map<string, { access: Access[]; until: number }>()
  async function anonymous(wanted: Access): Promise<Access[]> {
    const scope = formatScope(wanted)
    const cached = granted.get(scope)
    if (cached && cached.until > Date.now()) return cached.access
    let access: Access[] = []
    try {
      const url = new URL(realm)
      url.searchParams.set('service', token.service)
      url.searchParams.set('scope', scope)
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
      if (res.ok) {
        const body = (await res.json()) as { token?: string; access_token?: string }
        const verified = await verify(body.token ?? body.access_token ?? '')
        access = verified.access
      }
    } catch (err) {
      log.warn('web UI: the external issuer gave no anonymous token', { err, scope })
    }
    if (granted.size > 10_000) granted.clear()
    granted.set(scope, { access, until: Date.now() + 60_000 })
    return access
  }
  const key = derive(randomBytes(32))
  return {
    kind: 'external',
    realm,
    sessionKey: async () => key,
    async rights(_account, name) {
      if (!isName(name)) return nothing()
      const access = await anonymous({ type: 'repository', name, actions: ['pull'] })
      const actions = access.filter((a) => a.type === 'repository' && a.name === name).flatMap((a) => a.actions)
      return new Set((actions.includes('*') ? ['pull', 'push', 'delete'] : actions) as Right[])
    },
    async mayList() {
      const access = await anonymous({ type: 'registry', name: 'catalog', actions: ['*'] })
      return access.some((a) => a.type === 'registry' && a.name === 'catalog' && a.actions.includes('*'))
    },
    isAdmin: () => false,
  }
}
