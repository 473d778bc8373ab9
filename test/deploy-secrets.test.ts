/**
 * The fly.io recipe of the README, minus fly: a signing key from `enlil keys generate` and an
 * accounts file from `enlil users add`, both passed base64-encoded in variables (JWT_KEY_B64,
 * ENLIL_AUTH_TOKEN_USERS_B64) as `fly secrets set` does; two instances with the same secrets
 * accept each other's tokens. Also `enlil healthcheck`, the image's HEALTHCHECK command.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, removeDir, ROOT, type Running, startEnlil, tempDir } from './support/processes.js'

const enlil = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
  spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), ...args], { input: options.input ?? '', env: { ...process.env, ...options.env }, encoding: 'utf8', timeout: 20_000 })

describe('secrets as base64 variables, two instances', () => {
  let dir: string
  const instances: Running[] = []
  beforeAll(async () => {
    dir = tempDir('secrets')
    const key = enlil(['keys', 'generate'])
    expect(key.status).toBe(0)
    expect(enlil(['users', 'add', 'ci', '--file', join(dir, 'users')], { input: 'ci password 123\n' }).status).toBe(0)
    const env = {
      REGISTRY_AUTH: 'token',
      JWT_KEY_B64: Buffer.from(key.stdout).toString('base64'),
      ENLIL_AUTH_TOKEN_USERS_B64: readFileSync(join(dir, 'users')).toString('base64'),
    }
    for (let i = 0; i < 2; i++) instances.push(await startEnlil(join(dir, 'data'), env))
  }, 60_000)
  afterAll(async () => {
    for (const i of instances) await i.stop()
    if (dir) removeDir(dir)
  })

  it('logs the account in on one instance; the other accepts the token', async () => {
    const [a, b] = instances as [Running, Running]
    const wrong = await fetch(`${a.url}/auth/token?service=enlil&scope=repository:ci/app:pull`, { headers: { Authorization: `Basic ${Buffer.from('ci:nope').toString('base64')}` } })
    expect(wrong.status).toBe(401)
    const res = await fetch(`${a.url}/auth/token?service=enlil&scope=repository:ci/app:pull`, { headers: { Authorization: `Basic ${Buffer.from('ci:ci password 123').toString('base64')}` } })
    expect(res.status).toBe(200)
    const { token } = (await res.json()) as { token: string }
    const tags = await fetch(`${b.url}/v2/ci/app/tags/list`, { headers: { Authorization: `Bearer ${token}` } })
    expect(tags.status).toBe(404) // authorized; the repository does not exist yet
    expect(((await tags.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('NAME_UNKNOWN')
  })

  it('masks the accounts in `enlil config check`, and refuses content that is no accounts file (as serve does)', () => {
    const users = readFileSync(join(dir, 'users')).toString('base64')
    const result = enlil(['config', 'check'], { env: { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS_B64: users } })
    expect(result.status).toBe(0)
    expect(result.stdout).toContain('"usersb64": "***"')
    expect(result.stdout).not.toContain(users)
    const junk = enlil(['config', 'check'], { env: { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS_B64: 'c2VjcmV0' } })
    expect(junk.status).toBe(1)
    expect(junk.stderr).toContain('auth.token.usersb64 (ENLIL_AUTH_TOKEN_USERS_B64): ENLIL_AUTH_TOKEN_USERS_B64:1: expected user:hash')
    expect(junk.stderr).not.toContain('c2VjcmV0')
  })
})

describe('enlil healthcheck', () => {
  it('exits 0 while enlil answers on the configured address, 1 when nothing does', async () => {
    const dir = tempDir('health')
    const running = await startEnlil(join(dir, 'data'))
    try {
      expect(enlil(['healthcheck'], { env: { REGISTRY_HTTP_ADDR: `127.0.0.1:${running.port}` } }).status).toBe(0)
      // A wildcard listen address is asked on loopback.
      expect(enlil(['healthcheck'], { env: { REGISTRY_HTTP_ADDR: `:${running.port}` } }).status).toBe(0)
    } finally {
      await running.stop()
      removeDir(dir)
    }
    const idle = await freePort()
    const down = enlil(['healthcheck'], { env: { REGISTRY_HTTP_ADDR: `127.0.0.1:${idle}` } })
    expect(down.status).toBe(1)
    expect(down.stderr).toContain(`http://127.0.0.1:${idle}/healthz did not answer 200`)
  })
})

describe('enlil config convert, as a command', () => {
  it('explains its usage, and will not overwrite a file without --force', () => {
    const dir = tempDir('convert-cli')
    try {
      expect(enlil(['config', 'convert']).status).toBe(2)
      const distribution = join(dir, 'config.yml')
      writeFileSync(distribution, 'version: 0.1\nstorage: {filesystem: {rootdirectory: /srv/registry}}\n')
      const out = join(dir, 'enlil.yml')
      expect(enlil(['config', 'convert', '--distribution', distribution, '--out', out]).status).toBe(0)
      expect(readFileSync(out, 'utf8')).toContain('rootdirectory: /srv/registry')
      const again = enlil(['config', 'convert', '--distribution', distribution, '--out', out])
      expect(again.status).toBe(1)
      expect(again.stderr).toContain('already exists')
      expect(enlil(['config', 'convert', '--distribution', distribution, '--out', out, '--force']).status).toBe(0)
    } finally {
      removeDir(dir)
    }
  })
})
