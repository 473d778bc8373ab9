/**
 * Tokens die with their account, and every token says when it dies: refresh tokens (docker
 * login's) after the account is removed, its password changes or it loses all access; signed
 * tokens without `exp` or with a malformed `access` claim, from enlil's own key and from an
 * external issuer's. Real HTTP against enlil processes.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'

const SERVICE = 'tokens-test'
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
/** One hash per password, so rewriting the file changes only what a test changes (a new hash is a new password). */
const hashes = new Map<string, string>()
const hashOf = (password: string) => hashes.get(password) ?? hashes.set(password, bcrypt.hashSync(password, 4)).get(password)!
const users = (entries: Record<string, { password: string; labels?: Record<string, string[]> }>) =>
  `users:\n${Object.entries(entries).map(([name, e]) => `  ${name}:\n    password: "${hashOf(e.password)}"\n${e.labels ? `    labels: ${JSON.stringify(e.labels)}\n` : ''}`).join('')}`
/** The users file reloads at most once a second. */
const reload = () => new Promise((r) => setTimeout(r, 1_200))

/** Signs claims the way a token server would, with `exp` only when asked. */
async function sign(key: KeyObject, kid: string, issuer: string, claims: Record<string, unknown>, exp = true): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).setIssuer(issuer).setAudience(SERVICE).setSubject('alice').setIssuedAt()
  if (exp) jwt = jwt.setExpirationTime('5m')
  return jwt.sign(key)
}

const MALFORMED_ACCESS = [null, [null], [{ type: 'repository', name: 'dev/app', actions: null }], [{ type: 'repository', name: 'dev/app' }], { type: 'repository' }, 'repository:dev/app:pull']

/** A GET of a repository with `token`: status, OCI code and the challenge. */
async function withToken(base: string, token: string) {
  const res = await fetch(`${base}/v2/dev/app/tags/list`, { headers: { Authorization: `Bearer ${token}` } })
  const body = (await res.json().catch(() => ({}))) as { errors?: { code: string }[] }
  return { status: res.status, code: body.errors?.[0]?.code, challenge: res.headers.get('www-authenticate') ?? '' }
}

