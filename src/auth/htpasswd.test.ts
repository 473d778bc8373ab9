import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { RegistryError } from '../oci/errors.js'
import { createHtpasswdAuthorizer } from './htpasswd.js'
import { parseHtpasswd } from './accounts.js'

const dir = mkdtempSync(join(tmpdir(), 'enlil-htpasswd-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`

describe('parseHtpasswd', () => {
  it('reads bcrypt entries, skipping comments and blank lines', () => {
    const hash = bcrypt.hashSync('x', 4)
    const users = parseHtpasswd(`# users\n\nalice:${hash.replace('$2b$', '$2y$')}\nbob:${hash}\n`)
    expect([...users.keys()]).toEqual(['alice', 'bob'])
    expect(users.get('alice')!.startsWith('$2b$')).toBe(true)
  })
  it('names the line of an entry it cannot use', () => {
    expect(() => parseHtpasswd('carol:$apr1$abc$def', 'users.htpasswd')).toThrow('users.htpasswd:1: the hash of "carol" is not bcrypt')
    expect(() => parseHtpasswd('\nnocolon', 'f')).toThrow('f:2: expected user:hash')
  })
})

describe('htpasswd authorizer', () => {
  it('verifies, caches, and notices a changed file', async () => {
    const file = join(dir, 'htpasswd')
    writeFileSync(file, `alice:${bcrypt.hashSync('pw', 4)}\n`)
    const auth = createHtpasswdAuthorizer({ realm: 'r', path: file })
    const wanted = [{ type: 'repository' as const, name: 'a/b', actions: ['pull' as const] }]
    expect(await auth.authorize({ authorization: basic('alice', 'pw'), source: '', baseUrl: () => 'http://localhost' }, wanted)).toMatchObject({ subject: 'alice', access: wanted })
    await expect(auth.authorize({ authorization: basic('alice', 'nope'), source: '', baseUrl: () => 'http://localhost' }, wanted)).rejects.toBeInstanceOf(RegistryError)
    await expect(auth.authorize({ authorization: 'Bearer abc', source: '', baseUrl: () => 'http://localhost' }, wanted)).rejects.toMatchObject({ code: 'UNAUTHORIZED', response: { headers: { 'WWW-Authenticate': 'Basic realm="r"' } } })
    // Removing the user takes effect within a second, cached or not.
    writeFileSync(file, `bob:${bcrypt.hashSync('pw', 4)}\n# changed\n`)
    await new Promise((r) => setTimeout(r, 1100))
    await expect(auth.authorize({ authorization: basic('alice', 'pw'), source: '', baseUrl: () => 'http://localhost' }, wanted)).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
  })
})
