import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadConfig } from './load.js'
import { convert } from './convert.js'
import { parseAccounts } from '../auth/accounts.js'

const dir = mkdtempSync(join(tmpdir(), 'enlil-convert-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The converted config as enlil would load it from a file, with an empty environment. */
function load(config: Record<string, unknown>) {
  const file = join(dir, `enlil-${Math.random().toString(36).slice(2)}.yml`)
  writeFileSync(file, stringify(config))
  return loadConfig({}, file)
}

const HASH = '$2y$05$3Tv0aGm7Rgi6yvNOtUSp9.qXj4VVQZ2Bu3z2hTW6ccR4xZ1xa4tC6'

// A registry + docker_auth behind nginx, as in a self-hosting tutorial (filesystem store, public repos).
const REGISTRY_BEHIND_DOCKER_AUTH = `
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  host: https://registry.example.nl
  secret: a-long-random-secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  token:
    autoredirect: false
    realm: https://registry.example.nl/auth/auth
    issuer: example-docker-auth
    service: registry.example.nl
    rootcertbundle: /auth/my.pem
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`
const DOCKER_AUTH = `
server:
  addr: ":5001"
  path_prefix: "/auth"
token:
  issuer: "example-docker-auth"
  expiration: 900
  certificate: "/config/my.crt"
  key: "/config/my.key"
users:
  "admin":
    password: "${HASH}"
  "firstuser":
    password: "${HASH}"
    labels:
      group:
        - "first_user_group"
  "": {}
acl:
  - match: {account: "", name: "publicrepos/*"}
    actions: ["pull"]
    comment: "Public read-only access to publicrepos namespace"
  - match:
      name: "publicrepos/*"
      labels:
        group: "first_user_group"
    actions: ["pull", "push"]
    require_account: true
  - match: {account: "admin"}
    actions: ["*"]
    require_account: true
  - match: {name: "\${labels:group}-shared/*"}
    actions: ["push", "pull"]
    require_account: true
  - match: {account: "/.+/", name: "\${account}/*"}
    actions: ["*"]
    require_account: true
`

describe('distribution + docker_auth → enlil as its own token server', () => {
  const result = convert({ distribution: parse(REGISTRY_BEHIND_DOCKER_AUTH), dockerAuth: parse(DOCKER_AUTH), usersPath: '/etc/enlil/users.yml' })

  it('keeps the store, the public URL, the issuer, service and realm; signs with docker_auth\'s key', () => {
    const config = load(result.config)
    expect(config.storage.driver).toBe('filesystem')
    expect(config.storage.filesystem.rootdirectory).toBe('/var/lib/registry')
    expect(config.http.host).toBe('https://registry.example.nl')
    expect(config.auth.mode).toBe('token')
    expect(config.auth.token).toMatchObject({
      issuer: 'example-docker-auth', service: 'registry.example.nl', realm: 'https://registry.example.nl/auth/auth',
      path: '/auth/auth', expiration: 900_000, signingkey: '/config/my.key', certificate: '/config/my.crt', users: '/etc/enlil/users.yml',
    })
    expect(config.auth.token?.rootcertbundle).toBeUndefined()
  })

  it('carries the ACL over rule for rule', () => {
    expect(result.config.auth).toMatchObject({ acl: parse(DOCKER_AUTH).acl })
  })

  it('writes the users with their bcrypt passwords and labels, in a file enlil reads', () => {
    expect(result.files.map((f) => f.path)).toEqual(['/etc/enlil/users.yml'])
    const accounts = parseAccounts(result.files[0]!.content)
    expect([...accounts.keys()]).toEqual(['admin', 'firstuser'])
    expect(accounts.get('firstuser')!.labels).toEqual({ group: ['first_user_group'] })
    expect(accounts.get('admin')!.hash).toBe(HASH.replace('$2y$', '$2b$'))
  })

  it('notes what was dropped or changed', () => {
    const notes = result.notes.join('\n')
    expect(notes).toMatch(/^http\.secret: dropped/m)
    expect(notes).toMatch(/^http\.headers: dropped/m)
    expect(notes).toMatch(/^storage\.cache: dropped/m)
    expect(notes).toMatch(/^log\.fields: dropped/m)
    expect(notes).toMatch(/^health: dropped/m)
    expect(notes).toMatch(/^auth\.token\.autoredirect: dropped/m)
    expect(notes).toMatch(/^auth\.token\.rootcertbundle: dropped: enlil now issues the tokens itself/m)
    expect(notes).toMatch(/^auth\.token\.realm: kept .* at \/auth\/auth: route that path to enlil/m)
    expect(notes).toMatch(/^server\.addr: dropped/m)
  })
})

describe('distribution on Tigris (s3)', () => {
  const TIGRIS = `
version: 0.1
storage:
  s3:
    bucket: delicate-sea-639
    accesskey: tid_example
    secretkey: tsec_example
    region: auto
    regionendpoint: https://t3.storage.dev
    forcepathstyle: false
    encrypt: false
    secure: true
    v4auth: true
    chunksize: 5242880
    rootdirectory: /
    multipartcopythresholdsize: 33554432
  delete:
    enabled: true
  redirect:
    disable: false
  maintenance:
    uploadpurging: {enabled: true, age: 168h, interval: 24h, dryrun: false}
    readonly: {enabled: false}
http:
  addr: :5000
  tls:
    letsencrypt: {cachefile: /etc/le.cache, email: ops@example.com}
auth:
  htpasswd:
    realm: basic-realm
    path: /data/htpasswd
notifications:
  endpoints:
    - name: ci
      url: https://ci.example.com/hook
middleware:
  storage:
    - name: cloudfront
      options: {baseurl: https://d111111abcdef8.cloudfront.net/}
proxy:
  remoteurl: https://registry-1.docker.io
`
  const result = convert({ distribution: parse(TIGRIS) })

  it('points enlil at the same bucket and prefix, with htpasswd as before', () => {
    const config = load(result.config)
    expect(config.storage.driver).toBe('s3')
    expect(config.storage.s3).toMatchObject({ bucket: 'delicate-sea-639', region: 'auto', regionendpoint: 'https://t3.storage.dev', chunksize: 5 * 1024 * 1024, rootdirectory: '/', accesskey: 'tid_example' })
    expect(config.storage.maintenance.uploadpurging).toEqual({ enabled: true, age: 168 * 3_600_000, interval: 24 * 3_600_000 })
    expect(config.storage.delete.enabled).toBe(true)
    expect(config.auth).toMatchObject({ mode: 'htpasswd', htpasswd: { realm: 'basic-realm', path: '/data/htpasswd' } })
    expect(result.files).toEqual([])
  })

  it('reports what enlil does not do (notifications, cloudfront, letsencrypt, read-only) and keeps proxy mode', () => {
    const notes = result.notes.join('\n')
    expect(notes).toMatch(/^notifications: not converted/m)
    expect(notes).toMatch(/^middleware: not converted/m)
    expect(notes).toMatch(/^proxy: kept: the whole registry mirrors proxy.remoteurl/m)
    expect(load(result.config).proxy.remoteurl).toBe('https://registry-1.docker.io')
    expect(notes).toMatch(/^http\.tls\.letsencrypt: unsupported/m)
    expect(notes).toMatch(/^storage\.maintenance\.readonly: not converted/m)
    expect(notes).toMatch(/^storage\.maintenance\.uploadpurging\.dryrun: dropped/m)
    expect(notes).toMatch(/^storage\.s3\.multipartcopythresholdsize: dropped/m)
  })
})

describe('other shapes', () => {
  it('keeps trusting an external issuer when only distribution\'s config is given', () => {
    const result = convert({ distribution: parse(REGISTRY_BEHIND_DOCKER_AUTH) })
    const config = load(result.config)
    expect(config.auth.token).toMatchObject({ rootcertbundle: '/auth/my.pem', realm: 'https://registry.example.nl/auth/auth', issuer: 'example-docker-auth', service: 'registry.example.nl' })
  })

  it('converts docker_auth alone, and reports its authenticators enlil lacks', () => {
    const da = parse(DOCKER_AUTH) as Record<string, unknown>
    da.ldap_auth = { addr: 'ldap.example.com:636', base: 'o=example' }
    da.acl_mongo = { dial_info: { addrs: ['localhost'] } }
    const result = convert({ dockerAuth: da, usersPath: join(dir, 'users.yml') })
    const config = load(result.config)
    expect(config.auth.token).toMatchObject({ path: '/auth/auth', issuer: 'example-docker-auth', service: 'enlil' })
    expect(result.notes).toContain('ldap_auth: unsupported: enlil\'s accounts are the users file (or S3 key pairs); these users cannot log in')
    expect(result.notes.some((n) => n.startsWith('acl_mongo: unsupported'))).toBe(true)
    expect(result.notes.some((n) => n.startsWith('storage: no distribution config given'))).toBe(true)
  })

  it('drops an ACL rule enlil cannot read, naming it', () => {
    const result = convert({ dockerAuth: { token: { issuer: 'x', key: '/k.pem' }, users: { a: { password: HASH } }, acl: [{ match: { account: 'a' }, actions: ['pull'] }, { match: { account: 'b' }, actions: ['fly'] }] } })
    expect((result.config.auth as { acl: unknown[] }).acl).toHaveLength(1)
    expect(result.notes.some((n) => /^acl\[1\]: dropped: actions\.0:/.test(n))).toBe(true)
  })

  it("maps distribution's log levels and refuses a document that is no mapping", () => {
    const result = convert({ distribution: { log: { level: 'warning', formatter: 'text' } } })
    expect(load(result.config).log.level).toBe('warn')
    expect(result.notes).toContain('log.formatter: dropped: enlil always logs JSON lines')
    expect(() => convert({ distribution: 'storage: filesystem' })).toThrow('not a mapping')
  })
})
