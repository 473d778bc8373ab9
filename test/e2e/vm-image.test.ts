/**
 * VM images pushed the way geranos pushes them (macOS VM disks as OCI artifacts), in every cell of
 * the matrix: the disk is cut into fixed-size segments, each a layer with a custom media type and
 * `filename`/`range` annotations; 8 workers push them concurrently (HEAD, POST with a mount, one
 * streamed PATCH, PUT), zero segments repeat (so identical blobs race each other), and the manifest
 * runs to hundreds of KiB. The image is then pulled back by 8 workers and reassembled byte-identical;
 * a second version with a few changed segments, pushed to another repository, stores only those.
 *
 * Size: ENLIL_E2E_VM_SEGMENTS (default 400) segments of ENLIL_E2E_VM_SEGMENT_KIB KiB (default 32).
 * geranos uses 64 MiB segments: ENLIL_E2E_VM_SEGMENTS=64 ENLIL_E2E_VM_SEGMENT_KIB=65536 is a 4 GiB disk.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, tempDir } from '../support/processes.js'
import { RegistryClient, scopes } from './client.js'
import { type Registry, runnableCells, startRegistry } from './registry.js'

const SEGMENTS = Number(process.env.ENLIL_E2E_VM_SEGMENTS ?? 400)
const SEGMENT = Number(process.env.ENLIL_E2E_VM_SEGMENT_KIB ?? 32) * 1024
const WORKERS = 8
const SEGMENT_TYPE = 'application/vnd.enlil.test.vm.disk.segment.v1'
const CONFIG_TYPE = 'application/vnd.enlil.test.vm.config.v1+json'
const ARTIFACT_TYPE = 'application/vnd.enlil.test.vm.v1'

interface Segment { index: number; digest: string; start: number; size: number }

/** Writes a sparse-looking disk: every third segment is zeros, the rest random. */
async function writeDisk(file: string): Promise<void> {
  const out = createWriteStream(file)
  const zeros = Buffer.alloc(Math.min(SEGMENT, 1 << 20))
  for (let i = 0; i < SEGMENTS; i++) {
    for (let done = 0; done < SEGMENT; done += zeros.length) {
      const n = Math.min(zeros.length, SEGMENT - done)
      if (!out.write(i % 3 === 1 ? zeros.subarray(0, n) : randomBytes(n))) await once(out, 'drain')
    }
  }
  out.end()
  await once(out, 'finish')
}

async function digestOf(file: string, start = 0, size?: number): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file, size === undefined ? { start } : { start, end: start + size - 1 }), hash)
  return `sha256:${hash.digest('hex')}`
}

async function segmentsOf(file: string): Promise<Segment[]> {
  const segments: Segment[] = []
  for (let i = 0; i < SEGMENTS; i++) segments.push({ index: i, start: i * SEGMENT, size: SEGMENT, digest: await digestOf(file, i * SEGMENT, SEGMENT) })
  return segments
}

/** Runs `task` over `items` with `WORKERS` in flight. */
async function inParallel<T>(items: T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    while (next < items.length) await task(items[next++]!)
  }))
}

