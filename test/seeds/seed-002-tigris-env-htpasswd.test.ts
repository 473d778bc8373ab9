/**
 * Seed 002, Tigris' guide to distribution on Tigris: a `.env` of `REGISTRY_STORAGE_S3_*` variables
 * (hostname endpoint, virtual-hosted style), `REGISTRY_HTTP_SECRET`, then htpasswd auth through
 * `REGISTRY_AUTH*` and a file made with `htpasswd -B`. The `.env` below is verbatim; the test fills
 * in the three "change these" settings and, for the working case, points the hostname endpoint at
 * the test store's DNS name (resolved to 127.0.0.1 by a lookup hook, as Node does not resolve
 * `*.s3.test`) so requests stay virtual-hosted.
 *
 * Shown: the environment works as written (skopeo pushes and pulls with the htpasswd user, anonymous
 * clients get the Basic challenge); a store that can't be resolved (t3.storage.dev offline) is said
 * at startup and answered 503 UNAVAILABLE, also by /readyz; and a data folder enlil may not write
 * is answered 503 by pushes and /readyz instead of 500 and "ready".
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { get } from 'node:http'
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseDotenv } from '../../src/config/dotenv.js'
import { writeOciLayout } from '../support/oci-layout.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from '../support/processes.js'
import { createBucket, deleteBucket, requireS3 } from '../support/s3.js'

const run = promisify(execFile)
const s3 = requireS3()
const skopeo = requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')

// ── The guide's .env, verbatim ──
const DOTENV = `# Change these settings
REGISTRY_STORAGE_S3_BUCKET=bucketName
REGISTRY_STORAGE_S3_ACCESSKEY=tid_accessKey
REGISTRY_STORAGE_S3_SECRETKEY=tsec_secretAccessKey

# Don't change these settings
REGISTRY_STORAGE=s3
REGISTRY_STORAGE_S3_REGION=auto
REGISTRY_STORAGE_S3_REGIONENDPOINT=https://t3.storage.dev
REGISTRY_STORAGE_S3_FORCEPATHSTYLE=false
REGISTRY_STORAGE_S3_ENCRYPT=false
REGISTRY_STORAGE_S3_SECURE=true
REGISTRY_STORAGE_S3_V4AUTH=true
REGISTRY_STORAGE_S3_CHUNKSIZE=5242880
REGISTRY_STORAGE_S3_ROOTDIRECTORY=/
`
// ── end of the .env ──

/** Resolves the test store's DNS name and its virtual hosts to 127.0.0.1 inside enlil's process. */
const LOOKUP_HOOK = (name: string) => `import dns from 'node:dns'
const original = dns.lookup
dns.lookup = function (host, options, callback) {
  if (typeof host === 'string' && (host === ${JSON.stringify(name)} || host.endsWith(${JSON.stringify(`.${name}`)}))) {
    if (typeof options === 'function') { callback = options; options = {} }
    if (options && options.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }])
    return process.nextTick(callback, null, '127.0.0.1', 4)
  }
  return original.call(this, host, options, callback)
}
`

const dir = tempDir('seed-002')
const running: Running[] = []
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()))
  removeDir(dir)
})

