/**
 * Seed 004, a guide for an OCI registry of container and Curie VM images (Geranos): distribution
 * with a filesystem store and deletes on, behind cesanta/docker_auth (`registry-auth.yml`: bcrypt
 * users, anonymous pulls of `public/*`), each in its own container (:5000 and :5001).
 *
 * The guide's two files below are verbatim. The test fills in what its reader does (bcrypt hashes
 * for `<redacted>`, a self-signed certificate) and, for `macvm.store`, the addresses its proxy sends
 * `/auth` and the rest to; the docker volumes become the environment's paths. Shown: after
 * `enlil config convert` of each file alone, the two enlil processes do what the two containers
 * did: skopeo pushes a VM-like image as tjarosik, anonymous clients pull `public/*` and nothing
 * else, an account without rules gets nothing, and deletes work as the guide enabled them.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeOciLayout } from '../support/oci-layout.js'
import { freePort, removeDir, requirePart, type Running, startEnlil, tempDir } from '../support/processes.js'
import { enlilCli } from '../support/seeds.js'

const run = promisify(execFile)
const available = requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')
  && requirePart(existsSync('/usr/bin/openssl'), 'openssl', 'apt-get install openssl')

// ── The guide's files, verbatim ──
const REGISTRY_YAML = `version: 0.1
log:
  fields:
    service: registry
auth:
  token:
    realm: "https://macvm.store/auth"
    service: "jarosik-oci-service"   # Must match service in auth_config.yml
    issuer: "jarosik-token-issuer"  # Must match issuer in auth_config.yml
    rootcertbundle: /etc/default/registry-certs/cert.pem # Public cert in Docker v2.8
storage:
  delete:
    enabled: true
  filesystem:
    rootdirectory: /mnt/ssd850a/registry-data
  # For production, configure S3-compatible storage (Minio) for durability and scalability.
  # s3:
  #   accesskey: <YOUR-ACCESS-KEY>
  #   secretkey: <YOUR-SECRET-KEY>
  #   region: "us-east-1"
  #   bucket: goharbor-vm-images
  #   endpoint: "http://minio.example.com"
  cache:
    blobdescriptor: inmemory
http:
  addr: :5000
  secret: thisisasecretforhttp
  host: "https://macvm.store"
`

const REGISTRY_AUTH_YML = `server:
  addr: ":5001"

token:
  issuer: "jarosik-token-issuer"  # Must match issuer in registry config.
  expiration: 900
  certificate: "/etc/default/registry-certs/cert.pem"
  key: "/etc/default/registry-certs/privkey.pem"

users:
  # BCrypt-hashed passwords for users
  "tjarosik":
    password: "<redacted>"
  "marcin":
    password: "<redacted>"
  "test":
    password: "<redacted>"
  "": {}  # Anonymous (no login) access

acl:
  - match: {account: "tjarosik"}
    actions: ["*"]
    comment: "Allow all actions for user"
  - match: {account: "marcin"}
    actions: ["*"]
    comment: "Allow all actions for user"
  - match: {account: "", name: "public/*"}
    actions: ["pull"]
    comment: "Anonymous users can pull from public/* images"
`
// ── end of the guide's files ──

describe.skipIf(!available)('seed 004: distribution + docker_auth for VM images, converted', () => {
  const dir = tempDir('seed-004')
  const password = 'vm images password'
  let tokenServer: Running
  let registry: Running
  const env = () => ({ ...process.env, HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'none.json') })
  const copy = (args: string[]) => run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args], { env: env(), timeout: 60_000 })

  beforeAll(async () => {
    const certs = join(dir, 'registry-certs')
    mkdirSync(certs, { recursive: true })
    await run('openssl', ['req', '-x509', '-nodes', '-newkey', 'rsa:2048', '-days', '2', '-keyout', 'privkey.pem', '-out', 'cert.pem', '-subj', '/CN=macvm.store'], { cwd: certs })
    const registryPort = await freePort()
    writeFileSync(join(dir, 'registry-auth.yml'), REGISTRY_AUTH_YML.replaceAll('<redacted>', bcrypt.hashSync(password, 5)))
    expect((await enlilCli(['config', 'convert', '--auth', join(dir, 'registry-auth.yml'), '--out', join(dir, 'enlil-auth/enlil.yml')])).code).toBe(0)
    tokenServer = await startEnlil(join(dir, 'token-data'), {
      REGISTRY_CONFIG: join(dir, 'enlil-auth/enlil.yml'), ENLIL_WORKERS: '1',
      ENLIL_AUTH_TOKEN_SIGNINGKEY: join(certs, 'privkey.pem'), ENLIL_AUTH_TOKEN_CERTIFICATE: join(certs, 'cert.pem'),
    })
    // macvm.store's proxy: /auth to the token server, the rest to the registry.
    writeFileSync(join(dir, 'registry.yaml'), REGISTRY_YAML.replace('https://macvm.store/auth', `${tokenServer.url}/auth`).replace('https://macvm.store', `http://127.0.0.1:${registryPort}`))
    const converted = await enlilCli(['config', 'convert', '--distribution', join(dir, 'registry.yaml'), '--out', join(dir, 'enlil-registry/enlil.yml')])
    expect(converted.code, converted.stderr).toBe(0)
    registry = await startEnlil(join(dir, 'registry-data'), {
      REGISTRY_CONFIG: join(dir, 'enlil-registry/enlil.yml'), ENLIL_WORKERS: '1',
      REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: join(certs, 'cert.pem'),
    }, registryPort)
  })
  afterAll(async () => {
    await Promise.all([tokenServer?.stop(), registry?.stop()])
    removeDir(dir)
  })

  it('takes pushes from tjarosik and anonymous pulls of public/* only', async () => {
    const host = new URL(registry.url).host
    const vm = writeOciLayout(join(dir, 'vm'), '15.0.1', 3, 150_000)
    await copy(['--dest-creds', `tjarosik:${password}`, `oci:${vm.dir}:15.0.1`, `docker://${host}/macvmio/vm-image:macos-15.0.1-base`])
    await copy(['--dest-creds', `tjarosik:${password}`, `oci:${vm.dir}:15.0.1`, `docker://${host}/public/vm-image:base`])
    await copy([`docker://${host}/public/vm-image:base`, `oci:${join(dir, 'pulled')}:base`])
    await expect(copy([`docker://${host}/macvmio/vm-image:macos-15.0.1-base`, `oci:${join(dir, 'denied')}:x`])).rejects.toThrow()
    // "test" has a password but no ACL rule: docker_auth gave it nothing, and so does enlil.
    await expect(copy(['--src-creds', `test:${password}`, `docker://${host}/macvmio/vm-image:macos-15.0.1-base`, `oci:${join(dir, 'denied2')}:x`])).rejects.toThrow()
  })

  it('deletes, as the guide enabled them', async () => {
    const host = new URL(registry.url).host
    await run('skopeo', ['delete', '--tls-verify=false', '--creds', `tjarosik:${password}`, `docker://${host}/macvmio/vm-image:macos-15.0.1-base`], { env: env(), timeout: 30_000 })
    await expect(run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `tjarosik:${password}`, `docker://${host}/macvmio/vm-image:macos-15.0.1-base`], { env: env(), timeout: 30_000 })).rejects.toThrow(/manifest unknown|not found/i)
  })
})
