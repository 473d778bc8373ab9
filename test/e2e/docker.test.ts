/**
 * The Docker engine (Debian's docker.io, on a private socket) and containerd's ctr against enlil in
 * every cell of the matrix: login, push, pull, `run` of the pulled busybox printing its greeting, a
 * locally built image pushed on top of it, `docker manifest inspect`; ctr pulls, pushes a copy into
 * another repository (a mount, ctr's own upload requests) that docker then pulls and runs.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Dockerd, DOCKERD, startDockerd } from '../support/dockerd.js'
import { removeDir, requirePart, tempDir } from '../support/processes.js'
import { busyboxAvailable, type Fixtures, writeFixtures } from './images.js'
import { type Registry, runnableCells, startRegistry } from './registry.js'

const run = promisify(execFile)
const available = requirePart(existsSync(DOCKERD) && existsSync('/usr/bin/ctr'), 'the Docker engine and ctr', 'apt-get install --no-install-recommends docker.io')
  && requirePart(existsSync('/usr/bin/skopeo'), 'skopeo (to turn the test image into a docker archive)', 'apt-get install skopeo')
  && requirePart(busyboxAvailable(), 'a static busybox (the runnable test image)', 'apt-get install busybox-static')

describe.skipIf(!available)('docker and ctr', () => {
  let work: string
  let fixtures: Fixtures
  let engine: Dockerd
  const archive = () => join(work, 'busybox.tar')
  beforeAll(async () => {
    work = tempDir('e2e-docker')
    fixtures = await writeFixtures(work)
    await run('skopeo', ['copy', `oci:${fixtures.layout.dir}:busybox`, `docker-archive:${archive()}:e2e/busybox:local`], { env: { ...process.env, HOME: work } })
    engine = await startDockerd(join(work, 'engine'))
    await run('skopeo', ['copy', `oci:${fixtures.layout.dir}:layers`, `docker-archive:${join(work, 'layers.tar')}:e2e/layers:local`], { env: { ...process.env, HOME: work } })
    await engine.docker(['load', '-i', archive()])
  })
  afterAll(async () => {
    await engine?.stop()
    removeDir(work)
  })

  describe.each(runnableCells())('$store, auth $auth', (cell) => {
    let registry: Registry
    const docker = (...args: string[]) => engine.docker(args).then((r) => r.stdout)
    /** `ctr images pull|push|tag …`; credentials go before the image names (flags after them are not parsed). */
    const ctr = (command: 'pull' | 'push' | 'tag' | 'import', ...args: string[]) => run('ctr', [
      '-a', join(work, 'engine/exec/containerd/containerd.sock'), '-n', `e2e-${registry.enlil.port}`, 'images', command,
      ...(command === 'pull' || command === 'push' ? ['--plain-http'] : []),
      ...((command === 'pull' || command === 'push') && registry.credentials ? ['--user', `${registry.credentials.user}:${registry.credentials.password}`] : []),
      ...args,
    ], { timeout: 120_000 }).then((r) => r.stdout)
    const image = (repo: string) => `${registry.host}/${repo}`
    beforeAll(async () => {
      registry = await startRegistry(cell, 'e2e-docker-cell')
    })
    afterAll(() => registry?.stop())

    it('logs in (or needs no login)', async () => {
      await docker('tag', 'e2e/busybox:local', image('e2e/busybox:1'))
      if (!registry.credentials) return
      await expect(docker('push', image('e2e/busybox:1'))).rejects.toThrow(/unauthorized|authentication required|denied/i)
      await expect(engine.docker(['login', registry.host, '-u', registry.credentials.user, '--password-stdin'], { input: 'wrong\n' })).rejects.toThrow()
      const login = await engine.docker(['login', registry.host, '-u', registry.credentials.user, '--password-stdin'], { input: `${registry.credentials.password}\n` })
      expect(login.stdout).toContain('Login Succeeded')
    })

    it('pushes busybox, pulls it back and runs it', async () => {
      const pushed = await docker('push', image('e2e/busybox:1'))
      const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed)?.[1]
      expect(digest).toBeDefined()
      await docker('rmi', image('e2e/busybox:1'))
      expect(await docker('pull', image('e2e/busybox:1'))).toContain(digest)
      expect(await docker('run', '--rm', '--network', 'none', image('e2e/busybox:1'))).toBe(`${fixtures.greeting}\n`)
      expect((await docker('image', 'inspect', '--format', '{{index .RepoDigests 0}}', image('e2e/busybox:1'))).trim()).toBe(`${image('e2e/busybox')}@${digest}`)
    })

    it('builds an image on the pulled one, pushes it, pulls and runs it; manifest inspect', async () => {
      const context = join(registry.dir, 'build')
      mkdirSync(context, { recursive: true })
      writeFileSync(join(context, 'Dockerfile'), `FROM ${image('e2e/busybox:1')}\nRUN echo "built on ${cell.store}" > /etc/built\nCMD ["cat", "/etc/built"]\n`)
      await engine.docker(['build', '--network', 'none', '-t', image('e2e/built:1'), context], { env: { DOCKER_BUILDKIT: '0' } })
      const pushed = await docker('push', image('e2e/built:1'))
      expect(pushed).toMatch(/Layer already exists|Mounted from/)
      await docker('rmi', image('e2e/built:1'), image('e2e/busybox:1'))
      await docker('pull', image('e2e/built:1'))
      expect(await docker('run', '--rm', '--network', 'none', image('e2e/built:1'))).toBe(`built on ${cell.store}\n`)
      const manifest = JSON.parse(await docker('manifest', 'inspect', '--insecure', image('e2e/built:1'))) as { mediaType: string; layers: unknown[] }
      expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
      expect(manifest.layers).toHaveLength(2)
    })

    it('ctr pulls, pushes a copy into another repository, and docker runs the copy', async () => {
      await ctr('pull', image('e2e/built:1'))
      await ctr('tag', image('e2e/built:1'), image('ctr/copy:1'))
      const before = (await registry.storedBlobs()).sort()
      await ctr('push', image('ctr/copy:1'))
      // Every blob was mounted from e2e/built: nothing new is stored.
      expect((await registry.storedBlobs()).sort()).toEqual(before)
      await docker('pull', image('ctr/copy:1'))
      expect(await docker('run', '--rm', '--network', 'none', image('ctr/copy:1'))).toBe(`built on ${cell.store}\n`)
      await docker('rmi', image('ctr/copy:1'), image('e2e/built:1'))
    })

    it('ctr pushes new blobs (its single-PUT uploads) that docker pulls back', async () => {
      await ctr('import', join(work, 'layers.tar'))
      await ctr('tag', 'docker.io/e2e/layers:local', image('ctr/fresh:1'))
      await ctr('push', image('ctr/fresh:1'))
      const layers = (JSON.parse(fixtures.layout.read(fixtures.manyLayers.digest).toString()) as { layers: { digest: string }[] }).layers
      expect(await registry.storedBlobs()).toEqual(expect.arrayContaining(layers.map((l) => l.digest)))
      const pulled = await docker('pull', image('ctr/fresh:1'))
      const digest = /Digest: (sha256:[a-f0-9]{64})/.exec(pulled)?.[1]
      expect((await docker('image', 'inspect', '--format', '{{len .RootFS.Layers}} {{index .RepoDigests 0}}', image('ctr/fresh:1'))).trim()).toBe(`12 ${image('ctr/fresh')}@${digest}`)
      await docker('rmi', image('ctr/fresh:1'))
    })
  })
})