async function expectStatus(res: Response, status: number, what: string): Promise<Response> {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${await res.text()}`)
  return res
}

interface PushStats { skipped: number; mounted: number; uploaded: number; manifestBytes: number; manifestDigest: string }

/** geranos' push: per segment HEAD, else POST (mount from `from`), streamed PATCH, PUT; then the manifest. */
async function pushDisk(client: RegistryClient, repo: string, tag: string, file: string, segments: Segment[], from: string): Promise<PushStats> {
  const stats = { skipped: 0, mounted: 0, uploaded: 0 }
  const scope = scopes(repo).push
  await client.warm(repo, 'pull,push')
  await inParallel(segments, async (s) => {
    const head = await client.fetch(`/v2/${repo}/blobs/${s.digest}`, { method: 'HEAD', scope })
    if (head.status === 200) return void stats.skipped++
    const post = await client.fetch(`/v2/${repo}/blobs/uploads/?mount=${s.digest}&from=${encodeURIComponent(from)}`, { method: 'POST', scope: `${scope} repository:${from}:pull` })
    if (post.status === 201) return void stats.mounted++
    await expectStatus(post, 202, 'POST upload')
    const patch = await expectStatus(await client.fetch(post.headers.get('location')!, {
      method: 'PATCH', scope, headers: { 'Content-Type': 'application/octet-stream' },
      body: createReadStream(file, { start: s.start, end: s.start + s.size - 1 }) as unknown as BodyInit,
    }), 202, 'PATCH')
    const location = new URL(patch.headers.get('location')!, client.base)
    location.searchParams.set('digest', s.digest)
    await expectStatus(await client.fetch(location.toString(), { method: 'PUT', scope }), 201, 'PUT upload')
    stats.uploaded++
  })
  const config = Buffer.from(JSON.stringify({ os: 'darwin', diskSize: SEGMENTS * SEGMENT, segmentSize: SEGMENT }))
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
  const configUpload = await client.fetch(`/v2/${repo}/blobs/uploads/?digest=${configDigest}`, { method: 'POST', scope, body: config, headers: { 'Content-Type': 'application/octet-stream' } })
  await expectStatus(configUpload, 201, 'config upload')
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: ARTIFACT_TYPE,
    config: { mediaType: CONFIG_TYPE, digest: configDigest, size: config.length },
    layers: segments.map((s) => ({
      mediaType: SEGMENT_TYPE, digest: s.digest, size: s.size,
      annotations: {
        'org.opencontainers.image.title': 'disk.img',
        'vm.enlil.test.filename': 'disk.img',
        'vm.enlil.test.range': `bytes=${s.start}-${s.start + s.size - 1}`,
        'vm.enlil.test.segment': `${s.index}/${SEGMENTS}`,
      },
    })),
    annotations: { 'org.opencontainers.image.created': new Date().toISOString(), 'vm.enlil.test.disk': 'disk.img' },
  }))
  const put = await expectStatus(await client.fetch(`/v2/${repo}/manifests/${tag}`, {
    method: 'PUT', scope, body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  }), 201, 'PUT manifest')
  return { ...stats, manifestBytes: manifest.length, manifestDigest: put.headers.get('docker-content-digest')! }
}

/** geranos' pull: the manifest, then every segment written at its range into the disk file. */
async function pullDisk(client: RegistryClient, repo: string, tag: string, file: string): Promise<void> {
  const scope = scopes(repo).pull
  const res = await expectStatus(await client.fetch(`/v2/${repo}/manifests/${tag}`, { scope, headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } }), 200, 'GET manifest')
  const manifest = (await res.json()) as { layers: { digest: string; annotations: Record<string, string> }[] }
  const disk = await open(file, 'w')
  try {
    await inParallel(manifest.layers, async (layer) => {
      const [, start] = /^bytes=(\d+)-(\d+)$/.exec(layer.annotations['vm.enlil.test.range']!)!.map(Number)
      const blob = await expectStatus(await client.fetch(`/v2/${repo}/blobs/${layer.digest}`, { scope }), 200, 'GET blob')
      let position = start!
      for await (const chunk of blob.body as unknown as AsyncIterable<Uint8Array>) {
        await disk.write(chunk, 0, chunk.length, position)
        position += chunk.length
      }
    })
  } finally {
    await disk.close()
  }
}

describe('VM images pushed like geranos', () => {
  let work: string
  let disk: string
  let segments: Segment[]
  let diskDigest: string
  let changed: string
  let changedSegments: Segment[]
  beforeAll(async () => {
    work = tempDir('e2e-vm')
    disk = join(work, 'disk.img')
    await writeDisk(disk)
    segments = await segmentsOf(disk)
    diskDigest = await digestOf(disk)
    // Version 2: three random segments rewritten in a copy.
    changed = join(work, 'disk-v2.img')
    await pipeline(createReadStream(disk), createWriteStream(changed))
    const handle = await open(changed, 'r+')
    for (const i of [0, Math.floor(SEGMENTS / 2), SEGMENTS - 1]) await handle.write(randomBytes(SEGMENT), 0, SEGMENT, i * SEGMENT)
    await handle.close()
    changedSegments = await segmentsOf(changed)
  }, 600_000)
  afterAll(() => removeDir(work))

  describe.each(runnableCells())('$store, auth $auth', (cell) => {
    let registry: Registry
    let client: RegistryClient
    beforeAll(async () => {
      registry = await startRegistry(cell, 'e2e-vm-cell')
      client = new RegistryClient(registry.url, registry.credentials)
    })
    afterAll(() => registry?.stop())

    it('pushes with 8 workers and pulls back a byte-identical disk', async () => {
      const unique = new Set(segments.map((s) => s.digest)).size
      const stats = await pushDisk(client, 'vm/macos', 'v1', disk, segments, 'vm/base')
      // Zero segments repeat: workers either found them (HEAD) or uploaded them concurrently.
      expect(stats.uploaded + stats.skipped).toBe(SEGMENTS)
      expect(stats.uploaded).toBeGreaterThanOrEqual(unique)
      expect(stats.manifestBytes).toBeGreaterThan(SEGMENTS * 250)
      const stored = await registry.storedBlobs()
      expect(stored).toHaveLength(unique + 2) // the segments once each, the config, the manifest
      const pulled = join(registry.dir, 'pulled.img')
      await pullDisk(client, 'vm/macos', 'v1', pulled)
      expect(await digestOf(pulled)).toBe(diskDigest)
      console.log(`VM image (${cell.store}, auth ${cell.auth}): ${SEGMENTS} segments of ${SEGMENT / 1024} KiB, manifest ${(stats.manifestBytes / 1024).toFixed(0)} KiB, ${stats.uploaded} uploads (${stats.skipped} found by HEAD)`)
    }, 600_000)

    it('a second version in another repository mounts the unchanged segments and stores only the changed ones', async () => {
      const before = new Set(await registry.storedBlobs())
      const stats = await pushDisk(client, 'vm/macos-next', 'v2', changed, changedSegments, 'vm/macos')
      const fresh = new Set(changedSegments.map((s) => s.digest).filter((d) => !before.has(d)))
      expect(stats.uploaded).toBe(fresh.size)
      expect(stats.mounted + stats.skipped).toBe(SEGMENTS - fresh.size)
      const after = await registry.storedBlobs()
      expect(after.length - before.size).toBe(fresh.size + 1) // and the new manifest
      const pulled = join(registry.dir, 'pulled-v2.img')
      await pullDisk(client, 'vm/macos-next', 'v2', pulled)
      expect(await digestOf(pulled)).toBe(await digestOf(changed))
      expect((await stat(pulled)).size).toBe(SEGMENTS * SEGMENT)
    }, 600_000)
  })
})
