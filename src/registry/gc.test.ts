import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { digestOf, type Digest } from '../oci/digest.js'
import { OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE } from '../oci/manifest.js'
import { createFilesystemDriver } from '../storage/filesystem.js'
import type { StorageDriver } from '../storage/driver.js'
import { collectGarbage, type GcItem, type GcOptions, referencesOf } from './gc.js'
import { createRegistry, type Registry } from './index.js'
import { BLOBS, paths } from './paths.js'

const HOUR = 3_600_000

describe('garbage collection (filesystem store)', () => {
  let root: string
  let driver: StorageDriver
  let registry: Registry
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'enlil-gc-unit-'))
    driver = createFilesystemDriver(root)
    registry = createRegistry(driver)
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))

  async function blob(repo: string, size = 1000): Promise<{ digest: Digest; size: number }> {
    const bytes = randomBytes(size)
    const digest = digestOf(bytes)
    await registry.uploads.putMonolithic(repo, digest, Readable.from([bytes]))
    return { digest, size }
  }

  async function image(repo: string, tag?: string, extra: Record<string, unknown> = {}) {
    const config = await blob(repo, 100)
    const layers = [await blob(repo, 2000), await blob(repo, 3000)]
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest.value, size: config.size },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest.value, size: l.size })),
      ...extra,
    }))
    const digest = digestOf(body)
    await registry.manifests.put(repo, tag ? { kind: 'tag', tag } : { kind: 'digest', digest }, body, OCI_MANIFEST_MEDIA_TYPE)
    return { digest, body, blobs: [config, ...layers] }
  }

  async function index(repo: string, tag: string | undefined, children: { digest: Digest; body: Buffer }[]) {
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE,
      manifests: children.map((c) => ({ mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: c.digest.value, size: c.body.length })),
    }))
    const digest = digestOf(body)
    await registry.manifests.put(repo, tag ? { kind: 'tag', tag } : { kind: 'digest', digest }, body, OCI_INDEX_MEDIA_TYPE)
    return { digest, body }
  }

  const exists = async (d: Digest) => (await driver.stat(paths.blobData(d))) !== undefined
  /** Everything in the store counts as old: the run "starts" two hours from now. */
  const later = () => new Date(Date.now() + 2 * HOUR)
  async function gc(options: Partial<GcOptions> = {}) {
    const items: GcItem[] = []
    // No push runs beside these runs: nothing to settle (gc-protocol.test.ts forces the races).
    const summary = await collectGarbage(driver, { graceMs: HOUR, now: later, onDelete: (i) => items.push(i), protocol: { settleMs: 0 }, ...options })
    return { summary, items }
  }

  it('deletes blobs no manifest references, keeps every referenced one, and frees their bytes', async () => {
    const kept = await image('app', 'v1')
    const orphan = await blob('app', 5000)
    const { summary, items } = await gc()
    expect(await exists(orphan.digest)).toBe(false)
    for (const b of kept.blobs) expect(await exists(b.digest)).toBe(true)
    expect(await exists(kept.digest)).toBe(true)
    expect(summary).toMatchObject({ repositories: 1, manifests: 1, blobsScanned: 5, blobsDeleted: 1, bytesFreed: 5000, layerLinksDeleted: 1 })
    expect(items).toContainEqual({ kind: 'blob', digest: orphan.digest.value, size: 5000 })
    // Its link in the repository went too: the blob is unknown there, not half-present.
    expect(await driver.stat(paths.layerLink('app', orphan.digest))).toBeUndefined()
    expect(await registry.blobs.stat('app', kept.blobs[1]!.digest)).toBeDefined()
  })

  it('a dry run reports what would go, with its size, and deletes nothing', async () => {
    await image('app', 'v1')
    const orphan = await blob('app', 4321)
    const { summary, items } = await gc({ dryRun: true })
    expect(summary).toMatchObject({ dryRun: true, blobsDeleted: 1, bytesFreed: 4321 })
    expect(items).toContainEqual({ kind: 'blob', digest: orphan.digest.value, size: 4321 })
    expect(await exists(orphan.digest)).toBe(true)
    expect(await driver.stat(paths.layerLink('app', orphan.digest))).toBeDefined()
  })

  it('never deletes a blob younger than the grace period', async () => {
    const orphan = await blob('app')
    const { summary } = await gc({ now: () => new Date() })
    expect(await exists(orphan.digest)).toBe(true)
    expect(summary).toMatchObject({ blobsDeleted: 0, blobsInGrace: 1 })
  })

  it('keeps untagged manifests and their blobs unless asked to delete them', async () => {
    const untagged = await image('app')
    await gc()
    for (const b of untagged.blobs) expect(await exists(b.digest)).toBe(true)

    const { summary, items } = await gc({ deleteUntagged: true })
    expect(items).toContainEqual({ kind: 'manifest', repo: 'app', digest: untagged.digest.value })
    expect(summary).toMatchObject({ manifestsDeleted: 1, blobsDeleted: 4 })
    for (const b of untagged.blobs) expect(await exists(b.digest)).toBe(false)
    expect(await registry.manifests.get('app', { kind: 'digest', digest: untagged.digest })).toBeUndefined()
  })

  it('delete-untagged leaves a manifest pushed within the grace period', async () => {
    const untagged = await image('app')
    await gc({ deleteUntagged: true, now: () => new Date() })
    expect(await registry.manifests.get('app', { kind: 'digest', digest: untagged.digest })).toBeDefined()
  })

  it('keeps the children of a tagged index, untagged as they are', async () => {
    const amd64 = await image('multi')
    const arm64 = await image('multi')
    const ix = await index('multi', 'latest', [amd64, arm64])
    const { summary } = await gc({ deleteUntagged: true })
    expect(summary.manifestsDeleted).toBe(0)
    expect(summary.blobsDeleted).toBe(0)
    for (const m of [amd64, arm64, ix]) expect(await registry.manifests.get('multi', { kind: 'digest', digest: m.digest })).toBeDefined()
    for (const b of [...amd64.blobs, ...arm64.blobs]) expect(await exists(b.digest)).toBe(true)
  })

  it('keeps referrers of a kept manifest and drops those of a deleted one', async () => {
    const subject = await image('signed', 'v1')
    const subjectDescriptor = { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: subject.digest.value, size: subject.body.length }
    const signature = await image('signed', undefined, { subject: subjectDescriptor, artifactType: 'application/example.signature' })
    const gone = await image('signed')
    const goneSignature = await image('signed', undefined, { subject: { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: gone.digest.value, size: gone.body.length } })

    const { summary } = await gc({ deleteUntagged: true })
    expect(summary.manifestsDeleted).toBe(2)
    expect(await registry.manifests.get('signed', { kind: 'digest', digest: signature.digest })).toBeDefined()
    for (const b of signature.blobs) expect(await exists(b.digest)).toBe(true)
    expect((await registry.manifests.referrers('signed', subject.digest)).descriptors.map((d) => d.digest)).toEqual([signature.digest.value])
    expect(await registry.manifests.get('signed', { kind: 'digest', digest: goneSignature.digest })).toBeUndefined()
    expect((await registry.manifests.referrers('signed', gone.digest)).descriptors).toEqual([])
    for (const b of [...gone.blobs, ...goneSignature.blobs]) expect(await exists(b.digest)).toBe(false)
  })

  it('a tagged referrer keeps its subject', async () => {
    const subject = await image('sig')
    await image('sig', 'sha256-signature', { subject: { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: subject.digest.value, size: subject.body.length } })
    const { summary } = await gc({ deleteUntagged: true })
    expect(summary.manifestsDeleted).toBe(0)
    expect(await registry.manifests.get('sig', { kind: 'digest', digest: subject.digest })).toBeDefined()
  })

  it('a blob shared with another repository stays while one of them uses it', async () => {
    const a = await image('a', 'v1')
    await registry.blobs.mount('a', 'b', a.blobs[1]!.digest)
    await gc()
    expect(await exists(a.blobs[1]!.digest)).toBe(true)
    expect(await registry.blobs.stat('b', a.blobs[1]!.digest)).toBeDefined()
  })

  it('applies retention before marking: expired tags go, and with delete-untagged their blobs too', async () => {
    const old = await image('ci', 'pr-1')
    const fresh = await image('ci', 'pr-2')
    const { utimes } = await import('node:fs/promises')
    const longAgo = new Date(Date.now() - 30 * 24 * HOUR)
    await utimes(join(root, paths.tagCurrentLink('ci', 'pr-1')), longAgo, longAgo)
    const retention = [{ repositories: 'ci', tags: 'pr-*', keep: [], olderthan: 14 * 24 * HOUR }]

    const dry = await gc({ dryRun: true, deleteUntagged: true, retention, now: () => new Date() })
    expect(dry.items).toContainEqual({ kind: 'tag', repo: 'ci', tag: 'pr-1', pushedAt: longAgo })
    expect(dry.summary).toMatchObject({ tagsDeleted: 1, manifestsDeleted: 0 })
    expect(await registry.manifests.tags('ci', {})).toEqual(['pr-1', 'pr-2'])

    const { summary } = await gc({ deleteUntagged: true, retention, now: () => new Date(Date.now() + 2 * HOUR) })
    expect(summary).toMatchObject({ tagsDeleted: 1, manifestsDeleted: 1, blobsDeleted: 4 })
    expect(await registry.manifests.tags('ci', {})).toEqual(['pr-2'])
    for (const b of old.blobs) expect(await exists(b.digest)).toBe(false)
    for (const b of fresh.blobs) expect(await exists(b.digest)).toBe(true)
  })

  it('retention skips the policies retentionApplies rules out for a repository, and the next matching one applies', async () => {
    await image('team', 'latest')
    await image('hub/x', 'latest')
    await image('hub/y', 'latest')
    const retention = [{ repositories: '/.+/', tags: 'latest', keep: [], keeplast: 0 }, { repositories: 'hub/y', keep: [], keeplast: 0 }]
    const { summary } = await gc({ retention, retentionApplies: (policy, repo) => !repo.startsWith('hub/') || policy.repositories.startsWith('hub/') })
    expect(summary.tagsDeleted).toBe(2)
    expect(await registry.manifests.tags('team', {})).toEqual([])
    expect(await registry.manifests.tags('hub/x', {})).toEqual(['latest'])
    expect(await registry.manifests.tags('hub/y', {})).toEqual([])
  })

  it('keeps what a manifest pushed during the run references', async () => {
    // The orphan is older than grace when the run starts; a push between marking and the blob
    // listing (the worst moment) makes it used again.
    const layer = await blob('late', 777)
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: layer.digest.value, size: layer.size },
      layers: [],
    }))
    let pushed = false
    const racing: StorageDriver = {
      ...driver,
      async list(path) {
        if (path === BLOBS && !pushed) {
          pushed = true
          await registry.manifests.put('late', { kind: 'tag', tag: 'v1' }, body, OCI_MANIFEST_MEDIA_TYPE)
        }
        return driver.list(path)
      },
    }
    const summary = await collectGarbage(racing, { graceMs: HOUR, now: later })
    expect(pushed).toBe(true)
    expect(summary.blobsDeleted).toBe(0)
    expect(await exists(layer.digest)).toBe(true)
    expect(await registry.blobs.stat('late', layer.digest)).toBeDefined()
  })
})

describe('referencesOf', () => {
  const d = (c: string) => `sha256:${c.repeat(64)}`
  it('reads images, indexes, subjects and Docker schema 1 layers; ignores what is not a digest', () => {
    expect(referencesOf(Buffer.from(JSON.stringify({ config: { digest: d('a') }, layers: [{ digest: d('b') }, { digest: 'nope' }], subject: { digest: d('c') } }))))
      .toEqual({ blobs: [d('a'), d('b')], manifests: [], subject: d('c') })
    expect(referencesOf(Buffer.from(JSON.stringify({ manifests: [{ digest: d('d') }] })))).toEqual({ blobs: [], manifests: [d('d')], subject: undefined })
    expect(referencesOf(Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [{ blobSum: d('e') }] })))).toMatchObject({ blobs: [d('e')] })
    expect(referencesOf(Buffer.from('not json'))).toEqual({ blobs: [], manifests: [] })
  })
})
