/** Abandoned upload sessions are purged after their age; live ones and stored blobs are untouched. */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/server/app.js'
import { silentLogger } from '../src/observe/log.js'
import { createRegistry } from '../src/registry/index.js'
import { createFilesystemDriver } from '../src/storage/filesystem.js'
import { randomBlob } from './support/oci-client.js'
import { removeDir, tempDir } from './support/processes.js'

const dirs: string[] = []
afterAll(() => dirs.forEach(removeDir))

describe('upload purging', () => {
  it('deletes sessions older than the cutoff, keeps newer ones and every blob', async () => {
    const root = tempDir('purge')
    dirs.push(root)
    const registry = createRegistry(createFilesystemDriver(root))
    const app = createApp({ registry, log: silentLogger })
    const start = async (repo: string) => {
      const res = await app.request(`http://localhost/v2/${repo}/blobs/uploads/`, { method: 'POST' })
      expect(res.status).toBe(202)
      return res.headers.get('docker-upload-uuid')!
    }
    const old = await start('purge/one')
    const fresh = await start('purge/two/deep')
    const blob = randomBlob(1000)
    expect((await app.request(`http://localhost/v2/purge/one/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes })).status).toBe(201)
    // The first session started a week and a day ago (startedat holds the time, as in distribution).
    const marker = join(root, 'docker/registry/v2/repositories/purge/one/_uploads', old, 'startedat')
    const aWeekAgo = new Date(Date.now() - 8 * 24 * 3600_000)
    writeFileSync(marker, aWeekAgo.toISOString())

    const purged = await registry.uploads.purge(registry.catalog.walk(), new Date(Date.now() - 7 * 24 * 3600_000))
    expect(purged).toBe(1)
    expect((await app.request(`http://localhost/v2/purge/one/blobs/uploads/${old}`)).status).toBe(404)
    expect((await app.request(`http://localhost/v2/purge/two/deep/blobs/uploads/${fresh}`)).status).toBe(204)
    expect((await app.request(`http://localhost/v2/purge/one/blobs/${blob.digest}`, { method: 'HEAD' })).status).toBe(200)
    expect(existsSync(marker)).toBe(false)
  })
})
