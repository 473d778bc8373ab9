/**
 * The filesystem layout is distribution's: a folder Debian's docker-registry (distribution 2.8) filled
 * is served by enlil unchanged, and the other way round.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { imageManifest, OCI_MANIFEST, pushBlobChunked, putManifest, randomBlob } from './support/oci-client.js'
import { expectServed, pushImages } from './support/images.js'
import { DOCKER_REGISTRY, removeDir, requirePart, type Running, startDistribution, startEnlil, tempDir } from './support/processes.js'

const available = requirePart(existsSync(DOCKER_REGISTRY), 'docker-registry (distribution 2.8)', 'apt-get install docker-registry')

describe.skipIf(!available)('storage layout compatible with distribution 2.8', () => {
  const dirs: string[] = []
  const running: Running[] = []
  let configDir: string
  beforeAll(() => {
    configDir = tempDir('compat-config')
    dirs.push(configDir)
  })
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()))
    dirs.forEach(removeDir)
  })
  const track = (r: Running) => (running.push(r), r)

  it('enlil serves a folder that docker-registry filled', async () => {
    const root = tempDir('compat-a')
    dirs.push(root)
    const distribution = track(await startDistribution(root, configDir))
    const pushed = await pushImages(distribution.url, 'compat/from-distribution')
    await distribution.stop()

    const enlil = track(await startEnlil(root))
    await expectServed(enlil.url, pushed)
    // And keeps working on it: a new tag on the same content, a delete by tag.
    await putManifest(enlil.url, pushed.repo, 'again', pushed.manifests[0]!.body, OCI_MANIFEST)
    expect((await fetch(`${enlil.url}/v2/${pushed.repo}/manifests/again`, { method: 'DELETE' })).status).toBe(202)
    await enlil.stop()
  })

  it('docker-registry serves a folder that enlil filled', async () => {
    const root = tempDir('compat-b')
    dirs.push(root)
    const enlil = track(await startEnlil(root))
    const pushed = await pushImages(enlil.url, 'compat/from-enlil')
    // A cross-repository mount is a link too.
    const mount = await fetch(`${enlil.url}/v2/compat/mounted/blobs/uploads/?mount=${pushed.layers[0]!.digest}&from=${pushed.repo}`, { method: 'POST' })
    expect(mount.status).toBe(201)
    await enlil.stop()

    const distribution = track(await startDistribution(root, configDir))
    await expectServed(distribution.url, pushed)
    const mounted = await fetch(`${distribution.url}/v2/compat/mounted/blobs/${pushed.layers[0]!.digest}`, { method: 'HEAD' })
    expect(mounted.status).toBe(200)
    await distribution.stop()
  })

  // enlil doesn't write a tag's history (tags/<tag>/index/), which distribution writes but never reads:
  // its garbage collector, the one place that touches it, must still work on a folder enlil filled.
  it("docker-registry's garbage collector cleans a folder that enlil filled", async () => {
    const root = tempDir('compat-gc')
    dirs.push(root)
    const enlil = track(await startEnlil(root))
    const repo = 'compat/gc'
    const config = randomBlob(300)
    const [oldLayer, newLayer] = [randomBlob(50_000), randomBlob(60_000)]
    for (const blob of [config, oldLayer, newLayer]) await pushBlobChunked(enlil.url, repo, blob)
    const oldDigest = await putManifest(enlil.url, repo, 'latest', imageManifest(config, [oldLayer]), OCI_MANIFEST)
    const newDigest = await putManifest(enlil.url, repo, 'latest', imageManifest(config, [newLayer]), OCI_MANIFEST)
    await enlil.stop()

    const distribution = track(await startDistribution(root, configDir))
    await distribution.stop()
    const gc = await promisify(execFile)(DOCKER_REGISTRY, ['garbage-collect', '--delete-untagged', join(configDir, `distribution-${distribution.port}.yml`)])
    expect(gc.stdout).toContain(`${repo}: marking manifest ${newDigest}`)
    expect(gc.stdout).toContain(`manifest eligible for deletion: ${oldDigest}`)
    expect(gc.stdout).toContain(`blob eligible for deletion: ${oldLayer.digest}`)

    const after = track(await startDistribution(root, configDir))
    expect((await fetch(`${after.url}/v2/${repo}/manifests/${oldDigest}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).status).toBe(404)
    expect((await fetch(`${after.url}/v2/${repo}/manifests/latest`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).headers.get('docker-content-digest')).toBe(newDigest)
    expect((await fetch(`${after.url}/v2/${repo}/blobs/${newLayer.digest}`, { method: 'HEAD' })).status).toBe(200)
    expect((await fetch(`${after.url}/v2/${repo}/blobs/${oldLayer.digest}`, { method: 'HEAD' })).status).toBe(404)
    await after.stop()
  })
})
