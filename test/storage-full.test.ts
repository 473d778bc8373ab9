/**
 * A full disk: a size-limited tmpfs as the store. Pushes until ENOSPC get a clear 507, the failed
 * upload leaves nothing behind, earlier images still pull byte for byte, and once space is freed
 * pushes work again. Needs root (mount); skipped with the reason otherwise, failed under CI=true.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFilesystemDriver } from '../src/storage/filesystem.js'
import { paths } from '../src/registry/paths.js'
import { parseDigest } from '../src/oci/digest.js'
import { appOn, pushMonolithic } from './support/operations-suite.js'
import { imageManifest, OCI_MANIFEST, randomBlob, type Blob } from './support/oci-client.js'
import { removeDir, requirePart, tempDir } from './support/processes.js'

const MiB = 1024 * 1024
const dir = tempDir('full')
let mounted = false
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', dir], { stdio: 'pipe' })
  mounted = true
} catch (err) {
  console.warn(`cannot mount a tmpfs (${(err as Error).message.split('\n')[0]})`)
}
const runs = requirePart(mounted, 'a mountable size-limited tmpfs (root)', 'run the tests as root')

afterAll(() => {
  if (mounted) execFileSync('umount', [dir])
  removeDir(dir)
})

describe.runIf(runs)('storage full (20 MiB tmpfs)', () => {
  const driver = createFilesystemDriver(dir)
  const { app } = appOn(driver)
  const repo = 'full/app'
  const pushed: Blob[] = []
  let manifest = ''

  beforeAll(async () => {
    const config = randomBlob(200)
    const layer = randomBlob(2 * MiB)
    for (const b of [config, layer]) expect((await pushMonolithic(app, repo, b)).status).toBe(201)
    pushed.push(config, layer)
    manifest = imageManifest(config, [layer])
    expect((await app.request(`http://localhost/v2/${repo}/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(201)
  })

  const uploadsLeft = () => readdirSync(join(dir, paths.uploads(repo)), { withFileTypes: true }).length

  it('answers a chunked push that fills the disk with 507 and cleans the upload up', async () => {
    // 3 MiB blobs until the disk is full: at most 7 fit in 20 MiB.
    let refused: Response | undefined
    for (let i = 0; i < 10 && !refused; i++) {
      const blob = randomBlob(3 * MiB)
      const post = await app.request(`http://localhost/v2/${repo}/blobs/uploads/`, { method: 'POST' })
      expect(post.status).toBe(202)
      const location = post.headers.get('location')!
      const patch = await app.request(location, { method: 'PATCH', body: blob.bytes, headers: { 'Content-Type': 'application/octet-stream' } })
      if (patch.status !== 202) {
        refused = patch
        expect((await app.request(location)).status).toBe(404)
        break
      }
      const put = await app.request(`${location}${location.includes('?') ? '&' : '?'}digest=${blob.digest}`, { method: 'PUT' })
      expect(put.status).toBe(201)
      pushed.push(blob)
    }
    expect(refused?.status).toBe(507)
    const body = (await refused!.json()) as { errors: { code: string; message: string }[] }
    expect(body.errors[0]!.code).toBe('DENIED')
    expect(body.errors[0]!.message).toContain('storage is full')
    expect(uploadsLeft()).toBe(0)
  })

  it('answers a monolithic push that does not fit with 507, leaving nothing behind', async () => {
    const res = await pushMonolithic(app, repo, randomBlob(6 * MiB))
    expect(res.status).toBe(507)
    expect(uploadsLeft()).toBe(0)
  })

  it('still serves everything stored before, byte for byte', async () => {
    const m = await app.request(`http://localhost/v2/${repo}/manifests/v1`)
    expect(await m.text()).toBe(manifest)
    for (const blob of pushed) {
      const res = await app.request(`http://localhost/v2/${repo}/blobs/${blob.digest}`)
      expect(res.status).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(blob.bytes)).toBe(true)
    }
  })

  it('accepts pushes again once space is freed', async () => {
    // What garbage collection does after a delete: the unlinked blob's bytes go.
    const victim = pushed.pop()!
    expect((await app.request(`http://localhost/v2/${repo}/blobs/${victim.digest}`, { method: 'DELETE' })).status).toBe(202)
    rmSync(join(dir, paths.blobData(parseDigest(victim.digest))))
    const again = randomBlob(2 * MiB)
    expect((await pushMonolithic(app, repo, again)).status).toBe(201)
    const res = await app.request(`http://localhost/v2/${repo}/blobs/${again.digest}`)
    expect(Buffer.from(await res.arrayBuffer()).equals(again.bytes)).toBe(true)
  })
})
