import { createHmac, generateKeyPairSync } from 'node:crypto'
import { exportSPKI, SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { createTokenIssuer, formatScope, loadSigningKey, parseScope } from './token.js'

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const access = [{ type: 'repository' as const, name: 'a/b', actions: ['pull' as const] }]

describe('scopes', () => {
  it('parses names with colons (a registry host:port) and formats back', () => {
    expect(parseScope('repository:localhost:5000/a/b:pull,push')).toEqual({ type: 'repository', name: 'localhost:5000/a/b', actions: ['pull', 'push'] })
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] })
    expect(parseScope('repository:a/b:pull,bogus')!.actions).toEqual(['pull'])
    expect(parseScope('nonsense')).toBeUndefined()
    expect(parseScope('plugin:x:pull')).toBeUndefined()
    expect(formatScope({ type: 'repository', name: 'a/b', actions: ['pull', 'push'] })).toBe('repository:a/b:pull,push')
  })
})

describe('tokens', () => {
  it('round-trips, with kid = JWK thumbprint, and refuses refresh tokens as access tokens', async () => {
    const key = await loadSigningKey()
    const issuer = createTokenIssuer({ key, issuer: 'enlil', service: 'reg', expiresInMs: 60_000 })
    const token = await issuer.issue('alice', access)
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { alg: string; kid: string }
    expect(header).toMatchObject({ alg: 'ES256', kid: key.kid })
    expect(await issuer.verifyAccess(token)).toMatchObject({ subject: 'alice', access })
    const refresh = await issuer.issueRefresh('alice', '$2b$10$the-stored-hash')
    await expect(issuer.verifyAccess(refresh)).rejects.toThrow()
    expect(await issuer.verifyRefresh(refresh)).toEqual({ subject: 'alice', credential: '$2b$10$the-stored-hash' })
    await expect(issuer.verifyRefresh(token)).rejects.toThrow()
    // The credential is sealed: the token's holder can't read it.
    expect(Buffer.from(refresh.split('.')[1]!, 'base64url').toString()).not.toContain('the-stored-hash')
  })

  it('refuses signed tokens without exp, and with an access claim of the wrong shape', async () => {
    const key = await loadSigningKey()
    const issuer = createTokenIssuer({ key, issuer: 'enlil', service: 'reg', expiresInMs: 60_000 })
    const signed = (claims: Record<string, unknown>, exp = true) => {
      let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuer('enlil').setAudience('reg').setSubject('alice')
      if (exp) jwt = jwt.setExpirationTime('1m')
      return jwt.sign(key.privateKey)
    }
    await expect(issuer.verifyAccess(await signed({ access }, false))).rejects.toThrow(/exp/)
    for (const bad of [null, [null], [{ type: 'repository', name: 'a/b', actions: null }], [{ type: 'repository', actions: ['pull'] }], 'repository:a/b:pull']) {
      await expect(issuer.verifyAccess(await signed({ access: bad })), JSON.stringify(bad)).rejects.toThrow(/access claim/)
    }
    expect((await issuer.verifyAccess(await signed({}))).access).toEqual([])
    expect((await issuer.verifyAccess(await signed({ access: [{ type: 'repository', name: 'a/b', actions: ['pull', 'fly'] }, { type: 'plugin', name: 'x', actions: ['pull'] }] }))).access)
      .toEqual([{ type: 'repository', name: 'a/b', actions: ['pull'] }])
  })

  it('refuses another audience or issuer, expired tokens, alg none and HMAC signed with the public key', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const key = await loadSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
    expect(key.alg).toBe('RS256')
    const issuer = createTokenIssuer({ key, issuer: 'enlil', service: 'reg', expiresInMs: 60_000 })
    const other = createTokenIssuer({ key, issuer: 'enlil', service: 'elsewhere', expiresInMs: 60_000 })
    await expect(issuer.verifyAccess(await other.issue('alice', access))).rejects.toThrow()
    const stranger = createTokenIssuer({ key, issuer: 'someone', service: 'reg', expiresInMs: 60_000 })
    await expect(issuer.verifyAccess(await stranger.issue('alice', access))).rejects.toThrow()
    const expired = createTokenIssuer({ key, issuer: 'enlil', service: 'reg', expiresInMs: -120_000 })
    await expect(issuer.verifyAccess(await expired.issue('alice', access))).rejects.toThrow()

    const now = Math.floor(Date.now() / 1000)
    const claims = b64({ iss: 'enlil', sub: 'mallory', aud: 'reg', exp: now + 60, nbf: now - 1, access })
    await expect(issuer.verifyAccess(`${b64({ alg: 'none', typ: 'JWT' })}.${claims}.`)).rejects.toThrow()
    const pem = await exportSPKI(key.publicKey as never)
    const head = b64({ alg: 'HS256', typ: 'JWT' })
    const mac = createHmac('sha256', pem).update(`${head}.${claims}`).digest('base64url')
    await expect(issuer.verifyAccess(`${head}.${claims}.${mac}`)).rejects.toThrow()
  })

  it('says which keys it cannot use', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' })
    await expect(loadSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).rejects.toThrow(/unsupported token signing key \(ec secp384r1\)/)
  })
})
