/**
 * podman and buildah against enlil in every cell of the matrix: login, push, pull, `podman run` of
 * the pulled busybox, an image built by buildah pushed and pulled back, `manifest push --all` of a
 * two-platform list.
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, requirePart, tempDir } from '../support/processes.js'
import { busyboxAvailable, type Fixtures, writeFixtures } from './images.js'
import { type Registry, runnableCells, startRegistry } from './registry.js'

const run = promisify(execFile)
const available = requirePart(existsSync('/usr/bin/podman'), 'podman', 'apt-get install --no-install-recommends podman')
  && requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')
  && requirePart(existsSync('/usr/bin/buildah'), 'buildah', 'apt-get install --no-install-recommends buildah')
  && requirePart(existsSync('/usr/sbin/runc'), 'runc (podman run)', 'apt-get install runc')
  && requirePart(busyboxAvailable(), 'a static busybox (the runnable test image)', 'apt-get install busybox-static')

describe.skipIf(!available)('podman and buildah', () => {
  let work: string
  let fixtures: Fixtures
  /** podman or buildah with storage, runtime dir and auth file of their own: nothing shared with the machine's. */
  const tool = async (bin: 'podman' | 'buildah', args: string[], input?: string) => {
    const p = run(bin, ['--root', join(work, 'root'), '--runroot', join(work, 'runroot'), '--storage-driver', 'vfs', ...args], {
      env: { ...process.env, HOME: work, REGISTRY_AUTH_FILE: join(work, 'auth.json'), XDG_RUNTIME_DIR: join(work, 'xdg') },
      timeout: 180_000, maxBuffer: 16 << 20,
    })
    if (input !== undefined) p.child.stdin!.end(input)
    return (await p).stdout
  }
  const podman = (...args: string[]) => tool('podman', args)
  const buildah = (...args: string[]) => tool('buildah', args)
  beforeAll(async () => {
    // Lowercase: podman names an image pulled from a layout after the layout's path.
    work = join(tmpdir(), `enlil-e2e-podman-${randomBytes(4).toString('hex')}`)
    mkdirSync(work)
    fixtures = await writeFixtures(work)
    writeFileSync(join(work, 'auth.json'), '{}')
    // podman pull prints the stored image's ID last.
    const id = (await podman('pull', `oci:${fixtures.layout.dir}:busybox`)).trim().split('\n').at(-1)!
    await podman('tag', id, 'localhost/e2e/busybox:local')
  })
  afterAll(() => {
    // Storage made by root in a layout only podman cleans fully: best effort, then the folder.
    try { execFileSync('podman', ['--root', join(work, 'root'), '--runroot', join(work, 'runroot'), '--storage-driver', 'vfs', 'system', 'reset', '--force'], { stdio: 'ignore', timeout: 60_000 }) } catch { /* removed below */ }
    removeDir(work)
  })

  describe.each(runnableCells())('$store, auth $auth', (cell) => {
    let registry: Registry
    const image = (repo: string) => `${registry.host}/${repo}`
    beforeAll(async () => {
      registry = await startRegistry(cell, 'e2e-podman-cell')
    })
    afterAll(() => registry?.stop())

    it('podman and buildah log in (or need no login)', async () => {
      if (!registry.credentials) return
      await podman('tag', 'localhost/e2e/busybox:local', image('e2e/busybox:1'))
      await expect(podman('push', '--tls-verify=false', image('e2e/busybox:1'))).rejects.toThrow(/unauthorized|authentication required|denied/i)
      await expect(tool('podman', ['login', '--tls-verify=false', '-u', registry.credentials.user, '--password-stdin', registry.host], 'wrong\n')).rejects.toThrow()
      expect(await tool('podman', ['login', '--tls-verify=false', '-u', registry.credentials.user, '--password-stdin', registry.host], `${registry.credentials.password}\n`)).toContain('Login Succeeded')
      await tool('buildah', ['logout', registry.host])
      expect(await tool('buildah', ['login', '--tls-verify=false', '-u', registry.credentials.user, '--password-stdin', registry.host], `${registry.credentials.password}\n`)).toContain('Login Succeeded')
    })

    it('podman pushes busybox, pulls it back and runs it', async () => {
      await podman('tag', 'localhost/e2e/busybox:local', image('e2e/busybox:1'))
      await podman('push', '--tls-verify=false', '--digestfile', join(registry.dir, 'digest'), image('e2e/busybox:1'))
      const digest = execFileSync('cat', [join(registry.dir, 'digest')]).toString().trim()
      expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)
      await podman('rmi', image('e2e/busybox:1'))
      await podman('pull', '--tls-verify=false', image('e2e/busybox:1'))
      expect(await podman('image', 'inspect', '--format', '{{json .RepoDigests}}', image('e2e/busybox:1'))).toContain(`${image('e2e/busybox')}@${digest}`)
      const out = await podman('run', '--rm', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', image('e2e/busybox:1'))
      expect(out).toBe(`${fixtures.greeting}\n`)
    })

    it('buildah builds on the pulled image, pushes, pulls back', async () => {
      const container = (await buildah('from', '--tls-verify=false', image('e2e/busybox:1'))).trim()
      writeFileSync(join(registry.dir, 'note'), `built by buildah on ${cell.store}\n`)
      await buildah('copy', container, join(registry.dir, 'note'), '/etc/note')
      await buildah('config', '--cmd', 'cat /etc/note', container)
      await buildah('commit', container, image('e2e/buildah:1'))
      await buildah('rm', container)
      await buildah('push', '--tls-verify=false', '--digestfile', join(registry.dir, 'built-digest'), image('e2e/buildah:1'))
      const digest = execFileSync('cat', [join(registry.dir, 'built-digest')]).toString().trim()
      await buildah('rmi', image('e2e/buildah:1'))
      await buildah('pull', '--tls-verify=false', image('e2e/buildah:1'))
      const inspected = JSON.parse(await buildah('inspect', '--type', 'image', image('e2e/buildah:1'))) as { FromImageDigest: string; OCIv1: { rootfs: { diff_ids: string[] } } }
      expect(inspected.FromImageDigest).toBe(digest)
      expect(inspected.OCIv1.rootfs.diff_ids).toHaveLength(2)
      const out = await podman('run', '--rm', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', image('e2e/buildah:1'))
      expect(out).toBe(`built by buildah on ${cell.store}\n`)
    })

    it('podman manifest push --all: a two-platform list', async () => {
      const list = image('e2e/list:1')
      await podman('manifest', 'create', list)
      await podman('manifest', 'add', '--tls-verify=false', '--arch', 'amd64', list, `docker://${image('e2e/busybox:1')}`)
      await podman('manifest', 'add', '--tls-verify=false', '--arch', 'arm64', list, `docker://${image('e2e/buildah:1')}`)
      await podman('manifest', 'push', '--all', '--tls-verify=false', list, `docker://${list}`)
      await podman('manifest', 'rm', list)
      // podman 4.3's manifest inspect has no --tls-verify: read the pushed list with skopeo, as logged in.
      const remote = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${list}`], {
        env: { ...process.env, HOME: work, REGISTRY_AUTH_FILE: join(work, 'auth.json') },
      })).stdout) as { manifests: { platform: { architecture: string } }[] }
      expect(remote.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64'])
      await podman('rmi', image('e2e/busybox:1'), image('e2e/buildah:1'))
      await podman('pull', '--tls-verify=false', '--arch', 'amd64', list)
      const out = await podman('run', '--rm', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', list)
      expect(out).toBe(`${fixtures.greeting}\n`)
      if (registry.credentials) await podman('logout', registry.host)
    })
  })
})
