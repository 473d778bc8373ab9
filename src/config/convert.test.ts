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
    expect(notes).not.toMatch(/^http\.headers/m)
    expect(load(result.config).http.headers).toEqual({ 'X-Content-Type-Options': ['nosniff'] })
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

  it('converts notifications and the read-only switch, which enlil has', () => {
    const config = load(result.config)
    expect(config.notifications.endpoints).toMatchObject([{ name: 'ci', url: 'https://ci.example.com/hook' }])
    expect(config.storage.maintenance.readonly.enabled).toBe(false)
    expect(result.notes.join('\n')).not.toMatch(/^(notifications|storage\.maintenance\.readonly)/m)
  })

  it('reports what enlil does not do (cloudfront, letsencrypt) and keeps proxy mode', () => {
    const notes = result.notes.join('\n')
    expect(notes).toMatch(/^middleware: not converted/m)
    expect(notes).toMatch(/^proxy: kept: the whole registry mirrors proxy.remoteurl/m)
    expect(load(result.config).proxy.remoteurl).toBe('https://registry-1.docker.io')
    expect(notes).toMatch(/^http\.tls\.letsencrypt: unsupported/m)
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

describe('what distribution does by default, and what enlil has under its names', () => {
  it('keeps deletes off when storage.delete is absent, as distribution does (405)', () => {
    const result = convert({ distribution: { storage: { filesystem: { rootdirectory: '/srv/registry' } } } })
    expect(load(result.config).storage.delete.enabled).toBe(false)
    expect(result.notes.some((n) => n.startsWith('storage.delete: absent, so deletes stay off'))).toBe(true)
  })

  it('converts http.debug with prometheus, and points storage.s3.endpoint at regionendpoint', () => {
    const result = convert({ distribution: {
      http: { addr: ':5000', debug: { addr: '127.0.0.1:5001', prometheus: { enabled: true, path: '/metrics' } } },
      storage: { s3: { bucket: 'b', region: 'us-east-1', endpoint: 'http://minio.example.com' } },
    } })
    const config = load(result.config)
    expect(config.http.debug).toEqual({ addr: '127.0.0.1:5001', prometheus: { enabled: true, path: '/metrics' } })
    expect(result.notes).toContain('storage.s3.endpoint: dropped: distribution\'s s3 driver has no "endpoint" (it went to AWS); for MinIO, Tigris or Ceph set storage.s3.regionendpoint (e.g. regionendpoint: http://minio.example.com)')
  })

  it('keeps docker_auth\'s server.addr when it is converted alone (the token server of a split layout)', () => {
    const result = convert({ dockerAuth: { server: { addr: ':5001' }, token: { issuer: 'x', key: '/k.pem' }, users: { a: { password: HASH } } }, usersPath: join(dir, 'users-split.yml') })
    expect(load(result.config).http.addr).toBe(':5001')
  })
})

describe("open-balena's .env (convert --env)", () => {
  const CERT = 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqVENDQVRPZ0F3SUJBZ0lVVjVRZ2xNSDRuK2wrZGF6eE1PZG1vQldqTFhJd0NnWUlLb1pJemowRUF3SXcKSERFYU1CZ0dBMVVFQXd3UllYQnBMbXg1TG1acGMyZ3ViRzlqWVd3d0hoY05NakF4TVRJMk1UY3pNalEwV2hjTgpNakl4TVRJMk1UY3pNalEwV2pBY01Sb3dHQVlEVlFRRERCRmhjR2t1YkhrdVptbHphQzVzYjJOaGJEQlpNQk1HCkJ5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEEwSUFCRE5IUkNWYmthZlpZaWxGY3dXd2F0bkN6bEt1VHlEZmdLTVoKZ3BhbUJVR08vRlNIMGhjTU9CYTE5V3p2eFJXN05GOWNwRmVIZSszQndWdnB4OGIxOTZTalV6QlJNQjBHQTFVZApEZ1FXQkJRelc5SDJab3VDa2NsaVJrRHYwRnJUQSthbmtUQWZCZ05WSFNNRUdEQVdnQlF6VzlIMlpvdUNrY2xpClJrRHYwRnJUQSthbmtUQVBCZ05WSFJNQkFmOEVCVEFEQVFIL01Bb0dDQ3FHU000OUJBTUNBMGdBTUVVQ0lHRWQKTXF1UGJtcTNoV1hRbkowTUpieHc1RWJLMEFWQndhem9GR2F6RFVxTkFpRUF4MzFqdEpPUUEveWNPQlIyZDEyTgpQZ3dacjdZWTN3TUJ4RWtaS2VXR3FuQT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo='
  const KID = 'UEYzSDoyNkZSOkxZUzM6VElZVToySlVJOkEySEU6N1pYVDpHM0I1OkhYNzQ6NVVFQjpTTlUyOkI1Skw='
  const result = convert({ environment: {
    REGISTRY_HOST: 'registry.ly.fish.local', REGISTRY_SECRETKEY: 'foobar', REGISTRY_TOKEN_AUTH_CERT_ISSUER: 'api.ly.fish.local',
    REGISTRY_TOKEN_AUTH_JWT_ALGO: 'ES256', REGISTRY_TOKEN_AUTH_REALM: 'http://api.ly.fish.local/v1/registry',
    REGISTRY_TOKEN_AUTH_CERT: CERT, REGISTRY_TOKEN_AUTH_CERT_KID: KID, REGISTRY2_CACHE_ENABLED: 'false',
  } })

  it('trusts the issuer with the base64 certificate, the host as service', () => {
    expect(load(result.config).auth).toMatchObject({ mode: 'token', token: { issuer: 'api.ly.fish.local', realm: 'http://api.ly.fish.local/v1/registry', service: 'registry.ly.fish.local', rootcertbundle: CERT } })
  })

  it('finds the key id the signer uses in the certificate, and says what it dropped', () => {
    const notes = result.notes.join('\n')
    expect(notes).not.toMatch(/is not the key id/)
    expect(notes).toMatch(/^REGISTRY_TOKEN_AUTH_CERT_KID: dropped: enlil derives the same key id/m)
    expect(notes).toMatch(/^REGISTRY2_CACHE_ENABLED: dropped: not read by enlil/m)
    expect(notes).toMatch(/^REGISTRY_TOKEN_AUTH_CERT: the certificate expired/m)
  })
})
