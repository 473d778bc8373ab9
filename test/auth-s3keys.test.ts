/** Logging in with the S3 key pair of the storage bucket (what people do with Tigris keys today). */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3, rgwAdmin } from './support/s3.js'

const s3 = requireS3()
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe.skipIf(!s3)('token auth with S3 key pairs as accounts', () => {
  const bucket = `s3keys-${randomBytes(4).toString('hex')}`
  let enlil: Running
  beforeAll(async () => {
    await createBucket(bucket)
    enlil = await startEnlil('/nonexistent', { ...enlilS3Environment(bucket), REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_S3KEYS: 'true' })
  })
  afterAll(async () => {
    await enlil?.stop()
    await deleteBucket(bucket)
  })

  it('issues tokens for the bucket\'s key pair and refuses a wrong secret or an unknown key', async () => {
    const token = (auth: string) => fetch(`${enlil.url}/auth/token?service=enlil&scope=repository:team/app:pull,push`, { headers: { Authorization: auth } })
    const ok = await token(basic(s3!.accessKey, s3!.secretKey))
    expect(ok.status).toBe(200)
    const { token: jwt } = (await ok.json()) as { token: string }
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { sub: string; access: unknown }
    expect(claims.sub).toBe(s3!.accessKey)
    expect(claims.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }])
    expect((await fetch(`${enlil.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${jwt}` } })).status).toBe(202)
    expect((await token(basic(s3!.accessKey, 'not the secret'))).status).toBe(401)
    expect((await token(basic('AKIAUNKNOWN', s3!.secretKey))).status).toBe(401)
  })

  it('ends the refresh tokens of a key pair once the key is deleted at the store', async () => {
    const access = `AKIAREFRESH${randomBytes(4).toString('hex').toUpperCase()}`
    const secret = randomBytes(20).toString('hex')
    rgwAdmin('key', 'create', '--uid=enlil-tests', '--key-type=s3', `--access-key=${access}`, `--secret-key=${secret}`)
    const login = await fetch(`${enlil.url}/auth/token?service=enlil&offline_token=true&client_id=docker`, { headers: { Authorization: basic(access, secret) } })
    expect(login.status).toBe(200)
    const { refresh_token: refreshToken } = (await login.json()) as { refresh_token: string }
    // The secret rides sealed inside the token: its holder can't read it.
    expect(Buffer.from(refreshToken.split('.')[1]!, 'base64url').toString()).not.toContain(secret)
    const refresh = () => fetch(`${enlil.url}/auth/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, service: 'enlil', scope: 'repository:team/app:pull', client_id: 'docker' }),
    })
    expect((await refresh()).status).toBe(200)
    rgwAdmin('key', 'rm', '--uid=enlil-tests', '--key-type=s3', `--access-key=${access}`)
    // Asked at the store on each refresh, not from a cache: refused at once.
    const refused = await refresh()
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as { error: string }).error).toBe('invalid_grant')
  })
})
