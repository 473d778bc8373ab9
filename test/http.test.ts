/**
 * enlil's own choices at the HTTP level, beyond what the black-box conformance suite checks:
 * strict reference checks, schema 1 refusal, deletion off, catalog paging, name and digest
 * validation, sha512, empty blobs, storage errors. Each flow runs twice, as h3 does: in process
 * (`app.request`) and through a real server (streams and HEAD behave differently there).
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/server/app.js'
import { loadConfig } from '../src/config/load.js'
import { silentLogger } from '../src/observe/log.js'
import { createRegistry } from '../src/registry/index.js'
import { serve, type RunningRegistry } from '../src/server/serve.js'
import { createFilesystemDriver } from '../src/storage/filesystem.js'
import { StorageUnavailableError, type StorageDriver } from '../src/storage/driver.js'
import { imageManifest, OCI_INDEX, OCI_MANIFEST, randomBlob } from './support/oci-client.js'
import { removeDir, tempDir } from './support/processes.js'

type Fetch = (path: string, init?: RequestInit) => Promise<Response>
const dirs: string[] = []
const servers: RunningRegistry[] = []
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()))
  dirs.forEach(removeDir)
})

/** Runs `body` against an in-process app and against a real server, each over a fresh folder. */
function describeBoth(name: string, body: (ctx: () => { fetch: Fetch; root: string }) => void, env: Record<string, string> = {}) {
  describe.each(['in-process', 'server'] as const)(`${name} (%s)`, (mode) => {
    const root = tempDir('http')
    dirs.push(root)
    let target: { fetch: Fetch; root: string } | undefined
    const ctx = () => {
      if (!target) throw new Error('not started')
      return target
    }
    it('starts', async () => {
      const config = loadConfig({
        REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
        REGISTRY_LOG_LEVEL: 'error', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true', ...env,
      })
      if (mode === 'server') {
        const running = await serve(config, silentLogger)
        servers.push(running)
        target = { root, fetch: (path, init) => fetch(`${running.url}${path}`, init) }
      } else {
        const app = createApp({ registry: createRegistry(createFilesystemDriver(root)), log: silentLogger, deleteEnabled: config.storage.delete.enabled })
        target = { root, fetch: async (path, init) => app.request(`http://localhost${path}`, init) }
      }
    })
    body(ctx)
  })
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] }
  expect(body.errors[0]!.message.length).toBeGreaterThan(5)
  return body.errors[0]!.code
}

async function pushBlob(f: Fetch, repo: string, bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<string> {
  const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
  const res = await f(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } })
  expect(res.status).toBe(201)
  return digest
}

