/**
 * containerd's ctr (from Debian's docker.io) against enlil: pull with --plain-http, push into another
 * repository (a cross-repo mount) and into an empty registry (ctr's own upload requests).
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Dockerd, DOCKERD, startDockerd } from './support/dockerd.js'
import { sha256 } from './support/oci-client.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from './support/processes.js'

const run = promisify(execFile)
const available = requirePart(existsSync(DOCKERD) && existsSync('/usr/bin/ctr'), 'containerd\'s ctr and dockerd', 'apt-get install --no-install-recommends docker.io')

describe.skipIf(!available)('ctr', () => {
  let dir: string
  let first: Running
  let second: Running
  let engine: Dockerd
  const ctr = (...args: string[]) => run('ctr', ['-a', join(dir, 'engine/exec/containerd/containerd.sock'), '-n', 'enlil-tests', ...args], { timeout: 60_000 })
  beforeAll(async () => {
    dir = tempDir('ctr')
    first = await startEnlil(join(dir, 'one'))
    second = await startEnlil(join(dir, 'two'))
    engine = await startDockerd(join(dir, 'engine'))
    writeFileSync(join(dir, 'file.txt'), `ctr test ${Date.now()}\n`)
    execFileSync('tar', ['-cf', join(dir, 'rootfs.tar'), '-C', dir, 'file.txt'])
    const host = new URL(first.url).host
    await engine.docker(['import', join(dir, 'rootfs.tar'), `${host}/ctr/app:v1`])
    await engine.docker(['push', `${host}/ctr/app:v1`])
  }, 120_000)
  afterAll(async () => {
    await engine?.stop()
    await Promise.all([first?.stop(), second?.stop()])
    removeDir(dir)
  }, 60_000)

  it('pulls, pushes with a cross-repository mount, and pushes into an empty registry', async () => {
    const one = new URL(first.url).host
    const two = new URL(second.url).host
    await ctr('images', 'pull', '--plain-http', `${one}/ctr/app:v1`)
    await ctr('images', 'tag', `${one}/ctr/app:v1`, `${one}/ctr/copy:v2`, `${two}/fresh/app:v3`)
    await ctr('images', 'push', '--plain-http', `${one}/ctr/copy:v2`)
    await ctr('images', 'push', '--plain-http', `${two}/fresh/app:v3`)
    for (const [base, repo, tag] of [[first.url, 'ctr/copy', 'v2'], [second.url, 'fresh/app', 'v3']] as const) {
      const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } })
      expect(res.status).toBe(200)
      const manifest = (await res.json()) as { config: { digest: string }; layers: { digest: string }[] }
      for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        const blob = await fetch(`${base}/v2/${repo}/blobs/${digest}`)
        expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(digest)
      }
    }
  }, 120_000)
})
