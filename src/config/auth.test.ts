import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'
import { unknownVariables } from './environment.js'

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env)
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

describe('auth configuration', () => {
  it('takes distribution\'s htpasswd names and enlil\'s token ones', () => {
    expect(loadConfig({ REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: '/p', REGISTRY_AUTH_HTPASSWD_REALM: 'R' }).auth)
      .toMatchObject({ mode: 'htpasswd', htpasswd: { path: '/p', realm: 'R' } })
    const token = loadConfig({ REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: '/u', REGISTRY_AUTH_TOKEN_SERVICE: 'svc', JWT_KEY_B64: 'LS0t', ENLIL_AUTH_TOKEN_EXPIRATION: '10m' }).auth
    expect(token).toMatchObject({ mode: 'token', token: { users: '/u', service: 'svc', issuer: 'enlil', signingkeyb64: 'LS0t', expiration: 600_000 } })
  })

  it('says what a mode is missing or what does not go together', () => {
    expect(problems({ REGISTRY_AUTH: 'token' })).toEqual([expect.stringMatching(/^auth\.token\.users: required with token auth/)])
    expect(problems({ REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: '/c.pem' })[0]).toMatch(/^auth\.token\.realm: required when trusting an external issuer/)
    expect(problems({ REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: '/u', REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com/token', REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: '/c.pem' })[0]).toMatch(/leave users out/)
    expect(problems({ REGISTRY_AUTH: 'silly' })[0]).toMatch(/^auth\.mode \(from REGISTRY_AUTH\)/)
    expect(problems({ REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: '/u', ENLIL_AUTH_TOKEN_PATH: '/v2/token' })[0]).toMatch(/must not be under \/v2/)
    expect(loadConfig({ REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: '/u', ENLIL_AUTH_TOKEN_PATH: '/token' }).auth.token?.path).toBe('/token')
  })
})

describe('auth variables enlil does not know, or that contradict each other', () => {
  it('selects the mode its variables name, as distribution does, instead of serving with auth off', () => {
    expect(problems({ REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com' })[0]).toMatch(/^auth\.token\.users: required with token auth .*ENLIL_AUTH_TOKEN_S3KEYS=true/)
    expect(problems({ REGISTRY_AUTH_HTPASSWD_REALM: 'basic-realm' })[0]).toMatch(/^auth\.htpasswd\.path: required with htpasswd auth/)
  })

  it('refuses to start with auth off when the only auth variables are unknown ones; REGISTRY_AUTH=none says it is meant', () => {
    const env = { REGISTRY_TOKEN_AUTH_REALM: 'http://api/v1/registry', REGISTRY_TOKEN_AUTH_CERT: 'LS0t' }
    expect(problems(env)).toEqual(['REGISTRY_TOKEN_AUTH_CERT, REGISTRY_TOKEN_AUTH_REALM look like auth settings but are not enlil\'s, so auth would be off: convert them (`enlil config convert --env .env`), use enlil\'s names (README, "Running it"), or set REGISTRY_AUTH=none to serve without auth'])
    expect(loadConfig({ ...env, REGISTRY_AUTH: 'none' }).auth.mode).toBe('none')
    expect(unknownVariables({ ...env, REGISTRY_HTTP_SECRET: 'x', REGISTRY_SERVICE_HOST: '10.0.0.1', REGISTRY_PORT_5000_TCP: 'tcp://10.0.0.1:5000', ENLIL_WORKRES: '2', PATH: '/bin' }))
      .toEqual(['ENLIL_WORKRES', 'REGISTRY_TOKEN_AUTH_CERT', 'REGISTRY_TOKEN_AUTH_REALM'])
  })

  it('refuses an external issuer\'s bundle beside enlil\'s own token service, naming both', () => {
    const found = problems({ REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: '/c.pem', REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com', ENLIL_AUTH_TOKEN_S3KEYS: 'true', JWT_KEY_B64: 'LS0t', REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b' })
    expect(found).toEqual([
      expect.stringContaining('auth.token.rootcertbundle (REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE) trusts an external token server, but auth.token.s3keys (ENLIL_AUTH_TOKEN_S3KEYS) belongs to enlil\'s own token service'),
      expect.stringContaining('but auth.token.signingkeyb64 (JWT_KEY_B64) belongs to enlil\'s own token service'),
    ])
  })
})
