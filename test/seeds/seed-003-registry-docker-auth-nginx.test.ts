/**
 * Seed 003, a Dutch self-hosting tutorial: distribution + cesanta/docker_auth behind nginx (`/auth/`
 * to docker_auth on :5001, `/` to the registry on :5000), a filesystem store, public read-only
 * `publicrepos/*`, groups, `${account}/*` namespaces, and a self-signed key made with openssl.
 *
 * The tutorial's files below are verbatim; the test fills in its `$variables` as its reader does
 * (the domain is nginx's loopback address over plain HTTP, so `https://` becomes `http://`) and,
 * where the tutorial mounts docker volumes (/var/lib/registry, /auth, /config), points the same
 * options at a temporary folder through the environment. Shown: `enlil serve` on the registry's
 * config says to convert it; `enlil config convert` on each config alone gives the same split
 * layout (a token server where docker_auth listened, a registry), nginx config unchanged, and
 * skopeo, anonymous pulls and the tutorial's curl behave as they did, deletes still refused.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeOciLayout } from '../support/oci-layout.js'
import { freePort, removeDir, requirePart, type Running, startEnlil, tempDir } from '../support/processes.js'
import { enlilCli, NGINX, startNginx, stopNginx } from '../support/seeds.js'

const run = promisify(execFile)
const available = requirePart(existsSync(NGINX), 'nginx (Debian nginx-light)', 'apt-get install nginx-light')
  && requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')
  && requirePart(existsSync('/usr/bin/openssl'), 'openssl', 'apt-get install openssl')

// ── The tutorial's files, verbatim ──
const REGISTRY_CONFIG = `version: 0.1
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
  host: https://$registrydomain
  secret: $somesecret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  token:
    autoredirect: false
    realm: https://$registrydomain/auth/auth
    issuer: $my-docker-auth
    service: $registrydomain
    # if you are going to use self-signed certs for comms between the auth server
    # and the registry, you can point to a specific pem file. This does root 
    # bundle is not used for outbound/client services.
    rootcertbundle: /auth/my.pem
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

const AUTH_CONFIG = `server:
  addr: ":5001"
  path_prefix: "/auth"

token:
  issuer: "$my-docker-auth"
  expiration: 900
  # sign the auth tokens with the following keys, these can be self signed, see 
  # rootcertbundle in the registry config.
  certificate: "/config/my.crt"
  key: "/config/my.key"

users:
  # admin user
  "admin":
    password: "$somepass"
  # other users
  "firstuser":
    password: "$somepass"
    labels:
      group:
        - "first_user_group"
  # allow anonymous users
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
    comment: "firstgroup group members can push to publicrepos namespace"
    require_account: true
  - match: {account: "admin"}
    actions: ["*"]
    comment: "Admin has full access to everything."
    require_account: true
  - match: {name: "\${labels:group}-shared/*"}
    actions: ["push", "pull"]
    comment: "Users can push to the shared namespace of any group they are in"
    require_account: true
  - match: {account: "/.+/", name: "\${account}/*"}
    actions: ["*"]
    comment: "Logged in users have full access to images that are in their 'namespace'"
    require_account: true
`

const NGINX_SERVER = `server {
    listen 0.0.0.0:80;

    server_name $registrydomain;

    location ~ /\\.ht {
        deny all;
    }

    access_log  /var/log/nginx/$registrydomain.access.log;
    error_log   /var/log/nginx/$registrydomain.error.log;

    # Per site configuration
    location /auth/ {
      proxy_pass http://localhost:5001/auth/;
    }

    location / {
      client_max_body_size 0;
      proxy_pass http://localhost:5000/;
    }
}`
// ── end of the tutorial's files ──

describe.skipIf(!available)('seed 003: distribution + docker_auth behind nginx, converted', () => {
  const dir = tempDir('seed-003')
  const password = 'een geheim wachtwoord'
  let domain: string
  let tokenServer: Running
  let registry: Running
  let nginx: ChildProcess | undefined
  const skopeoEnv = () => ({ ...process.env, HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'none.json') })

  beforeAll(async () => {
    const nginxPort = await freePort()
    domain = `127.0.0.1:${nginxPort}`
    // What the reader fills in.
    const fill = (text: string) => text.replaceAll('https://$registrydomain', `http://${domain}`).replaceAll('$registrydomain', domain)
      .replaceAll('$my-docker-auth', 'my-docker-auth').replaceAll('$somesecret', 'een-geheim').replaceAll('$somepass', bcrypt.hashSync(password, 5))
    mkdirSync(join(dir, 'registry'), { recursive: true })
    mkdirSync(join(dir, 'auth'), { recursive: true })
    writeFileSync(join(dir, 'registry/config.yml'), fill(REGISTRY_CONFIG))
    writeFileSync(join(dir, 'auth/config.yml'), fill(AUTH_CONFIG))
    // The tutorial's openssl line, and `cat my.* | tee my.pem` (certificate and key in one file).
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:4096', '-keyout', 'my.key', '-out', 'my.crt', '-days', '365', '-subj', `/CN=${domain}`, '-nodes'], { cwd: join(dir, 'auth') })
    writeFileSync(join(dir, 'auth/my.pem'), readFileSync(join(dir, 'auth/my.crt'), 'utf8') + readFileSync(join(dir, 'auth/my.key'), 'utf8'))
  })
  afterAll(async () => {
    await stopNginx(nginx)
    await Promise.all([tokenServer?.stop(), registry?.stop()])
    removeDir(dir)
  })

  it('`enlil serve` on the registry config as written names the command that converts it', async () => {
    const served = await enlilCli(['serve', join(dir, 'registry/config.yml')], { REGISTRY_HTTP_ADDR: `127.0.0.1:${await freePort()}` })
    expect(served.code).toBe(1)
    expect(served.stderr).toContain(`this looks like a distribution config: run \`enlil config convert --distribution ${join(dir, 'registry/config.yml')} --out enlil.yml\``)
  })

  it('converts each config alone, into folders that do not exist yet: the token server keeps docker_auth\'s address', async () => {
    const registryOut = join(dir, 'enlil/registry/enlil.yml')
    const authOut = join(dir, 'enlil/auth/enlil.yml')
    const converted = await enlilCli(['config', 'convert', '--distribution', join(dir, 'registry/config.yml'), '--out', registryOut])
    expect(converted.stderr).not.toMatch(/at .*\.js:\d+/) // no stack trace
    expect(converted.code, converted.stderr).toBe(0)
    expect(converted.stderr).toContain('note: storage.delete: absent, so deletes stay off as in distribution')
    const auth = await enlilCli(['config', 'convert', '--auth', join(dir, 'auth/config.yml'), '--out', authOut])
    expect(auth.code, auth.stderr).toBe(0)
    expect(readFileSync(authOut, 'utf8')).toMatch(/^  addr: "?:5001"?$/m)
    expect(existsSync(join(dir, 'enlil/auth/users.yml'))).toBe(true)

    // Where the tutorial maps ports and mounts volumes, the environment points the same options here
    // (startEnlil sets REGISTRY_HTTP_ADDR to a free port).
    tokenServer = await startEnlil(join(dir, 'token-data'), {
      REGISTRY_CONFIG: authOut, ENLIL_WORKERS: '1',
      ENLIL_AUTH_TOKEN_SIGNINGKEY: join(dir, 'auth/my.key'), ENLIL_AUTH_TOKEN_CERTIFICATE: join(dir, 'auth/my.crt'),
    })
    registry = await startEnlil(join(dir, 'registry-data'), {
      REGISTRY_CONFIG: registryOut, ENLIL_WORKERS: '1',
      REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: join(dir, 'auth/my.pem'),
    })
    const servers = NGINX_SERVER.replace('listen 0.0.0.0:80;', `listen ${domain};`)
      .replaceAll('/var/log/nginx/', `${dir}/nginx-`).replaceAll('$registrydomain', domain.replace(':', '_'))
      .replace('localhost:5001', `127.0.0.1:${tokenServer.port}`).replace('localhost:5000', `127.0.0.1:${registry.port}`)
    nginx = await startNginx(join(dir, 'nginx'), servers, Number(domain.split(':')[1]))
  })

  it('skopeo pushes as a group member and pulls anonymously from publicrepos/, through nginx', async () => {
    const image = writeOciLayout(join(dir, 'image'), 'pr-1', 2, 100_000)
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `firstuser:${password}`, `oci:${image.dir}:pr-1`, `docker://${domain}/publicrepos/app:pr-1`], { env: skopeoEnv(), timeout: 60_000 })
    // The tutorial's anonymous check ("docker manifest inspect"), with skopeo.
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${domain}/publicrepos/app:pr-1`], { env: skopeoEnv(), timeout: 30_000 })
    expect(JSON.parse(stdout).layers).toHaveLength(2)
    // Only pulls for anonymous, and nothing outside publicrepos/.
    await expect(run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image.dir}:pr-1`, `docker://${domain}/publicrepos/app:anon`], { env: skopeoEnv(), timeout: 30_000 })).rejects.toThrow()
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `firstuser:${password}`, `oci:${image.dir}:pr-1`, `docker://${domain}/firstuser/own:v1`], { env: skopeoEnv(), timeout: 60_000 })
    await expect(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${domain}/firstuser/own:v1`], { env: skopeoEnv(), timeout: 30_000 })).rejects.toThrow()
  })

  it('answers the tutorial\'s curl for an anonymous token, with the domain as the token\'s audience', async () => {
    const res = await fetch(`http://${domain}/auth/auth?service=${domain}&scope=repository:publicrepos/app:pull`)
    expect(res.status).toBe(200)
    const claims = decodeJwt(((await res.json()) as { token: string }).token)
    expect(claims).toMatchObject({ iss: 'my-docker-auth', aud: domain, access: [{ type: 'repository', name: 'publicrepos/app', actions: ['pull'] }] })
  })

  it('sends http.headers, and refuses deletes as distribution did without storage.delete', async () => {
    const v2 = await fetch(`http://${domain}/v2/`)
    expect(v2.status).toBe(401)
    expect(v2.headers.get('x-content-type-options')).toBe('nosniff')
    expect(v2.headers.get('www-authenticate')).toBe(`Bearer realm="http://${domain}/auth/auth",service="${domain}"`)
    const basic = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`
    const tokenRes = await fetch(`http://${domain}/auth/auth?service=${domain}&scope=repository:publicrepos/app:pull,delete`, { headers: { Authorization: basic } })
    const { token } = (await tokenRes.json()) as { token: string }
    const head = await fetch(`http://${domain}/v2/publicrepos/app/manifests/pr-1`, { method: 'HEAD', headers: { Authorization: `Bearer ${token}`, Accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(head.status).toBe(200)
    const digest = head.headers.get('docker-content-digest')!
    const del = await fetch(`http://${domain}/v2/publicrepos/app/manifests/${digest}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })
    expect(del.status).toBe(405)
  })
})