describe.skipIf(!s3 || !skopeo)('seed 002: distribution on Tigris by environment, then htpasswd', () => {
  const bucket = `tigris-${randomBytes(4).toString('hex')}`
  const env = parseDotenv(DOTENV)
  // `fly secret set REGISTRY_HTTP_SECRET=$(uuidgen)` and the htpasswd step's secrets.
  const htpasswd = join(dir, 'htpasswd')
  const secured = { REGISTRY_HTTP_SECRET: randomUUID(), REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: 'basic-realm', REGISTRY_AUTH_HTPASSWD_PATH: htpasswd }
  beforeAll(async () => {
    await createBucket(bucket)
    writeFileSync(htpasswd, `admin:${bcrypt.hashSync('admin password', 5).replace('$2b$', '$2y$')}\n`)
    writeFileSync(join(dir, 'lookup.mjs'), LOOKUP_HOOK(process.env.ENLIL_TEST_S3_DNS_NAME ?? 's3.test'))
  })
  afterAll(async () => {
    await deleteBucket(bucket)
  })

  it('works as written: virtual-hosted requests to a hostname endpoint, htpasswd logins, skopeo', async () => {
    const port = new URL(s3!.endpoint).port
    const enlil = await startEnlil('/nonexistent', {
      ...env, ...secured, ENLIL_WORKERS: '1',
      REGISTRY_STORAGE_S3_BUCKET: bucket, REGISTRY_STORAGE_S3_ACCESSKEY: s3!.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: s3!.secretKey,
      REGISTRY_STORAGE_S3_REGION: s3!.region,
      REGISTRY_STORAGE_S3_REGIONENDPOINT: `http://${process.env.ENLIL_TEST_S3_DNS_NAME ?? 's3.test'}:${port}`,
      NODE_OPTIONS: `--import ${join(dir, 'lookup.mjs')}`,
    })
    running.push(enlil)
    expect(enlil.output()).not.toContain('unknown environment variable')
    const v2 = await fetch(`${enlil.url}/v2/`)
    expect(v2.status).toBe(401)
    expect(v2.headers.get('www-authenticate')).toBe('Basic realm="basic-realm"')
    const host = new URL(enlil.url).host
    const skopeoEnv = { ...process.env, HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    const image = writeOciLayout(join(dir, 'smollm'), 'q4', 2, 200_000)
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'admin:admin password', `oci:${image.dir}:q4`, `docker://${host}/models/smollm/135m:q4`], { env: skopeoEnv, timeout: 60_000 })
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'admin:admin password', `docker://${host}/models/smollm/135m:q4`], { env: skopeoEnv, timeout: 30_000 })
    // Blob pulls go to the store itself (a presigned virtual-hosted URL, Tigris' cache), which
    // skopeo here can't resolve: follow the redirect by hand to the store's address.
    const layer = (JSON.parse(stdout) as { layers: { digest: string }[] }).layers[0]!.digest
    const blob = await fetch(`${enlil.url}/v2/models/smollm/135m/blobs/${layer}`, { headers: { Authorization: `Basic ${Buffer.from('admin:admin password').toString('base64')}` }, redirect: 'manual' })
    expect(blob.status).toBe(307)
    const location = new URL(blob.headers.get('location')!)
    expect(location.hostname).toBe(`${bucket}.${process.env.ENLIL_TEST_S3_DNS_NAME ?? 's3.test'}`)
    const bytes = await new Promise<Buffer>((ok, fail) => {
      get({ host: '127.0.0.1', port: location.port, path: `${location.pathname}${location.search}`, headers: { Host: location.host } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => ok(Buffer.concat(chunks))).on('error', fail)
      }).on('error', fail)
    })
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(layer)
    expect((await fetch(`${enlil.url}/readyz`)).status).toBe(200)
  })

  it('says at startup that a store which cannot be resolved is out of reach, and answers 503 UNAVAILABLE', async () => {
    // As written, offline: t3.storage.dev does not resolve here.
    const enlil = await startEnlil('/nonexistent', {
      ...env, ...secured, ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'info',
      REGISTRY_STORAGE_S3_REGIONENDPOINT: 'https://t3.storage.invalid',
    })
    running.push(enlil)
    const auth = { Authorization: `Basic ${Buffer.from('admin:admin password').toString('base64')}` }
    const upload = await fetch(`${enlil.url}/v2/models/smollm/135m/blobs/uploads/`, { method: 'POST', headers: auth })
    expect(upload.status).toBe(503)
    expect(((await upload.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAVAILABLE')
    const tags = await fetch(`${enlil.url}/v2/models/smollm/135m/tags/list`, { headers: auth })
    expect(tags.status).toBe(503)
    expect((await fetch(`${enlil.url}/readyz`)).status).toBe(503)
    for (let i = 0; i < 100 && !enlil.output().includes('the store cannot be reached or written'); i++) await new Promise((r) => setTimeout(r, 100))
    expect(enlil.output()).toMatch(/"level":"error","msg":"the store cannot be reached or written.*t3\.storage\.invalid/)
  })
})

describe('seed 002: a data folder enlil may not write', () => {
  // Root writes anywhere a mode allows: the immutable attribute (chattr +i) stops root too.
  const data = join(dir, 'readonly-data')
  mkdirSync(data, { recursive: true })
  const asRoot = process.getuid?.() === 0
  let locked = false
  beforeAll(async () => {
    if (!asRoot) chmodSync(data, 0o555)
    else locked = await run('chattr', ['+i', data]).then(() => true, () => false)
  })
  afterAll(async () => {
    if (locked) await run('chattr', ['-i', data])
    else chmodSync(data, 0o755)
  })

  it('answers pushes and /readyz with 503 UNAVAILABLE, and says so at startup', async () => {
    if (asRoot && !requirePart(locked, 'chattr +i on the temporary folder (e2fsprogs, a filesystem with the immutable attribute)', 'apt-get install e2fsprogs')) return
    const enlil = await startEnlil(data, { ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'info' })
    running.push(enlil)
    const upload = await fetch(`${enlil.url}/v2/app/blobs/uploads/`, { method: 'POST' })
    expect(upload.status).toBe(503)
    expect(((await upload.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAVAILABLE')
    const ready = await fetch(`${enlil.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { reason: string }).reason).toContain('the storage folder cannot be written')
    expect(enlil.output()).toMatch(/"level":"error","msg":"the store cannot be reached or written/)
  })
})
