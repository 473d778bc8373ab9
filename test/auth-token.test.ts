/**
 * Token mode: enlil is its own Docker token server. Clients follow the Bearer challenge to
 * /auth/token with Basic credentials, get a JWT for the scopes the ACL allows, and retry.
 */
import { createHash, generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, runConformance, type Running, startEnlil, tempDir } from './support/processes.js'

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('token auth', () => {
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    dir = tempDir('token')
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('alice pw', 10)}\nadmin:${bcrypt.hashSync('admin pw', 10)}\n`)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
    writeFileSync(join(dir, 'config.yml'), [
      'auth:',
      '  token:',
      '    service: test-registry',
      `    users: ${join(dir, 'users')}`,
      `    signingkey: ${join(dir, 'key.pem')}`,
      '  acl:',
      '    - match: {account: "admin"}',
      '      actions: ["*"]',
      '    - match: {account: "", name: "public/*"}',
      '      actions: ["pull"]',
      '    - match: {account: "/.+/", name: "${account}/*"}',
      '      actions: ["*"]',
      '    - match: {account: "/.+/", name: "public/*"}',
      '      actions: ["pull"]',
      '',
    ].join('\n'))
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml') })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  const token = async (query: string, auth?: string) => {
    const res = await fetch(`${enlil.url}/auth/token?service=test-registry&${query}`, { headers: auth ? { Authorization: auth } : {} })
    return { status: res.status, body: (await res.json()) as { token: string; access_token: string; expires_in: number; refresh_token?: string } }
  }

  it('challenges with realm, service and the scope the request needs', async () => {
    const res = await fetch(`${enlil.url}/v2/alice/app/tags/list`)
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${enlil.url}/auth/token",service="test-registry",scope="repository:alice/app:pull"`)
    expect((await fetch(`${enlil.url}/v2/`)).status).toBe(401)
  })

  it('issues tokens for what the ACL allows, and the registry honours exactly those', async () => {
    const { status, body } = await token('scope=repository:alice/app:pull,push&scope=repository:bob/app:pull,push', basic('alice', 'alice pw'))
    expect(status).toBe(200)
    expect(body.access_token).toBe(body.token)
    expect(body.expires_in).toBe(300)
    const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string; access: unknown }
    expect(claims).toMatchObject({ sub: 'alice', aud: 'test-registry', access: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }] })
    const bearer = { Authorization: `Bearer ${body.token}` }
    const blob = Buffer.from('token bytes')
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
    expect((await fetch(`${enlil.url}/v2/alice/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, headers: bearer })).status).toBe(201)
    const other = await fetch(`${enlil.url}/v2/bob/app/blobs/uploads/`, { method: 'POST', headers: bearer })
    expect(other.status).toBe(401)
    expect(other.headers.get('www-authenticate')).toContain('error="insufficient_scope"')
    expect(other.headers.get('www-authenticate')).toContain('scope="repository:bob/app:pull,push"')
  })

  it('gives anonymous clients what the ACL allows anonymous, and refuses wrong passwords', async () => {
    const anonymous = await token('scope=repository:public/app:pull,push')
    expect(anonymous.status).toBe(200)
    const claims = JSON.parse(Buffer.from(anonymous.body.token.split('.')[1]!, 'base64url').toString()) as { access: unknown }
    expect(claims.access).toEqual([{ type: 'repository', name: 'public/app', actions: ['pull'] }])
    expect((await token('scope=repository:alice/app:pull', basic('alice', 'wrong'))).status).toBe(401)
    const forged = await fetch(`${enlil.url}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${anonymous.body.token.slice(0, -4)}AAAA` } })
    expect(forged.status).toBe(401)
    expect(forged.headers.get('www-authenticate')).toContain('error="invalid_token"')
  })

  it('refresh tokens (docker login): offline_token, then the OAuth2 POST with grant_type=refresh_token', async () => {
    const first = await token('scope=repository:alice/app:pull&offline_token=true&client_id=docker', basic('alice', 'alice pw'))
    expect(first.body.refresh_token).toBeTruthy()
    const res = await fetch(`${enlil.url}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token!, service: 'test-registry', client_id: 'docker', scope: 'repository:alice/app:pull repository:alice/app:push' }),
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { access_token: string }
    const claims = JSON.parse(Buffer.from(body.access_token.split('.')[1]!, 'base64url').toString()) as { sub: string; access: unknown }
    expect(claims.sub).toBe('alice')
    expect(claims.access).toEqual([{ type: 'repository', name: 'alice/app', actions: ['pull'] }, { type: 'repository', name: 'alice/app', actions: ['push'] }])
    const password = await fetch(`${enlil.url}/auth/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'nope', service: 'test-registry' }),
    })
    expect(password.status).toBe(401)
    expect(((await password.json()) as { error: string }).error).toBe('invalid_grant')
  })

  it('passes the conformance suite, which follows the Bearer challenge to enlil\'s realm', async () => {
    const run = await runConformance(enlil.url, ['--user', 'admin', '--password', 'admin pw'], join(dir, 'junit.xml'))
    expect(run.lastLine, run.output.slice(-3000)).toMatch(/^\d+ passed, 0 failed, 0 skipped$/)
    expect(run.code).toBe(0)
  }, 120_000)

  it('serves the token endpoint at a configured path and sends clients there', async () => {
    const moved = await startEnlil(join(dir, 'data-moved'), { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users'), ENLIL_AUTH_TOKEN_PATH: '/v1/token' })
    try {
      const res = await fetch(`${moved.url}/v2/`)
      expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${moved.url}/v1/token",service="enlil"`)
      expect((await fetch(`${moved.url}/v1/token?service=enlil`, { headers: { Authorization: basic('alice', 'alice pw') } })).status).toBe(200)
      expect((await fetch(`${moved.url}/auth/token?service=enlil`)).status).toBe(404)
    } finally {
      await moved.stop()
    }
  })
})
