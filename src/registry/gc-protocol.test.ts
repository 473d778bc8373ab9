/**
 * The protocol between garbage collection and pushes (gc-protocol.ts), each interleaving forced
 * with GC's hooks and gates on the store, never with sleeps: a push that re-uses an old,
 * unreferenced blob (HEAD and skip, mount, upload of bytes already there, a manifest naming it)
 * before, during and after each step of a run, and what the run and the push then see.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Digest, digestOf } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import { OCI_MANIFEST_MEDIA_TYPE } from '../oci/manifest.js'
import type { StorageDriver } from '../storage/driver.js'
import { createFilesystemDriver } from '../storage/filesystem.js'
import { collectGarbage, type GcHooks, type GcOptions } from './gc.js'
import { CLOCK_SKEW_MS, LEASE_MS, SETTLE_MS } from './gc-protocol.js'
import { createRegistry, type Registry } from './index.js'
import { paths } from './paths.js'

const HOUR = 3_600_000
const SETTLE = 300

/** A promise and the function that resolves it: a point where one side waits for the other. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void
  const opened = new Promise<void>((ok) => { open = ok })
  return { open, opened }
}

/** The store as the registry sees it, with writes to paths matching `hold` held until released. */
function withHeldWrites(driver: StorageDriver): { driver: StorageDriver; hold: (match: (path: string) => boolean) => { reached: Promise<void>; release: () => void } } {
  const holds: { match: (path: string) => boolean; reached: () => void; released: Promise<void> }[] = []
  const held = async (path: string) => {
    const i = holds.findIndex((h) => h.match(path))
    if (i < 0) return
    const [h] = holds.splice(i, 1)
    h!.reached()
    await h!.released
  }
  const wrapped: StorageDriver = {
    ...driver,
    putOnce: async (path, data) => { await held(path); return driver.putOnce(path, data) },
    putContent: async (path, data) => { await held(path); return driver.putContent(path, data) },
    createOnce: async (path, data, options) => { await held(path); return driver.createOnce(path, data, options) },
  }
  return {
    driver: wrapped,
    hold(match) {
      const reached = gate()
      const released = gate()
      holds.push({ match, reached: reached.open, released: released.opened })
      return { reached: reached.opened, release: released.open }
    },
  }
}

