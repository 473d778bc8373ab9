import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { RegistryError } from '../oci/errors.js'
import { createHtpasswdAuthorizer } from './htpasswd.js'
import { parseHtpasswd } from './accounts.js'
import { accessFor } from './scope.js'

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
    const wanted = accessFor('GET', '/v2/a/b/manifests/latest', new URLSearchParams())
    expect(await auth.authorize({ authorization: basic('alice', 'pw'), source: '', baseUrl: () => 'http://localhost' }, wanted)).toEqual({ subject: 'alice', access: wanted })
    await expect(auth.authorize({ authorization: basic('alice', 'nope'), source: '', baseUrl: () => 'http://localhost' }, wanted)).rejects.toBeInstanceOf(RegistryError)
    await expect(auth.authorize({ authorization: 'Bearer abc', source: '', baseUrl: () => 'http://localhost' }, wanted)).rejects.toMatchObject({ code: 'UNAUTHORIZED', response: { headers: { 'WWW-Authenticate': 'Basic realm="r"' } } })
    // Removing the user takes effect within a second, cached or not.
    writeFileSync(file, `bob:${bcrypt.hashSync('pw', 4)}\n# changed\n`)
    await new Promise((r) => setTimeout(r, 1100))
    await expect(auth.authorize({ authorization: basic('alice', 'pw'), source: '', baseUrl: () => 'http://localhost' }, wanted)).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
  })
})

describe('accessFor', () => {
  const q = (s = '') => new URLSearchParams(s)
  it('maps methods to actions, as distribution does', () => {
    expect(accessFor('GET', '/v2/', q())).toEqual([])
    expect(accessFor('HEAD', '/v2/a/b/blobs/sha256:x', q())).toEqual([{ type: 'repository', name: 'a/b', actions: ['pull'] }])
    expect(accessFor('PATCH', '/v2/a/blobs/uploads/u', q())).toEqual([{ type: 'repository', name: 'a', actions: ['pull', 'push'] }])
    expect(accessFor('DELETE', '/v2/a/manifests/t', q())).toEqual([{ type: 'repository', name: 'a', actions: ['delete'] }])
    expect(accessFor('GET', '/v2/_catalog', q())).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }])
  })
  it('asks pull on the source of a mount', () => {
    expect(accessFor('POST', '/v2/dst/blobs/uploads/', q('mount=sha256:x&from=src/repo'))).toEqual([
      { type: 'repository', name: 'dst', actions: ['pull', 'push'] },
      { type: 'repository', name: 'src/repo', actions: ['pull'] },
    ])
  })
})
