/** `enlil users add` and `enlil keys generate`, run as a user runs them. */
import { spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { parseAccounts } from '../src/auth/accounts.js'
import { loadSigningKey } from '../src/auth/token.js'
import { removeDir, ROOT, tempDir } from './support/processes.js'

const dir = tempDir('cli')
afterAll(() => removeDir(dir))
const enlil = (args: string[], input = '') => spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), ...args], { input, encoding: 'utf8', timeout: 20_000 })

describe('enlil users add', () => {
  it('creates an htpasswd file only its owner reads, adds users, replaces a user\'s password', () => {
    const file = join(dir, 'htpasswd')
    expect(enlil(['users', 'add', 'alice', '--file', file], 'first password\n').stderr).toContain(`created ${file}: alice`)
    expect(enlil(['users', 'add', 'bob', '--file', file], 'bob password\n').status).toBe(0)
    expect(enlil(['users', 'add', 'alice', '--file', file], 'second password\n').stderr).toContain('updated')
    const accounts = parseAccounts(readFileSync(file, 'utf8'), file)
    expect([...accounts.keys()].sort()).toEqual(['alice', 'bob'])
    expect(bcrypt.compareSync('second password', accounts.get('alice')!.hash)).toBe(true)
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it('refuses short passwords and bad usage', () => {
    expect(enlil(['users', 'add', 'carol', '--file', join(dir, 'x')], 'short\n').status).toBe(1)
    expect(enlil(['users', 'add', '--file', join(dir, 'x')], 'long enough pw\n').status).toBe(2)
  })
})

describe('enlil keys generate', () => {
  it.each([['ec', 'ES256'], ['rsa', 'RS256'], ['ed25519', 'EdDSA']])('%s → a PEM key enlil signs tokens with (%s)', async (type, alg) => {
    const result = enlil(['keys', 'generate', '--type', type])
    expect(result.status).toBe(0)
    const key = await loadSigningKey(result.stdout)
    expect(key.alg).toBe(alg)
    expect(result.stderr).toContain(key.kid)
  })
})

describe('enlil config check', () => {
  it('prints the effective settings with secrets masked', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'config', 'check'], {
      env: { ...process.env, REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_ACCESSKEY: 'AKIDEXAMPLE', REGISTRY_STORAGE_S3_SECRETKEY: 'very-secret' },
      encoding: 'utf8', timeout: 20_000,
    })
    expect(result.status).toBe(0)
    const config = JSON.parse(result.stdout) as { storage: { driver: string; s3: Record<string, unknown> }; http: { addr: string } }
    expect(config.storage.driver).toBe('s3')
    expect(config.storage.s3).toMatchObject({ bucket: 'b', accesskey: '***', secretkey: '***' })
    expect(config.http.addr).toBe(':5000')
    expect(result.stdout).not.toContain('very-secret')
  })

  it('exits 1 with one line per problem', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'config', 'check'], {
      env: { ...process.env, REGISTRY_STORAGE: 's3', REGISTRY_HTTP_ADDR: 'x' }, encoding: 'utf8', timeout: 20_000,
    })
    expect(result.status).toBe(1)
    expect(result.stderr.trim().split('\n')).toHaveLength(2)
  })
})
