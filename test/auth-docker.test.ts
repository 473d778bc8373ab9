/**
 * The Docker engine against enlil with token auth: docker login (refresh tokens), push, pull,
 * anonymous pulls of what the ACL makes public, and a push the ACL denies.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Dockerd, DOCKERD, startDockerd } from './support/dockerd.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from './support/processes.js'

const available = requirePart(existsSync(DOCKERD), 'the Docker engine (dockerd)', 'apt-get install --no-install-recommends docker.io')

describe.skipIf(!available)('docker with token auth', () => {
  let dir: string
  let enlil: Running
  let engine: Dockerd
  let registry: string
  beforeAll(async () => {
    dir = tempDir('docker')
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('alice password', 10)}\n`)
    writeFileSync(join(dir, 'config.yml'), [
      'auth:',
      '  token:',
      `    users: ${join(dir, 'users')}`,
      '  acl:',
      '    - match: {account: "", name: "public/*"}',
      '      actions: ["pull"]',
      '    - match: {account: "alice", name: "/(alice|public)\\/.+/"}',
      '      actions: ["*"]',
      '',
    ].join('\n'))
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml'), REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' })
    registry = new URL(enlil.url).host
    engine = await startDockerd(join(dir, 'engine'))
    // An image without network: a tarball of one file, imported.
    writeFileSync(join(dir, 'hello.txt'), `hello from enlil ${Date.now()}\n`)
    execFileSync('tar', ['-cf', join(dir, 'rootfs.tar'), '-C', dir, 'hello.txt'])
  }, 120_000)
  afterAll(async () => {
    await engine?.stop()
    await enlil?.stop()
    removeDir(dir)
  }, 60_000)

  it('logs in, pushes, pulls back; anonymous pulls of public/*; a denied push', async () => {
    const { docker } = engine
    await expect(docker(['login', registry, '-u', 'alice', '--password-stdin'], { input: 'wrong\n' })).rejects.toThrow()
    const login = await docker(['login', registry, '-u', 'alice', '--password-stdin'], { input: 'alice password\n' })
    expect(login.stdout).toContain('Login Succeeded')

    await docker(['import', join(dir, 'rootfs.tar'), `${registry}/alice/app:v1`])
    const pushed = await docker(['push', `${registry}/alice/app:v1`])
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1]
    expect(digest).toBeDefined()
    await docker(['tag', `${registry}/alice/app:v1`, `${registry}/public/app:v1`])
    await docker(['push', `${registry}/public/app:v1`])
    await docker(['rmi', `${registry}/alice/app:v1`, `${registry}/public/app:v1`])
    const pulled = await docker(['pull', `${registry}/alice/app:v1`])
    expect(pulled.stdout).toContain(digest)
    const inspect = await docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', `${registry}/alice/app:v1`])
    expect(inspect.stdout.trim()).toBe(`${registry}/alice/app@${digest}`)

    // docker login asked for a refresh token and used it (OAuth2 POST with grant_type=refresh_token).
    expect(enlil.output()).toMatch(/"method":"POST","path":"\/auth\/token","status":200/)

    await docker(['logout', registry])
    expect((await docker(['pull', `${registry}/public/app:v1`])).stdout).toContain(digest)
    await expect(docker(['pull', `${registry}/alice/app:v1`])).rejects.toThrow(/unauthorized|authentication required|denied|not found/i)
    await docker(['tag', `${registry}/public/app:v1`, `${registry}/public/other:v1`])
    await expect(docker(['push', `${registry}/public/other:v1`])).rejects.toThrow(/unauthorized|authentication required|denied/i)
  }, 240_000)
})