describeBoth('manifests', (ctx) => {
  it('refuses a manifest whose layer or config is not in the repository, naming it', async () => {
    const { fetch: f } = ctx()
    const config = randomBlob(100)
    const layer = randomBlob(100)
    await pushBlob(f, 'strict/app', config.bytes)
    const res = await f('/v2/strict/app/manifests/v1', { method: 'PUT', body: imageManifest(config, [layer]), headers: { 'Content-Type': OCI_MANIFEST } })
    expect(res.status).toBe(400)
    const body = (await res.json()) as { errors: { code: string; message: string; detail: { digests: string[] } }[] }
    expect(body.errors[0]!.code).toBe('MANIFEST_BLOB_UNKNOWN')
    expect(body.errors[0]!.message).toContain(layer.digest)
    expect(body.errors[0]!.detail.digests).toEqual([layer.digest])
    // A blob pushed to another repository does not count.
    await pushBlob(f, 'strict/other', layer.bytes)
    expect((await f('/v2/strict/app/manifests/v1', { method: 'PUT', body: imageManifest(config, [layer]), headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(400)
    const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${'a'.repeat(64)}`, size: 10 }] })
    const ix = await f('/v2/strict/app/manifests/multi', { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } })
    expect(ix.status).toBe(400)
    expect(await errorCode(ix)).toBe('MANIFEST_BLOB_UNKNOWN')
  })

  it('refuses Docker schema 1 with a message that says what to push instead', async () => {
    const { fetch: f } = ctx()
    const res = await f('/v2/old/app/manifests/v1', {
      method: 'PUT', body: JSON.stringify({ schemaVersion: 1, name: 'old/app', tag: 'v1', fsLayers: [] }),
      headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
    })
    expect(res.status).toBe(400)
    const body = (await res.json()) as { errors: { code: string; message: string }[] }
    expect(body.errors[0]!.code).toBe('MANIFEST_INVALID')
    expect(body.errors[0]!.message).toMatch(/schema 1 .* not supported.*OCI or Docker schema 2/)
  })

  it('refuses a Content-Type that contradicts the manifest mediaType, and unknown media types', async () => {
    const { fetch: f } = ctx()
    const config = randomBlob(10)
    await pushBlob(f, 'types/app', config.bytes)
    const body = imageManifest(config, [])
    const wrong = await f('/v2/types/app/manifests/v1', { method: 'PUT', body, headers: { 'Content-Type': OCI_INDEX } })
    expect(wrong.status).toBe(400)
    expect(await errorCode(wrong)).toBe('MANIFEST_INVALID')
    const odd = JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-custom', config: {}, layers: [] })
    const unknown = await f('/v2/types/app/manifests/v2', { method: 'PUT', body: odd, headers: { 'Content-Type': 'application/x-custom' } })
    expect(unknown.status).toBe(400)
  })

  it('stores and serves Docker schema 2 manifests and manifest lists with their media types', async () => {
    const { fetch: f } = ctx()
    const config = randomBlob(50)
    const layer = randomBlob(500)
    await pushBlob(f, 'docker/app', config.bytes)
    await pushBlob(f, 'docker/app', layer.bytes)
    const manifest = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 50, digest: config.digest },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 500, digest: layer.digest }],
    }, null, 3)
    const put = await f('/v2/docker/app/manifests/v1', { method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' } })
    expect(put.status).toBe(201)
    const list = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: Buffer.byteLength(manifest), digest: put.headers.get('docker-content-digest'), platform: { architecture: 'amd64', os: 'linux' } }],
    })
    expect((await f('/v2/docker/app/manifests/list', { method: 'PUT', body: list, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.list.v2+json' } })).status).toBe(201)
    const got = await f('/v2/docker/app/manifests/list')
    expect(got.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.list.v2+json')
    expect(await got.text()).toBe(list)
    const head = await f('/v2/docker/app/manifests/v1', { method: 'HEAD' })
    expect(head.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(manifest)))
  })
})

describeBoth('names, digests and paths', (ctx) => {
  it('answers NAME_INVALID for names outside the grammar, before touching storage', async () => {
    const { fetch: f, root } = ctx()
    for (const name of ['Upper/case', 'a//b', 'trailing-/x', `${'a'.repeat(256)}`, 'a/_hidden']) {
      const res = await f(`/v2/${name}/blobs/uploads/`, { method: 'POST' })
      expect(res.status, name).toBe(400)
      expect(await errorCode(res)).toBe('NAME_INVALID')
    }
    for (const path of ['/v2/../../etc/blobs/uploads/', '/v2/a/%2e%2e/%2e%2e/b/tags/list', '/v2/..%2f..%2fetc/tags/list']) {
      const res = await f(path, { method: path.endsWith('/') ? 'POST' : 'GET' })
      expect(res.status, path).toBeGreaterThanOrEqual(400)
      expect(res.status, path).toBeLessThan(500)
    }
    const repositories = join(root, 'docker/registry/v2/repositories')
    expect(existsSync(repositories) ? readdirSync(repositories) : []).toEqual([])
  })

  it('answers DIGEST_INVALID for malformed or unsupported digests', async () => {
    const { fetch: f } = ctx()
    for (const digest of ['sha256:abc', 'md5:d41d8cd98f00b204e9800998ecf8427e', `sha256:${'G'.repeat(64)}`, 'nocolon']) {
      const res = await f(`/v2/d/app/blobs/${digest}`)
      expect(res.status, digest).toBe(digest === 'nocolon' ? 400 : 400)
      expect(await errorCode(res)).toBe('DIGEST_INVALID')
    }
  })

  it('accepts sha512 digests for blobs and manifests', async () => {
    const { fetch: f } = ctx()
    const bytes = randomBytes(2000)
    const digest = await pushBlob(f, 'sha/app', bytes, 'sha512')
    const got = await f(`/v2/sha/app/blobs/${digest}`)
    expect(got.headers.get('docker-content-digest')).toBe(digest)
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true)
    const wrong = await f(`/v2/sha/app/blobs/uploads/?digest=sha512:${'0'.repeat(128)}`, { method: 'POST', body: bytes })
    expect(wrong.status).toBe(400)
  })

  it('stores an empty blob', async () => {
    const { fetch: f } = ctx()
    const digest = await pushBlob(f, 'empty/app', Buffer.alloc(0))
    const post = await f('/v2/empty/app2/blobs/uploads/', { method: 'POST' })
    const location = new URL(post.headers.get('location')!).pathname
    expect((await f(`${location}?digest=${digest}`, { method: 'PUT' })).status).toBe(201)
    const head = await f(`/v2/empty/app2/blobs/${digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe('0')
  })
})

describeBoth('catalog', (ctx) => {
  it('lists repositories in order with n, last and a Link to the next page', async () => {
    const { fetch: f } = ctx()
    for (const repo of ['zeta/app', 'alpha', 'mid/deep/repo', 'beta/x']) await pushBlob(f, repo, randomBytes(10))
    const all = (await (await f('/v2/_catalog')).json()) as { repositories: string[] }
    expect(all.repositories).toEqual(['alpha', 'beta/x', 'mid/deep/repo', 'zeta/app'])
    const first = await f('/v2/_catalog?n=2')
    expect(((await first.json()) as { repositories: string[] }).repositories).toEqual(['alpha', 'beta/x'])
    const link = first.headers.get('link')!
    expect(link).toBe('</v2/_catalog?n=2&last=beta%2Fx>; rel="next"')
    const second = await f(link.slice(1, link.indexOf('>')))
    expect(((await second.json()) as { repositories: string[] }).repositories).toEqual(['mid/deep/repo', 'zeta/app'])
    expect(second.headers.get('link')).toBeNull()
    const bad = await f('/v2/_catalog?n=-1')
    expect(bad.status).toBe(400)
    expect(await errorCode(bad)).toBe('PAGINATION_NUMBER_INVALID')
  })
})

describeBoth('deletion disabled', (ctx) => {
  it('answers 405 UNSUPPORTED to blob and manifest deletes, saying how to enable them', async () => {
    const { fetch: f } = ctx()
    const digest = await pushBlob(f, 'keep/app', randomBytes(100))
    for (const path of [`/v2/keep/app/blobs/${digest}`, '/v2/keep/app/manifests/latest']) {
      const res = await f(path, { method: 'DELETE' })
      expect(res.status).toBe(405)
      const body = (await res.json()) as { errors: { code: string; message: string }[] }
      expect(body.errors[0]!.code).toBe('UNSUPPORTED')
      expect(body.errors[0]!.message).toContain('REGISTRY_STORAGE_DELETE_ENABLED')
    }
    expect((await f(`/v2/keep/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200)
  })
}, { REGISTRY_STORAGE_DELETE_ENABLED: 'false' })

describe('storage trouble', () => {
  it('a store that stays unavailable gives 503 UNAVAILABLE with Retry-After, not a 500', async () => {
    const down = new Proxy({} as StorageDriver, {
      get: (_t, prop) => (prop === 'name' ? 'down' : async () => { throw new StorageUnavailableError('SlowDown after retries') }),
    })
    const app = createApp({ registry: createRegistry(down), log: silentLogger })
    const res = await app.request('http://localhost/v2/any/app/manifests/latest')
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('5')
    expect(await errorCode(res)).toBe('UNAVAILABLE')
  })

  it('an unexpected failure is a 500 UNKNOWN with the request id and no internals', async () => {
    const broken = new Proxy({} as StorageDriver, {
      get: (_t, prop) => (prop === 'name' ? 'broken' : async () => { throw new Error('EIO: secret internal path /var/lib/x') }),
    })
    const app = createApp({ registry: createRegistry(broken), log: silentLogger })
    const res = await app.request('http://localhost/v2/any/app/tags/list', { headers: { 'X-Request-Id': 'req-42' } })
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(text).toContain('UNKNOWN')
    expect(text).toContain('req-42')
    expect(text).not.toContain('/var/lib/x')
  })
})

describe('health endpoints', () => {
  it('/healthz answers while the process runs; /readyz only while the store answers', async () => {
    const root = tempDir('health')
    dirs.push(root)
    const up = createApp({ registry: createRegistry(createFilesystemDriver(root)), log: silentLogger })
    expect((await up.request('http://localhost/healthz')).status).toBe(200)
    expect(await (await up.request('http://localhost/readyz')).json()).toEqual({ status: 'ready' })
    const down = new Proxy({} as StorageDriver, {
      get: (_t, prop) => (prop === 'name' ? 'down' : async () => { throw new StorageUnavailableError('no route to store') }),
    })
    const lost = createApp({ registry: createRegistry(down), log: silentLogger })
    expect((await lost.request('http://localhost/healthz')).status).toBe(200)
    const ready = await lost.request('http://localhost/readyz')
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { status: string }).status).toBe('unavailable')
  })
})
