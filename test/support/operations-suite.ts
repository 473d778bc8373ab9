/**
 * Read-only mode and quotas through the HTTP API, on any store: the same checks run on the
 * filesystem (test/operations.test.ts) and on S3 (test/s3-operations.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { createApp } from '../../src/server/app.js'
import { silentLogger } from '../../src/observe/log.js'
import { createRegistry, type RegistryOptions } from '../../src/registry/index.js'
import { paths } from '../../src/registry/paths.js'
import { setReadOnly } from '../../src/registry/readonly.js'
import type { StorageDriver } from '../../src/storage/driver.js'
import { type Blob, imageManifest, OCI_MANIFEST, randomBlob } from './oci-client.js'

const BASE = 'http://localhost'
const KiB = 1024

export function appOn(driver: StorageDriver, options: RegistryOptions = {}) {
  const registry = createRegistry(driver, { readOnlyCacheMs: 0, ...options })
  return { registry, app: createApp({ registry, log: silentLogger }) }
}

type App = ReturnType<typeof appOn>['app']

export async function pushMonolithic(app: App, repo: string, blob: Blob): Promise<Response> {
  return app.request(`${BASE}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST', body: blob.bytes, headers: { 'Content-Length': String(blob.bytes.length) },
  })
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] }
  return body.errors[0]!
}

export function describeOperations(name: string, makeDriver: () => StorageDriver, unique: () => string) {
  describe(`read-only mode (${name})`, () => {
    it('refuses every write with 405 UNSUPPORTED while the marker is set, on every instance; pulls go on', async () => {
      const driver = makeDriver()
      const repo = `${unique()}/app`
      const a = appOn(driver)
      const b = appOn(driver) // a second instance on the same store
      const layer = randomBlob(3000)
      const config = randomBlob(100)
      for (const blob of [layer, config]) expect((await pushMonolithic(a.app, repo, blob)).status).toBe(201)
      const manifest = imageManifest(config, [layer])
      expect((await a.app.request(`${BASE}/v2/${repo}/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(201)

      await setReadOnly(driver, true, 'moving to a new bucket')
      for (const { app } of [a, b]) {
        const post = await app.request(`${BASE}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
        expect(post.status).toBe(405)
        const err = await errorOf(post)
        expect(err.code).toBe('UNSUPPORTED')
        expect(err.message).toContain('read-only')
        expect(err.message).toContain('moving to a new bucket')
        expect((await app.request(`${BASE}/v2/${repo}/manifests/v2`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(405)
        expect((await app.request(`${BASE}/v2/${repo}/manifests/v1`, { method: 'DELETE' })).status).toBe(405)
        expect((await app.request(`${BASE}/v2/${repo}/blobs/${layer.digest}`, { method: 'DELETE' })).status).toBe(405)
        const pulled = await app.request(`${BASE}/v2/${repo}/manifests/v1`)
        expect(pulled.status).toBe(200)
        expect(await pulled.text()).toBe(manifest)
        const bytes = await app.request(`${BASE}/v2/${repo}/blobs/${layer.digest}`, { redirect: 'manual' })
        expect([200, 307]).toContain(bytes.status)
        if (bytes.status === 200) expect(Buffer.from(await bytes.arrayBuffer()).equals(layer.bytes)).toBe(true)
        expect((await app.request(`${BASE}/v2/${repo}/tags/list`)).status).toBe(200)
      }

      await setReadOnly(driver, false)
      expect((await b.app.request(`${BASE}/v2/${repo}/blobs/uploads/`, { method: 'POST' })).status).toBe(202)
      expect((await b.app.request(`${BASE}/v2/${repo}/manifests/v1`, { method: 'DELETE' })).status).toBe(202)
    })

    it('is read-only by configuration whatever the marker says', async () => {
      const { app } = appOn(makeDriver(), { readOnly: true })
      const res = await pushMonolithic(app, `${unique()}/x`, randomBlob(10))
      expect(res.status).toBe(405)
      expect((await errorOf(res)).message).toContain('storage.maintenance.readonly.enabled')
    })
  })

  describe(`quotas (${name})`, () => {
    it('refuses uploads past a repository quota with 507, cleans the session up, and keeps serving', async () => {
      const driver = makeDriver()
      const team = unique()
      const repo = `${team}/app`
      const { app } = appOn(driver, { quotas: { repositories: [{ match: `${team}/*`, limit: 100 * KiB }] } })
      const first = randomBlob(60 * KiB)
      expect((await pushMonolithic(app, repo, first)).status).toBe(201)

      // Known size: refused before a byte is read.
      const second = randomBlob(60 * KiB)
      const refused = await pushMonolithic(app, repo, second)
      expect(refused.status).toBe(507)
      const err = await errorOf(refused)
      expect(err.code).toBe('DENIED')
      expect(err.message).toContain('quota exceeded')
      expect(err.message).toContain(`${team}/*`)
      expect(err.message).toContain('100.0 KiB')

      // Streamed: cut at the PATCH once the stored bytes pass the limit; the session is gone.
      const post = await app.request(`${BASE}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
      expect(post.status).toBe(202)
      const location = post.headers.get('location')!
      const patch = await app.request(location, { method: 'PATCH', body: second.bytes, headers: { 'Content-Type': 'application/octet-stream' } })
      expect(patch.status).toBe(507)
      expect((await errorOf(patch)).code).toBe('DENIED')
      expect((await app.request(location)).status).toBe(404)
      expect(await driver.list(paths.uploads(repo))).toEqual([])

      // What was stored is intact; other repositories are not limited by this quota.
      const pulled = await app.request(`${BASE}/v2/${repo}/blobs/${first.digest}`, { redirect: 'manual' })
      expect([200, 307]).toContain(pulled.status)
      if (pulled.status === 200) expect(Buffer.from(await pulled.arrayBuffer()).equals(first.bytes)).toBe(true)
      expect((await pushMonolithic(app, `${unique()}/free`, second)).status).toBe(201)

      // Deleting frees the repository's share: the push now fits.
      expect((await app.request(`${BASE}/v2/${repo}/blobs/${first.digest}`, { method: 'DELETE' })).status).toBe(202)
      expect((await pushMonolithic(app, repo, second)).status).toBe(201)
    })

    it('refuses new bytes past the total quota, and mounts past a repository quota', async () => {
      const driver = makeDriver()
      const prefix = unique()
      const used = await driver.usage('docker/registry/v2/blobs')
      const { app } = appOn(driver, { quotas: { total: used + 50 * KiB, repositories: [{ match: `${prefix}/small`, limit: 10 * KiB }] } })
      const big = randomBlob(40 * KiB)
      expect((await pushMonolithic(app, `${prefix}/a`, big)).status).toBe(201)
      const more = randomBlob(20 * KiB)
      const res = await pushMonolithic(app, `${prefix}/b`, more)
      expect(res.status).toBe(507)
      expect((await errorOf(res)).message).toContain('total quota')
      // Already stored bytes don't count against the total: pushing the same blob elsewhere works.
      expect((await pushMonolithic(app, `${prefix}/b`, big)).status).toBe(201)
      // ...but a mount into a repository over its own quota is refused.
      const mount = await app.request(`${BASE}/v2/${prefix}/small/blobs/uploads/?mount=${big.digest}&from=${prefix}/a`, { method: 'POST' })
      expect(mount.status).toBe(507)
      expect((await app.request(`${BASE}/v2/${prefix}/small/blobs/${big.digest}`, { method: 'HEAD' })).status).toBe(404)
    })
  })
}
