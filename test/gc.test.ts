/**
 * `enlil gc` on the filesystem store, beside a serving enlil; and on a folder Debian's docker-registry
 * (distribution 2.8) filled, which must still be served in full afterwards.
 */
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectServed, pushImages } from './support/images.js'
import { gcScenarios, type GcTarget, runGc } from './support/gc-scenarios.js'
import { imageManifest, OCI_MANIFEST, pushBlobChunked, putManifest, randomBlob } from './support/oci-client.js'
import { DOCKER_REGISTRY, removeDir, requirePart, type Running, startDistribution, startEnlil, tempDir } from './support/processes.js'

describe('enlil gc on the filesystem store', () => {
  let root: string
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    root = tempDir('gc-fs')
    dir = tempDir('gc-fs-config')
    enlil = await startEnlil(root)
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(root)
    removeDir(dir)
  })
  gcScenarios((): GcTarget => ({ url: enlil.url, dir, env: { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root } }))
})

const distribution = requirePart(existsSync(DOCKER_REGISTRY), 'docker-registry (distribution 2.8)', 'apt-get install docker-registry')

describe.skipIf(!distribution)('enlil gc on a folder distribution 2.8 filled', () => {
  const dirs: string[] = []
  const running: Running[] = []
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()))
    dirs.forEach(removeDir)
  })

  it('collects what distribution left unreferenced; everything tagged is still pullable', async () => {
    const root = tempDir('gc-dist')
    const configDir = tempDir('gc-dist-config')
    dirs.push(root, configDir)
    const registry = await startDistribution(root, configDir)
    running.push(registry)
    const pushed = await pushImages(registry.url, 'legacy/app')
    const orphan = randomBlob(9999)
    await pushBlobChunked(registry.url, 'legacy/app', orphan)
    // An image deleted the way distribution users do: by digest, leaving its blobs behind.
    const doomed = await pushImages(registry.url, 'legacy/old')
    for (const m of doomed.manifests) {
      expect((await fetch(`${registry.url}/v2/legacy/old/manifests/${m.digest}`, { method: 'DELETE' })).status).toBe(202)
    }
    await registry.stop()

    const target: GcTarget = { url: '', dir: configDir, env: { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root } }
    const run = await runGc(target, ['--grace', '0s'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain(`deleting blob ${orphan.digest} (9999 bytes)`)
    for (const b of [doomed.config, ...doomed.layers]) expect(run.stdout).toContain(`deleting blob ${b.digest}`)
    for (const m of doomed.manifests) expect(run.stdout).toContain(`deleting blob ${m.digest}`)
    for (const b of [pushed.config, ...pushed.layers]) expect(run.stdout).not.toContain(b.digest)

    // Both registries still serve everything that was tagged.
    const enlil = await startEnlil(root)
    running.push(enlil)
    await expectServed(enlil.url, pushed)
    expect((await fetch(`${enlil.url}/v2/legacy/app/blobs/${orphan.digest}`, { method: 'HEAD' })).status).toBe(404)
    await enlil.stop()
    const again = await startDistribution(root, configDir)
    running.push(again)
    await expectServed(again.url, pushed)
  })
})

describe('gc.schedule.interval: enlil serve collects by itself', () => {
  let root: string
  let enlil: Running
  afterAll(async () => {
    await enlil?.stop()
    removeDir(root)
  })

  it('an unreferenced blob goes within a few intervals; a tagged image stays', async () => {
    root = tempDir('gc-schedule')
    enlil = await startEnlil(root, { ENLIL_GC_SCHEDULE_INTERVAL: '500ms', ENLIL_GC_GRACE: '0s', ENLIL_METRICS_PUBLIC: 'true' })
    const config = randomBlob(100)
    const layer = randomBlob(5000)
    for (const b of [config, layer]) await pushBlobChunked(enlil.url, 'sched/app', b)
    await putManifest(enlil.url, 'sched/app', 'v1', imageManifest(config, [layer]), OCI_MANIFEST)
    const orphan = randomBlob(3000)
    await pushBlobChunked(enlil.url, 'sched/app', orphan)
    // Polled with GET: a HEAD is a push asking whether to upload, and a yes keeps the blob.
    let status = 200
    for (let i = 0; i < 120 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 250))
      const res = await fetch(`${enlil.url}/v2/sched/app/blobs/${orphan.digest}`)
      await res.arrayBuffer()
      status = res.status
    }
    expect(status).toBe(404)
    for (const b of [config, layer]) expect((await fetch(`${enlil.url}/v2/sched/app/blobs/${b.digest}`, { method: 'HEAD' })).status).toBe(200)
    // The runs and what they freed are in the metrics (at least the orphan's bytes).
    const text = await (await fetch(`${enlil.url}/metrics`)).text()
    expect(Number(/^enlil_gc_runs_total\{outcome="ok"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1)
    expect(Number(/^enlil_gc_bytes_freed_total (\d+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(3000)
  })
})
