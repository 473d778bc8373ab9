/** htpasswd mode, as distribution's: Basic auth against bcrypt hashes, every /v2/ route behind it. */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, ROOT, runConformance, type Running, startEnlil, tempDir } from './support/processes.js'

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('htpasswd auth', () => {
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    dir = tempDir('htpasswd')
    // `htpasswd -B` writes $2y$ hashes; both spellings are accepted.
    writeFileSync(join(dir, 'htpasswd'), [
      `alice:${bcrypt.hashSync('wonder land', 10).replace('$2b$', '$2y$')}`,
      `bob:${bcrypt.hashSync('builder', 10)}`,
      '',
    ].join('\n'))
    enlil = await startEnlil(join(dir, 'data'), {
      REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: 'my registry', REGISTRY_AUTH_HTPASSWD_PATH: join(dir, 'htpasswd'),
    })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('challenges requests without credentials, and with empty ones (Basic Og==), with 401', async () => {
    for (const headers of [{}, { Authorization: 'Basic Og==' }]) {
      const res = await fetch(`${enlil.url}/v2/`, { headers })
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="my registry"')
      expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
      const body = (await res.json()) as { errors: { code: string }[] }
      expect(body.errors[0]!.code).toBe('UNAUTHORIZED')
    }
  })

  it('refuses a wrong password or an unknown user, and lets the right ones in', async () => {
    expect((await fetch(`${enlil.url}/v2/`, { headers: { Authorization: basic('alice', 'wrong') } })).status).toBe(401)
    expect((await fetch(`${enlil.url}/v2/`, { headers: { Authorization: basic('mallory', 'builder') } })).status).toBe(401)
    expect((await fetch(`${enlil.url}/v2/`, { headers: { Authorization: basic('alice', 'wonder land') } })).status).toBe(200)
    expect((await fetch(`${enlil.url}/v2/_catalog`, { headers: { Authorization: basic('bob', 'builder') } })).status).toBe(200)
    expect((await fetch(`${enlil.url}/v2/some/repo/tags/list`)).status).toBe(401)
  })

  it('stops at startup, saying why, without the file or with a hash it cannot use', () => {
    const serve = (env: Record<string, string>) => spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'serve'], {
      env: { ...process.env, REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'x'), ...env }, encoding: 'utf8', timeout: 10_000,
    })
    const noPath = serve({ REGISTRY_AUTH: 'htpasswd' })
    expect(noPath.status).toBe(1)
    expect(noPath.stderr).toMatch(/auth\.htpasswd\.path: required with htpasswd auth/)
    writeFileSync(join(dir, 'md5'), 'carol:$apr1$xyz$abcdefghijklmnopqrstuv\n')
    const md5 = serve({ REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: join(dir, 'md5') })
    expect(md5.status).toBe(1)
    expect(md5.stderr).toContain('the hash of "carol" is not bcrypt')
  })

  it('passes the conformance suite with credentials', async () => {
    const run = await runConformance(enlil.url, ['--user', 'alice', '--password', 'wonder land'], join(dir, 'junit.xml'))
    expect(run.lastLine, run.output.slice(-3000)).toMatch(/^\d+ passed, 0 failed, 0 skipped$/)
    expect(run.code).toBe(0)
  }, 120_000)

  describe('with ACL rules in the config file', () => {
    let guarded: Running
    beforeAll(async () => {
      writeFileSync(join(dir, 'config.yml'), [
        'auth:',
        '  htpasswd:',
        `    path: ${join(dir, 'htpasswd')}`,
        '  acl:',
        '    - match: {account: "", name: "public/*"}',
        '      actions: ["pull"]',
        '    - match: {account: "/.+/", name: "${account}/*"}',
        '      actions: ["*"]',
        '    - match: {account: "/.+/", name: "public/*"}',
        '      actions: ["pull"]',
        '',
      ].join('\n'))
      guarded = await startEnlil(join(dir, 'data2'), { REGISTRY_CONFIG: join(dir, 'config.yml') })
    })
    afterAll(() => guarded?.stop())

    it('anonymous pulls of public/*, own namespaces, 401 for anonymous writes, 403 DENIED for others', async () => {
      const blob = Buffer.from('public bytes')
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
      const push = (repo: string, auth?: string) => fetch(`${guarded.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
        method: 'POST', body: blob, headers: auth ? { Authorization: auth } : {},
      })
      expect((await push('alice/app', basic('alice', 'wonder land'))).status).toBe(201)
      const anonymousPush = await push('public/app')
      expect(anonymousPush.status).toBe(401)
      expect(anonymousPush.headers.get('www-authenticate')).toContain('Basic realm=')
      const denied = await push('bob/app', basic('alice', 'wonder land'))
      expect(denied.status).toBe(403)
      const body = (await denied.json()) as { errors: { code: string; message: string }[] }
      expect(body.errors[0]).toMatchObject({ code: 'DENIED', message: 'account alice may not pull,push on repository bob/app' })
      // Anonymous reads of public/* work; of anything else, they are challenged.
      expect((await fetch(`${guarded.url}/v2/public/app/tags/list`)).status).toBe(404)
      expect((await fetch(`${guarded.url}/v2/alice/app/blobs/${digest}`)).status).toBe(401)
      expect((await fetch(`${guarded.url}/v2/`)).status).toBe(401)
    })
  })
})
