/**
 * `enlil config convert` end to end: a registry + docker_auth setup (distribution's config.yml and
 * docker_auth's auth_config.yml, RSA key and certificate made with openssl as such setups do) is
 * converted by the CLI, enlil starts with the result, and behaves as docker_auth did: users log in
 * with their passwords, the ACL (labels, ${account}, anonymous public pulls) decides, and tokens
 * carry the old issuer, service and key.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { decodeJwt, decodeProtectedHeader, importX509, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBlob } from './support/oci-client.js'
import { removeDir, requirePart, ROOT, type Running, startEnlil, tempDir } from './support/processes.js'

const haveOpenssl = requirePart(existsSync('/usr/bin/openssl'), 'openssl (to make the token key and certificate)', 'apt-get install openssl')

describe.skipIf(!haveOpenssl)('a converted distribution + docker_auth setup', () => {
  let dir: string
  let enlil: Running
  let stderr: string
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

  beforeAll(async () => {
    dir = tempDir('convert')
    execFileSync('openssl', ['req', '-x509', '-nodes', '-new', '-sha256', '-days', '2', '-newkey', 'rsa:2048', '-keyout', 'my.key', '-out', 'my.crt', '-subj', '/CN=Registry Auth CA'], { cwd: dir, stdio: 'ignore' })
    writeFileSync(join(dir, 'config.yml'), [
      'version: 0.1',
      'log: {fields: {service: registry}}',
      'storage:',
      '  cache: {blobdescriptor: inmemory}',
      `  filesystem: {rootdirectory: ${join(dir, 'data')}}`,
      '  delete: {enabled: true}',
      'http:',
      '  addr: :5000',
      '  secret: a-long-random-secret',
      'auth:',
      '  token:',
      '    realm: https://registry.example.nl/auth/auth',
      '    service: registry.example.nl',
      '    issuer: example-docker-auth',
      `    rootcertbundle: ${join(dir, 'my.crt')}`,
      '',
    ].join('\n'))
    const hash = (pw: string) => bcrypt.hashSync(pw, 4).replace('$2b$', '$2y$')
    writeFileSync(join(dir, 'auth_config.yml'), [
      'server: {addr: ":5001", path_prefix: "/auth"}',
      'token:',
      '  issuer: example-docker-auth',
      '  expiration: 900',
      `  certificate: ${join(dir, 'my.crt')}`,
      `  key: ${join(dir, 'my.key')}`,
      'users:',
      `  admin: {password: "${hash('admin pw')}"}`,
      `  firstuser: {password: "${hash('first pw')}", labels: {group: [first_user_group]}}`,
      '  "": {}',
      'acl:',
      '  - match: {account: "", name: "publicrepos/*"}',
      '    actions: ["pull"]',
      '  - match: {name: "publicrepos/*", labels: {group: "first_user_group"}}',
      '    actions: ["pull", "push"]',
      '    require_account: true',
      '  - match: {account: "admin"}',
      '    actions: ["*"]',
      '  - match: {name: "${labels:group}-shared/*"}',
      '    actions: ["push", "pull"]',
      '    require_account: true',
      '  - match: {account: "/.+/", name: "${account}/*"}',
      '    actions: ["*"]',
      '',
    ].join('\n'))
    const converted = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'config', 'convert', '--distribution', join(dir, 'config.yml'), '--auth', join(dir, 'auth_config.yml'), '--out', join(dir, 'enlil.yml')], { encoding: 'utf8' })
    stderr = converted.stderr
    if (converted.status !== 0) throw new Error(`convert failed (${converted.status}):\n${converted.stderr}`)
    enlil = await startEnlil(join(dir, 'unused'), { REGISTRY_CONFIG: join(dir, 'enlil.yml') })
  }, 60_000)

  afterAll(async () => {
    await enlil?.stop()
    if (dir) removeDir(dir)
  })

  async function token(scope: string, auth?: string): Promise<string> {
    const res = await fetch(`${enlil.url}/auth/auth?service=registry.example.nl&scope=${encodeURIComponent(scope)}`, { headers: auth ? { Authorization: auth } : {} })
    expect(res.status, `token for ${scope}`).toBe(200)
    return ((await res.json()) as { token: string }).token
  }

  /** A monolithic blob push with a token, as far as the registry lets it go. */
  let lastBlob = randomBlob(1)
  async function pushBlob(repo: string, bearer: string): Promise<number> {
    const blob = (lastBlob = randomBlob(1000))
    const res = await fetch(`${enlil.url}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
      method: 'POST', body: blob.bytes, headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/octet-stream' },
    })
    await res.arrayBuffer()
    return res.status
  }

  it('writes the config and the users file, and notes what changed', () => {
    expect(readFileSync(join(dir, 'enlil.yml'), 'utf8')).toContain('mode: token')
    expect(readFileSync(join(dir, 'users.yml'), 'utf8')).toContain('first_user_group')
    expect(stderr).toContain('note: http.secret: dropped')
    expect(stderr).toContain('note: storage.cache: dropped')
  })

  it('challenges clients with the realm and service they knew', async () => {
    const res = await fetch(`${enlil.url}/v2/`)
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="https://registry.example.nl/auth/auth",service="registry.example.nl"')
  })

  it("logs docker_auth's users in with their passwords, and refuses a wrong one", async () => {
    const res = await fetch(`${enlil.url}/auth/auth?service=registry.example.nl&scope=repository:admin/x:pull`, { headers: { Authorization: basic('admin', 'wrong') } })
    expect(res.status).toBe(401)
    expect(await token('repository:admin/x:pull', basic('admin', 'admin pw'))).toBeTruthy()
  })

  it('issues tokens a registry trusting the docker_auth certificate accepts', async () => {
    const jwt = await token('repository:firstuser/app:pull,push', basic('firstuser', 'first pw'))
    const key = await importX509(readFileSync(join(dir, 'my.crt'), 'utf8'), 'RS256')
    const { payload } = await jwtVerify(jwt, key, { issuer: 'example-docker-auth', audience: 'registry.example.nl' })
    expect(payload.sub).toBe('firstuser')
    expect(decodeProtectedHeader(jwt).x5c).toHaveLength(1)
  })

  it('lets the ACL decide as docker_auth did: labels, ${account}, anonymous public pulls', async () => {
    const first = basic('firstuser', 'first pw')
    expect(await pushBlob('firstuser/app', await token('repository:firstuser/app:pull,push', first))).toBe(201)
    expect(await pushBlob('publicrepos/tool', await token('repository:publicrepos/tool:pull,push', first))).toBe(201)
    const published = lastBlob
    expect(await pushBlob('first_user_group-shared/lib', await token('repository:first_user_group-shared/lib:pull,push', first))).toBe(201)
    // Not hers: the token carries no access, and the registry refuses the push.
    const denied = await token('repository:admin/secret:pull,push', first)
    expect(decodeJwt(denied).access).toEqual([])
    expect(await pushBlob('admin/secret', denied)).toBe(401)

    const anonymous = await token('repository:publicrepos/tool:pull,push')
    expect(decodeJwt(anonymous).access).toEqual([{ type: 'repository', name: 'publicrepos/tool', actions: ['pull'] }])
    expect(await pushBlob('publicrepos/tool', anonymous)).toBe(401)
    const pulled = await fetch(`${enlil.url}/v2/publicrepos/tool/blobs/${published.digest}`, { headers: { Authorization: `Bearer ${anonymous}` } })
    expect(pulled.status).toBe(200)
    expect(Buffer.from(await pulled.arrayBuffer()).equals(published.bytes)).toBe(true)

    expect(await pushBlob('admin/secret', await token('repository:admin/secret:pull,push,delete', basic('admin', 'admin pw')))).toBe(201)
  })
})