describe('refresh tokens and token claims, enlil as the token server', () => {
  let dir: string
  let enlil: Running
  let key: KeyObject
  let kid: string
  const file = () => join(dir, 'users.yml')

  beforeAll(async () => {
    dir = tempDir('tokens')
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    key = pair.privateKey
    kid = await calculateJwkThumbprint(await exportJWK(pair.publicKey))
    writeFileSync(join(dir, 'key.pem'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    writeFileSync(file(), users({ alice: { password: 'alice pw', labels: { team: ['dev'] } }, bob: { password: 'bob pw' }, carol: { password: 'carol pw', labels: { team: ['dev'] } } }))
    writeFileSync(join(dir, 'config.yml'), JSON.stringify({
      auth: {
        token: { service: SERVICE, issuer: 'enlil-tests', users: file(), signingkey: join(dir, 'key.pem') },
        acl: [
          { match: { labels: { team: 'dev' }, name: 'dev/*' }, actions: ['*'] },
          { match: { account: 'bob' }, actions: ['*'] },
        ],
      },
    }))
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml') })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  /** `docker login`: GET with Basic and offline_token=true; the refresh token it keeps. */
  const login = async (user: string, password: string) => {
    const res = await fetch(`${enlil.url}/auth/token?service=${SERVICE}&offline_token=true&client_id=docker`, { headers: { Authorization: basic(user, password) } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { refresh_token?: string }
    expect(body.refresh_token).toBeTruthy()
    return body.refresh_token!
  }
  /** What docker does with it later: the OAuth2 POST for the scopes of a push. */
  const refresh = async (token: string) => {
    const res = await fetch(`${enlil.url}/auth/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, service: SERVICE, scope: 'repository:dev/app:pull,push', client_id: 'docker' }),
    })
    return { status: res.status, body: (await res.json()) as { error?: string; error_description?: string; access_token?: string } }
  }

  it('a refresh token works while its account is as it logged in', async () => {
    const token = await login('alice', 'alice pw')
    const ok = await refresh(token)
    expect(ok.status).toBe(200)
    expect((await withToken(enlil.url, ok.body.access_token!)).status).toBe(404) // dev/app is empty: allowed, NAME_UNKNOWN
  })

  it('is refused once the account is removed from the users file', async () => {
    const token = await login('alice', 'alice pw')
    writeFileSync(file(), users({ bob: { password: 'bob pw' }, carol: { password: 'carol pw', labels: { team: ['dev'] } } }))
    await reload()
    const refused = await refresh(token)
    expect(refused.status).toBe(401)
    expect(refused.body.error).toBe('invalid_grant')
    expect(refused.body.error_description).toMatch(/alice was removed or its password or key changed.*log in again/)
  })

  it('is refused once the password changes, and the new password\'s login works', async () => {
    const token = await login('bob', 'bob pw')
    writeFileSync(file(), users({ bob: { password: 'new bob pw' }, carol: { password: 'carol pw', labels: { team: ['dev'] } } }))
    await reload()
    expect((await refresh(token)).status).toBe(401)
    expect((await refresh(await login('bob', 'new bob pw'))).status).toBe(200)
  })

  it('is refused once the account has lost all access (no rule matches it anymore)', async () => {
    const token = await login('carol', 'carol pw')
    expect((await refresh(token)).status).toBe(200)
    writeFileSync(file(), users({ bob: { password: 'new bob pw' }, carol: { password: 'carol pw' } }))
    await reload()
    const refused = await refresh(token)
    expect(refused.status).toBe(401)
    expect(refused.body.error_description).toMatch(/carol has no access/)
  })

  it('refuses a signed token without exp: 401 invalid_token', async () => {
    const token = await sign(key, kid, 'enlil-tests', { access: [{ type: 'repository', name: 'dev/app', actions: ['pull'] }] }, false)
    const reply = await withToken(enlil.url, token)
    expect(reply.status).toBe(401)
    expect(reply.code).toBe('UNAUTHORIZED')
    expect(reply.challenge).toMatch(/error="invalid_token"/)
    // The same claims with exp are accepted: it is exp that is missing.
    expect((await withToken(enlil.url, await sign(key, kid, 'enlil-tests', { access: [{ type: 'repository', name: 'dev/app', actions: ['pull'] }] }))).status).toBe(404)
  })

  it('refuses a signed token whose access claim has the wrong shape: 401 invalid_token, never 500', async () => {
    for (const access of MALFORMED_ACCESS) {
      const reply = await withToken(enlil.url, await sign(key, kid, 'enlil-tests', { access }))
      expect([reply.status, reply.code], JSON.stringify(access)).toEqual([401, 'UNAUTHORIZED'])
      expect(reply.challenge).toMatch(/error="invalid_token"/)
    }
  })
})

describe('token claims from an external issuer (JWKS)', () => {
  let dir: string
  let enlil: Running
  let key: KeyObject
  let kid: string
  beforeAll(async () => {
    dir = tempDir('tokens-external')
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    key = pair.privateKey
    const jwk = await exportJWK(pair.publicKey)
    kid = await calculateJwkThumbprint(jwk)
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] }))
    enlil = await startEnlil(join(dir, 'data'), {
      REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com/token', REGISTRY_AUTH_TOKEN_SERVICE: SERVICE,
      REGISTRY_AUTH_TOKEN_ISSUER: 'Acme auth', ENLIL_AUTH_TOKEN_JWKS: join(dir, 'jwks.json'),
    })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('refuses its tokens without exp and with a malformed access claim (401 invalid_token), and takes a good one', async () => {
    const access = [{ type: 'repository', name: 'dev/app', actions: ['pull'] }]
    expect((await withToken(enlil.url, await sign(key, kid, 'Acme auth', { access }))).status).toBe(404)
    const noExp = await withToken(enlil.url, await sign(key, kid, 'Acme auth', { access }, false))
    expect([noExp.status, noExp.code]).toEqual([401, 'UNAUTHORIZED'])
    expect(noExp.challenge).toMatch(/error="invalid_token"/)
    for (const bad of MALFORMED_ACCESS) {
      const reply = await withToken(enlil.url, await sign(key, kid, 'Acme auth', { access: bad }))
      expect([reply.status, reply.code], JSON.stringify(bad)).toEqual([401, 'UNAUTHORIZED'])
    }
  })
})
