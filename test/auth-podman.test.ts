/** podman against enlil with token auth: login, push, pull, logout; refused credentials. */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from './support/processes.js'

const run = promisify(execFile)
const available = requirePart(existsSync('/usr/bin/podman'), 'podman', 'apt-get install --no-install-recommends podman')

describe.skipIf(!available)('podman with token auth', () => {
  let dir: string
  let enlil: Running
  let registry: string
  // Its own storage, runtime dir and auth file: nothing shared with the machine's podman.
  const podman = (args: string[], input?: string) => {
    const p = run('podman', ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), ...args], {
      env: { ...process.env, REGISTRY_AUTH_FILE: join(dir, 'auth.json'), XDG_RUNTIME_DIR: join(dir, 'xdg') }, timeout: 120_000,
    })
    if (input !== undefined) p.child.stdin!.end(input)
    return p
  }
  beforeAll(async () => {
    dir = tempDir('podman')
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('alice password', 10)}\n`)
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users') })
    registry = new URL(enlil.url).host
    writeFileSync(join(dir, 'hello.txt'), 'hello from podman\n')
    execFileSync('tar', ['-cf', join(dir, 'rootfs.tar'), '-C', dir, 'hello.txt'])
  })
  afterAll(async () => {
    await enlil?.stop()
    // podman's storage holds files only root may remove in some layouts: best effort.
    try { execFileSync('podman', ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), 'system', 'reset', '--force'], { stdio: 'ignore', timeout: 60_000 }) } catch { /* removed below */ }
    removeDir(dir)
  })

  it('logs in, pushes, removes, pulls back the same digest', async () => {
    await expect(podman(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', registry], 'wrong\n')).rejects.toThrow()
    await podman(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', registry], 'alice password\n')
    await podman(['import', join(dir, 'rootfs.tar'), `${registry}/team/app:v1`])
    await podman(['push', '--tls-verify=false', '--digestfile', join(dir, 'digest'), `${registry}/team/app:v1`])
    const digest = execFileSync('cat', [join(dir, 'digest')]).toString().trim()
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    await podman(['rmi', `${registry}/team/app:v1`])
    await podman(['pull', '--tls-verify=false', `${registry}/team/app:v1`])
    const { stdout } = await podman(['image', 'inspect', '--format', '{{.Digest}}', `${registry}/team/app:v1`])
    expect(stdout.trim()).toBe(digest)
    await podman(['logout', registry])
    await expect(podman(['pull', '--tls-verify=false', `${registry}/team/app:v1`])).rejects.toThrow()
  }, 180_000)
})