describe('GC protocol: a push re-using an old unreferenced blob, against each step of a run (filesystem store)', () => {
  let root: string
  let store: StorageDriver
  /** What the registry (the pushes) writes through: writes can be held there. */
  let held: ReturnType<typeof withHeldWrites>
  let registry: Registry
  /** Added to the registry's monotonic clock: a push that "took" this much longer. */
  let lateBy = 0

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'enlil-gc-protocol-'))
    store = createFilesystemDriver(root)
    held = withHeldWrites(store)
    lateBy = 0
    registry = createRegistry(held.driver, {
      gcFence: { settleMs: SETTLE, clocks: { monotonic: () => performance.now() + lateBy, wall: () => Date.now() } },
    })
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))

  const twoHoursAgo = () => new Date(Date.now() - 2 * HOUR)

  /** A blob pushed into `repo` two hours ago and referenced by nothing since. */
  async function oldBlob(repo: string): Promise<{ digest: Digest; bytes: Buffer }> {
    const bytes = randomBytes(3000)
    const digest = digestOf(bytes)
    await registry.uploads.putMonolithic(repo, digest, Readable.from([bytes]))
    const old = twoHoursAgo()
    utimesSync(join(root, paths.blobData(digest)), old, old)
    utimesSync(join(root, paths.layerLink(repo, digest)), old, old)
    return { digest, bytes }
  }

  async function configBlob(repo: string): Promise<Digest> {
    const bytes = randomBytes(100)
    const digest = digestOf(bytes)
    await registry.uploads.putMonolithic(repo, digest, Readable.from([bytes]))
    return digest
  }

  function manifestOf(config: Digest, layer: Digest): Buffer {
    return Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.value, size: 100 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.value, size: 3000 }],
    }))
  }

  const putTag = (repo: string, tag: string, body: Buffer) => registry.manifests.put(repo, { kind: 'tag', tag }, body, OCI_MANIFEST_MEDIA_TYPE)
  const bytesExist = async (d: Digest) => (await store.stat(paths.blobData(d), 'file')) !== undefined

  function gc(hooks: GcHooks = {}, options: Partial<GcOptions> = {}) {
    return collectGarbage(store, { graceMs: HOUR, protocol: { settleMs: SETTLE }, hooks, ...options })
  }

  /** Pulls a tag as a client does: the manifest, then each blob it names, bytes compared. */
  async function expectPullable(repo: string, tag: string, body: Buffer, blobs: { digest: Digest; bytes?: Buffer }[]) {
    const m = await registry.manifests.get(repo, { kind: 'tag', tag })
    expect(m?.bytes.equals(body)).toBe(true)
    for (const b of blobs) {
      expect(await registry.blobs.stat(repo, b.digest), `blob ${b.digest.value}`).toBeDefined()
      const opened = await registry.blobs.open(b.digest)
      if (opened.kind !== 'bytes') throw new Error('expected bytes')
      const chunks: Buffer[] = []
      for await (const c of await opened.stream()) chunks.push(c as Buffer)
      if (b.bytes) expect(Buffer.concat(chunks).equals(b.bytes)).toBe(true)
    }
  }

  it('without any push the old blob goes (the control for every case below)', async () => {
    const old = await oldBlob('app')
    const summary = await gc()
    expect(summary.blobsDeleted).toBe(1)
    expect(await bytesExist(old.digest)).toBe(false)
  })

  it('HEAD 200 within the grace period before the run: the blob stays, and the manifest pushed after the run works', async () => {
    const old = await oldBlob('app')
    expect(await registry.blobs.statForReuse('app', old.digest)).toMatchObject({ size: 3000 })
    const summary = await gc()
    expect(summary).toMatchObject({ blobsDeleted: 0, blobsInGrace: 1 })
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    await putTag('app', 'v1', body)
    await expectPullable('app', 'v1', body, [old])
  })

  it('HEAD 200 while the run marks (published, candidates not listed yet): the blob stays', async () => {
    const old = await oldBlob('app')
    const summary = await gc({ published: async () => { expect(await registry.blobs.statForReuse('app', old.digest)).toBeDefined() } })
    expect(summary.blobsDeleted).toBe(0)
    expect(await bytesExist(old.digest)).toBe(true)
  })

  it('HEAD 200 after the links were checked, just before the decision: the push decides first, the blob stays', async () => {
    const old = await oldBlob('app')
    const summary = await gc({
      rechecked: async (doomed) => {
        expect(doomed).toEqual([old.digest.value])
        expect(await registry.blobs.statForReuse('app', old.digest)).toBeDefined()
      },
    })
    expect(summary).toMatchObject({ blobsDeleted: 0, blobsReused: 1 })
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    await putTag('app', 'v1', body)
    await expectPullable('app', 'v1', body, [old])
  })

  it('HEAD after GC decided to delete: 404 though bytes and link are still there; the client uploads it again, which waits for the deletion and then stores it', async () => {
    const old = await oldBlob('app')
    let upload: Promise<unknown> | undefined
    const summary = await gc({
      decided: async (digest, deleting) => {
        expect([digest, deleting]).toEqual([old.digest.value, true])
        expect(await bytesExist(old.digest)).toBe(true)
        expect(await registry.blobs.statForReuse('app', old.digest)).toBeUndefined()
        // The client pushes the blob again while GC is about to delete the old bytes.
        upload = registry.uploads.putMonolithic('app', old.digest, Readable.from([old.bytes]))
        expect(await Promise.race([upload.then(() => 'stored'), new Promise((ok) => setTimeout(() => ok('waiting'), 200))])).toBe('waiting')
      },
    })
    expect(summary.blobsDeleted).toBe(1)
    await upload
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    await putTag('app', 'v1', body)
    await expectPullable('app', 'v1', body, [old])
  })

  it('a manifest PUT naming the blob after GC decided to delete it is refused with MANIFEST_BLOB_UNKNOWN (a fresh push of the blob then works)', async () => {
    const old = await oldBlob('app')
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    let refused: unknown
    await gc({ decided: async () => { refused = await putTag('app', 'v1', body).catch((err: unknown) => err) } })
    expect(refused).toBeInstanceOf(RegistryError)
    expect((refused as RegistryError).code).toBe('MANIFEST_BLOB_UNKNOWN')
    expect(await registry.manifests.get('app', { kind: 'tag', tag: 'v1' })).toBeUndefined()
    await registry.uploads.putMonolithic('app', old.digest, Readable.from([old.bytes]))
    await putTag('app', 'v1', body)
    await expectPullable('app', 'v1', body, [old])
  })

  it('a manifest PUT whose checks ran before the run was published and whose links land before it re-lists: its blob stays', async () => {
    const old = await oldBlob('app')
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    const revision = held.hold((path) => path.endsWith(`${paths.revisionLink('app', digestOf(body))}`))
    const put = putTag('app', 'v1', body)
    await revision.reached // checked, about to link
    const summary = await gc({ listed: async (candidates) => {
      expect(candidates).toContain(old.digest.value)
      revision.release()
      await put
    } })
    expect(summary.blobsDeleted).toBe(0)
    await expectPullable('app', 'v1', body, [old])
  })

  it('a manifest PUT that took longer than the settle time and finds its blob decided for deletion is refused and leaves no revision behind', async () => {
    const old = await oldBlob('app')
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    const revision = held.hold((path) => path.endsWith(`${paths.revisionLink('app', digestOf(body))}`))
    const put = putTag('app', 'v1', body).catch((err: unknown) => err)
    await revision.reached
    // GC runs to its decisions while the PUT is held (it can't see the PUT's link yet)...
    const summary = await gc({ decided: async () => {
      // ...and the PUT then lands long after its view of the runs was read.
      lateBy = SETTLE_MS * 10
      revision.release()
      const refused = await put
      expect((refused as RegistryError).code).toBe('MANIFEST_BLOB_UNKNOWN')
    } })
    expect(summary.blobsDeleted).toBe(1)
    expect(await registry.manifests.get('app', { kind: 'digest', digest: digestOf(body) })).toBeUndefined()
    expect(await registry.manifests.get('app', { kind: 'tag', tag: 'v1' })).toBeUndefined()
  })

  it('a mount while the run marks keeps the blob; a mount after the deletion was decided mounts nothing (the client uploads)', async () => {
    const kept = await oldBlob('base')
    await gc({ rechecked: async () => {
      expect(await registry.mounts.mount({ from: 'base', to: 'app', digest: kept.digest })).toBeDefined()
    } })
    expect(await registry.blobs.stat('app', kept.digest)).toBeDefined()

    const doomed = await oldBlob('base2')
    await gc({ decided: async (digest) => {
      if (digest === doomed.digest.value) expect(await registry.mounts.mount({ from: 'base2', to: 'app2', digest: doomed.digest })).toBeUndefined()
    } })
    expect(await registry.blobs.stat('app2', doomed.digest)).toBeUndefined()
    expect(await bytesExist(doomed.digest)).toBe(false)
  })

  it('a process that linked a blob moments before another process collected it does not vouch for it once it sees that run', async () => {
    const old = await oldBlob('app') // linked just now by this process: trusted for a push's checks, size cached
    const config = await configBlob('app')
    await collectGarbage(createFilesystemDriver(root), { graceMs: HOUR, protocol: { settleMs: 0 } })
    expect(await bytesExist(old.digest)).toBe(false)
    lateBy += 2_000 // this process's view of the runs is due for a refresh
    const refused = await putTag('app', 'v1', manifestOf(config, old.digest)).catch((err: unknown) => err)
    expect((refused as RegistryError).code).toBe('MANIFEST_BLOB_UNKNOWN')
  })

  it('GC stops before deleting when it could not renew its lease', async () => {
    const old = await oldBlob('app')
    const failing: StorageDriver = {
      ...store,
      putContent: async (path, data) => {
        if (path.startsWith(paths.gcRuns) && failing.started) throw new Error('store unreachable')
        return store.putContent(path, data)
      },
    } as StorageDriver & { started?: boolean }
    const run = collectGarbage(failing, {
      graceMs: HOUR, protocol: { settleMs: 0, leaseMs: 300, renewMs: 50, leaseMarginMs: 100 },
      hooks: { rechecked: async () => {
        (failing as { started?: boolean }).started = true
        await new Promise((ok) => setTimeout(ok, 400))
      } },
    })
    await expect(run).rejects.toThrow(/could not renew its lease/)
    expect(await bytesExist(old.digest)).toBe(true)
  })

  it('a run whose lease ran out long ago (its GC died) is ignored by pushes: no decision is written', async () => {
    const old = await oldBlob('app')
    const dead = 'dead-run'
    await store.putContent(paths.gcRun(dead), JSON.stringify({ id: dead, startedAt: twoHoursAgo().toISOString(), expiresAt: new Date(Date.now() - CLOCK_SKEW_MS - LEASE_MS - 1000).toISOString() }))
    expect(await registry.blobs.statForReuse('app', old.digest)).toBeDefined()
    expect(await store.list(paths.gcRunFolder(dead))).toEqual([])
    // The next run clears it away.
    await gc()
    expect(await store.list(paths.gcRuns)).not.toContain(dead)
  })

  it('a HEAD between GC writing its batches and reading the uses: GC sees the use and keeps the blob, and the HEAD, waiting for GC to say so, answers 200', async () => {
    const old = await oldBlob('app')
    let head: Promise<unknown> | undefined
    const gcStore: StorageDriver = {
      ...store,
      list: async (path) => {
        // GC wrote its batches and is about to list `keep/`: the HEAD writes `keep` first.
        if (path.endsWith('/keep') && !head) {
          head = registry.blobs.statForReuse('app', old.digest)
          for (let i = 0; i < 200 && (await store.list(path)).length === 0; i++) await new Promise((ok) => setTimeout(ok, 10))
        }
        return store.list(path)
      },
    }
    const summary = await collectGarbage(gcStore, { graceMs: HOUR, protocol: { settleMs: SETTLE } })
    expect(await head).toBeDefined()
    expect(summary).toMatchObject({ blobsDeleted: 0, blobsReused: 1 })
    expect(await bytesExist(old.digest)).toBe(true)
    const config = await configBlob('app')
    const body = manifestOf(config, old.digest)
    await putTag('app', 'v1', body)
    await expectPullable('app', 'v1', body, [old])
  })

  it('a HEAD whose use lands only after GC read the uses then finds the batch: 404, and the blob goes', async () => {
    const old = await oldBlob('app')
    const keep = held.hold((path) => path.includes('/keep/'))
    let head: Promise<unknown> | undefined
    const summary = await gc({
      rechecked: async () => {
        head = registry.blobs.statForReuse('app', old.digest)
        await keep.reached
      },
      decided: async () => {
        keep.release()
        expect(await head).toBeUndefined()
      },
    })
    expect(summary).toMatchObject({ blobsDeleted: 1, blobsReused: 0 })
    expect(await bytesExist(old.digest)).toBe(false)
  })

  it('deletes in batches: of 25 old blobs in batches of 10, the one a HEAD used during the decisions stays, the other 24 go', async () => {
    const olds = await Promise.all(Array.from({ length: 25 }, (_, i) => oldBlob(`app${i % 3}`)))
    const used = olds[13]!
    let asked = false
    const gcStore: StorageDriver = {
      ...store,
      list: async (path) => {
        if (path.endsWith('/keep') && !asked) {
          asked = true
          // Written before GC lists the uses: this HEAD keeps its blob (it answers once GC decided).
          void registry.blobs.statForReuse(`app${13 % 3}`, used.digest)
          for (let i = 0; i < 200 && (await store.list(path)).length === 0; i++) await new Promise((ok) => setTimeout(ok, 10))
          const [run] = await store.list(paths.gcRuns)
          expect((await store.list(paths.gcBatches(run!))).sort()).toEqual(['000000', '000001', '000002'])
        }
        return store.list(path)
      },
    }
    const summary = await collectGarbage(gcStore, { graceMs: HOUR, protocol: { settleMs: SETTLE, batchSize: 10 } })
    expect(summary).toMatchObject({ blobsDeleted: 24, blobsReused: 1, layerLinksDeleted: 24 })
    for (const b of olds) expect(await bytesExist(b.digest), b.digest.value).toBe(b === used)
    expect(await registry.blobs.stat(`app${13 % 3}`, used.digest)).toBeDefined()
  })

  it('the run leaves its summary for the UI and metrics, and removes its decisions', async () => {
    await oldBlob('app')
    await gc()
    const record = JSON.parse((await store.getContent(paths.gcLastRun))!.toString()) as Record<string, unknown>
    expect(record).toMatchObject({ blobsDeleted: 1, bytesFreed: 3000, dryRun: false })
    expect(typeof record.finishedAt).toBe('string')
    const [run] = await store.list(paths.gcRuns)
    expect(await store.list(paths.gcRunFolder(run!))).toEqual([])
  })
})
