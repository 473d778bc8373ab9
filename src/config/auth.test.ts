import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'

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
