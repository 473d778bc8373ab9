/** A real client through token auth: skopeo login, copy with --creds, anonymous pulls where the ACL allows, a denied push. */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeOciLayout } from './support/oci-layout.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from './support/processes.js'

const run = promisify(execFile)
const skopeo = requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')

describe.skipIf(!skopeo)('skopeo with token auth', () => {
  let dir: string
  let enlil: Running
  let host: string
  const env = () => ({ ...process.env, HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') })
  beforeAll(async () => {
    dir = tempDir('skopeo-auth')
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('alice password', 10)}\n`)
    writeFileSync(join(dir, 'config.yml'), [
      'auth:',
      '  token:',
      `    users: ${join(dir, 'users')}`,
      '  acl:',
      '    - match: {account: "", name: "public/*"}',
      '      actions: ["pull"]',
      '    - match: {account: "alice"}',
      '      actions: ["*"]',
      '',
    ].join('\n'))
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml') })
    host = new URL(enlil.url).host
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('logs in, pushes with --creds, pulls anonymously from public/*, and is refused a push without login', async () => {
    const image = writeOciLayout(join(dir, 'src'), 'v1', 2, 200_000)
    await expect(run('skopeo', ['login', '--tls-verify=false', '-u', 'alice', '-p', 'wrong', host], { env: env() })).rejects.toThrow()
    await run('skopeo', ['login', '--tls-verify=false', '-u', 'alice', '-p', 'alice password', host], { env: env() })
    expect(readFileSync(join(dir, 'auth.json'), 'utf8')).toContain(host)
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${host}/public/app:v1`], { env: env(), timeout: 60_000 })
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'alice:alice password', `oci:${image.dir}:v1`, `docker://${host}/private/app:v1`], { env: { ...env(), REGISTRY_AUTH_FILE: join(dir, 'none.json') }, timeout: 60_000 })

    const anonymous = { ...env(), REGISTRY_AUTH_FILE: join(dir, 'none.json') }
    await run('skopeo', ['copy', '--src-tls-verify=false', '--preserve-digests', `docker://${host}/public/app:v1`, `oci:${join(dir, 'pulled')}:v1`], { env: anonymous, timeout: 60_000 })
    for (const blob of image.blobs) expect(readFileSync(join(dir, 'pulled/blobs/sha256', blob.digest.slice(7))).equals(blob.bytes)).toBe(true)
    await expect(run('skopeo', ['inspect', '--tls-verify=false', `docker://${host}/private/app:v1`], { env: anonymous })).rejects.toThrow()
    const denied = run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${host}/public/other:v1`], { env: anonymous, timeout: 60_000 })
    await expect(denied).rejects.toThrow(/unauthorized|authentication required|denied/i)
  }, 120_000)
})
