/**
 * Seed 000, anu: distribution on Tigris behind a separate auth app that turns Tigris key pairs into
 * tokens; users log in with a key pair that has *no* permission on the bucket (anu checks that the
 * key's ListBuckets shows the bucket). The registry app's secrets below are the README's, verbatim
 * in their names; the values are the test store's (Ceph RGW standing in for Tigris).
 *
 * The store is modelled as anu's users have it: the bucket belongs to an account (an RGW user) whose
 * login key a bucket policy denies every permission on the bucket, yet whose ListBuckets shows it;
 * the registry's storage key (another user) may do everything. Shown: the registry app's secrets as
 * written are refused with what to set instead (they started enlil with auth off); keeping anu's
 * trusted certificate bundle beside enlil's own token service is refused naming both options; with
 * the README's migration (enlil is the token service) the no-permission key logs in with skopeo and
 * pushes, a stranger's key and a wrong secret are refused, and the log says why, never the secret.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CreateBucketCommand, PutBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeOciLayout } from '../support/oci-layout.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from '../support/processes.js'
import { deleteBucket, enlilS3Environment, requireS3, rgwAdmin } from '../support/s3.js'
import { enlilCli } from '../support/seeds.js'

const run = promisify(execFile)
const s3 = requireS3()
const tools = requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo') && requirePart(existsSync('/usr/bin/openssl'), 'openssl', 'apt-get install openssl')

describe.skipIf(!s3 || !tools)('seed 000: anu (log in with a Tigris key that has no permission on the bucket)', () => {
  const dir = tempDir('seed-000')
  const bucket = `anu-${randomBytes(4).toString('hex')}`
  const suffix = randomBytes(3).toString('hex')
  const owner = { uid: `anu-org-${suffix}`, access: `ANUDASH${suffix.toUpperCase()}`, secret: randomBytes(20).toString('hex') }
  const stranger = { uid: `anu-stranger-${suffix}`, access: `STRANGER${suffix.toUpperCase()}`, secret: randomBytes(20).toString('hex') }
  let cert64: string
  let key64: string
  let enlil: Running
  /** The registry app's secrets, as anu's README sets them (fly secrets set -a anu-registry …). */
  const asWritten = () => ({
    ...enlilS3Environment(bucket),
    JWT_CERT_B64: cert64,
    REGISTRY_AUTH_TOKEN_REALM: 'https://anu-auth-endpoint.fly.dev',
    REGISTRY_STORAGE_S3_BUCKET: bucket,
  })

  beforeAll(async () => {
    // Step 2 of anu's README, as written.
    await run('openssl', ['req', '-x509', '-nodes', '-new', '-sha256', '-days', '36500', '-newkey', 'rsa:4096', '-keyout', 'anu.key', '-out', 'anu.pem', '-subj', '/C=US/CN=Registry Auth CA'], { cwd: dir })
    cert64 = readFileSync(join(dir, 'anu.pem')).toString('base64')
    key64 = readFileSync(join(dir, 'anu.key')).toString('base64')
    for (const u of [owner, stranger]) rgwAdmin('user', 'create', `--uid=${u.uid}`, `--display-name=${u.uid}`, `--access-key=${u.access}`, `--secret-key=${u.secret}`)
    const client = new S3Client({
      region: s3!.region, endpoint: s3!.endpoint, forcePathStyle: true, credentials: { accessKeyId: owner.access, secretAccessKey: owner.secret },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    })
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
    const resources = [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`]
    await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [
      { Effect: 'Allow', Principal: { AWS: ['arn:aws:iam:::user/enlil-tests'] }, Action: ['s3:*'], Resource: resources },
      { Effect: 'Deny', Principal: { AWS: [`arn:aws:iam:::user/${owner.uid}`] }, Action: ['s3:ListBucket', 's3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: resources },
    ] }) }))
    client.destroy()
  })
  afterAll(async () => {
    await enlil?.stop()
    await deleteBucket(bucket).catch(() => {})
    for (const u of [owner, stranger]) { try { rgwAdmin('user', 'rm', `--uid=${u.uid}`, '--purge-data') } catch { /* already gone */ } }
    removeDir(dir)
  })

  it('refuses the registry app\'s secrets as written, saying what makes enlil the token service (it served with auth off)', async () => {
    const checked = await enlilCli(['config', 'check'], asWritten())
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain('ENLIL_AUTH_TOKEN_S3KEYS=true')
  })

  it('refuses anu\'s trusted bundle beside enlil\'s own token service, naming both options', async () => {
    const checked = await enlilCli(['config', 'check'], { ...asWritten(), ENLIL_AUTH_TOKEN_S3KEYS: 'true', JWT_KEY_B64: key64, REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: join(dir, 'anu.pem') })
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain('auth.token.rootcertbundle (REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE) trusts an external token server, but auth.token.s3keys (ENLIL_AUTH_TOKEN_S3KEYS) belongs to enlil\'s own token service')
  })

  it('after the README\'s migration, the no-permission key logs in and pushes; others are refused, and the log says why', async () => {
    const env: Record<string, string> = { ...asWritten(), REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_S3KEYS: 'true', JWT_KEY_B64: key64, ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'info' }
    delete env.REGISTRY_AUTH_TOKEN_REALM // `fly secrets unset REGISTRY_AUTH_TOKEN_REALM`
    enlil = await startEnlil('/nonexistent', env)
    const host = new URL(enlil.url).host
    const skopeoEnv = { ...process.env, HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }
    await run('skopeo', ['login', '--tls-verify=false', '-u', owner.access, '-p', owner.secret, host], { env: skopeoEnv })
    const image = writeOciLayout(join(dir, 'hello-world'), 'latest', 1, 50_000)
    await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${image.dir}:latest`, `docker://${host}/hello-world`], { env: skopeoEnv, timeout: 60_000 })

    // Tokens carry anu's certificate, so a distribution that trusted it verifies them too.
    const token = await fetch(`${enlil.url}/auth/token?service=enlil&scope=repository:hello-world:pull`, { headers: { Authorization: `Basic ${Buffer.from(`${owner.access}:${owner.secret}`).toString('base64')}` } })
    expect(token.status).toBe(200)
    expect(decodeProtectedHeader(((await token.json()) as { token: string }).token).x5c).toHaveLength(1)

    const refused = async (user: string, secret: string) => (await fetch(`${enlil.url}/auth/token?service=enlil`, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}` } })).status
    expect(await refused(stranger.access, stranger.secret)).toBe(401)
    expect(await refused(owner.access, 'not the secret')).toBe(401)
    const log = enlil.output()
    expect(log).toMatch(new RegExp(`"msg":"login refused",.*"account":"${stranger.access}","reason":"the key cannot see bucket ${bucket}`))
    expect(log).toMatch(new RegExp(`"msg":"login refused",.*"account":"${owner.access}","reason":"wrong secret for this access key ID"`))
    expect(log).not.toContain(stranger.secret)
  })
})
