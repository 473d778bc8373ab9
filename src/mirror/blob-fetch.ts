/**
 * @module Blobs pulled through: one upstream transfer per blob, streamed to the clients that asked
 * while it is written to the store, visible only once its digest is verified.
 *
 * - In a process, every pull of a blob being fetched shares the one transfer: those that ask
 *   before its first byte get the bytes live; later ones get them from the store when it is done.
 * - Across workers and instances, a lease in the store (leases.ts) lets one process fetch; the
 *   others wait for the bytes to land, then serve them from the store.
 * - The bytes go to a temporary object; once the digest and length match they move to their content
 *   address and are linked (a use in the GC protocol, as a push's upload). A transfer that breaks off
 *   or brings wrong bytes cuts the live clients' responses (they retry) and stores nothing.
 */
import { createHash, randomUUID } from 'node:crypto'
import { dirname } from 'node:path'
import { PassThrough, type Readable, Writable } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import type { Digest } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import type { Logger } from '../observe/log.js'
import { metrics } from '../observe/metrics.js'
import type { BlobBody, BlobInfo, BlobStore } from '../registry/blobs.js'
import { LruCache } from '../registry/cache.js'
import type { GcFence } from '../registry/gc-protocol.js'
import { paths } from '../registry/paths.js'
import type { ByteRange, StorageDriver } from '../storage/driver.js'
import type { Leases } from './leases.js'
import type { Route } from './routes.js'
import { type UpstreamBlob, UpstreamError } from './upstream.js'

export interface BlobFetcher {
  /**
   * The blob, linked in the route's stored repository: found there, linked from bytes stored for
   * another repository once the upstream confirms its repository has them, or being fetched (then
   * it resolves as soon as the size is known). undefined: the upstream's repository has no such blob.
   */
  ensure(route: Route, digest: Digest): Promise<BlobInfo | undefined>
  /** Whether the upstream's repository has the blob (a HEAD), without fetching it. */
  peek(route: Route, digest: Digest): Promise<BlobInfo | undefined>
  /** The bytes: from this process's transfer while it runs, else from the store. */
  open(digest: Digest, range?: ByteRange): Promise<BlobBody>
}

export interface BlobFetchDeps {
  driver: StorageDriver
  blobs: BlobStore
  fence: GcFence
  leases: Leases
  log: Logger
  /** Longest wait for another process's transfer of the same blob. */
  maxWaitMs?: number
  /** A transfer nobody attached to starts storing after this long. */
  startAfterMs?: number
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms))

/**
 * Bytes the store or a client may have queued before the transfer waits for it. Waiting at each
 * 64 KiB chunk (a stream's default) made every chunk a round trip through the disk's thread pool
 * and the client's socket, which halved a cold pull's speed.
 */
const QUEUED = 4 * 1024 * 1024

/** Resolves once a writable wants more, or can't take any. */
function drained(w: Writable): Promise<void> {
  return new Promise((ok) => {
    const done = () => {
      w.off('drain', done)
      w.off('close', done)
      w.off('error', done)
      ok()
    }
    w.on('drain', done)
    w.on('close', done)
    w.on('error', done)
  })
}

export class BlobDigestError extends Error {}

/** One upstream response being verified into the store and copied to the clients attached to it. */
class Transfer {
  readonly #sinks = new Map<Writable, { ok: () => void; fail: (err: Error) => void }>()
  #started = false
  #start!: () => void
  readonly #starting = new Promise<void>((ok) => { this.#start = ok })
  /** Resolves once the verified bytes are stored and linked. */
  done!: Promise<void>

  constructor(readonly size: number | undefined) {}

  /** Copies the whole blob into `out` and ends it; undefined when the transfer started without it. */
  attach(out: Writable): Promise<void> | undefined {
    if (this.#started) return undefined
    const copied = new Promise<void>((ok, fail) => this.#sinks.set(out, { ok, fail }))
    out.once('close', () => {
      // A client that left stops holding the others back.
      const sink = this.#sinks.get(out)
      this.#sinks.delete(out)
      sink?.fail(new Error('the client went away'))
    })
    this.#start()
    return copied
  }

  async run(deps: BlobFetchDeps, upstream: UpstreamBlob, upstreamName: string, store: string, digest: Digest): Promise<void> {
    const timer = setTimeout(() => this.#start(), deps.startAfterMs ?? 1_000)
    await this.#starting
    clearTimeout(timer)
    this.#started = true
    const { driver } = deps
    // A folder per fetch: whatever the driver writes on the way (a file system's hidden temporary
    // file) goes with it, and its name says which blob's lease covers it (purgeFetching).
    const folder = paths.mirrorFetching(`${digest.algorithm}-${digest.hex}-${randomUUID()}`)
    const temp = `${folder}/data`
    const hash = createHash(digest.algorithm)
    let received = 0
    const toStore = new PassThrough({ highWaterMark: QUEUED })
    // Failed below (destroy) maybe before the driver reads it: the error is the transfer's, reported there.
    toStore.on('error', () => {})
    const writing = driver.writeStream(temp, toStore)
    writing.catch(() => {})
    const sinks = this.#sinks
    const expected = this.size
    // The clients get each chunk one chunk late: the last one goes out only once the digest is
    // verified, so wrong bytes end their response short of its length (an error), never complete.
    let held: Buffer | undefined
    /** Counted by the MiB: a labelled counter per chunk costs more than it says. */
    let uncounted = 0
    const count = () => {
      if (uncounted > 0) metrics.mirrorUpstreamBytes.inc([upstreamName], uncounted)
      uncounted = 0
    }
    const fanOut = new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk)
        received += chunk.length
        uncounted += chunk.length
        if (uncounted >= 1024 * 1024) count()
        if (expected !== undefined && received > expected) {
          callback(new UpstreamError('server', `upstream ${upstreamName}: sent more than the ${expected} bytes it announced for ${digest.value}`))
          return
        }
        const previous = held
        held = chunk
        const slow = [toStore, ...(previous ? sinks.keys() : [])].filter((w) => {
          if (w.destroyed) return false
          w.write(w === toStore ? chunk : previous)
          return w.writableLength >= QUEUED
        })
        if (slow.length === 0) callback()
        else Promise.all(slow.map(drained)).then(() => callback(), callback)
      },
    })
    try {
      await pipeline(upstream.body, fanOut).finally(count).catch((err: unknown) => {
        if (err instanceof UpstreamError) throw err
        metrics.mirrorUpstreamErrors.inc([upstreamName, 'cut'])
        throw new UpstreamError('unreachable', `upstream ${upstreamName}: the transfer of ${digest.value} broke off after ${received} bytes (${(err as Error).message})`)
      })
      const actual = hash.digest('hex')
      if (actual !== digest.hex || (expected !== undefined && received !== expected)) {
        metrics.mirrorUpstreamErrors.inc([upstreamName, 'digest'])
        throw new BlobDigestError(`upstream ${upstreamName} sent ${received} bytes of digest ${digest.algorithm}:${actual} for blob ${digest.value}: refused, nothing stored`)
      }
    } catch (err) {
      toStore.destroy(err as Error)
      for (const sink of sinks.values()) sink.fail(err as Error)
      sinks.clear()
      await writing.catch(() => {})
      await driver.delete(folder).catch(() => {})
      throw err
    }
    // Verified: the clients get the end of their responses while the store finishes.
    for (const [out, sink] of sinks) {
      if (held) out.end(held)
      else out.end()
      finished(out).then(sink.ok, sink.fail)
    }
    toStore.end()
    try {
      await writing
      const size = received
      await deps.fence.use([digest], async (doomed) => {
        if (doomed.has(digest.value)) await deps.fence.awaitDeletion(digest)
        if (!(await driver.stat(paths.blobData(digest), 'file'))) await driver.move(temp, paths.blobData(digest))
        await deps.blobs.link(store, digest, size)
      })
    } finally {
      await driver.delete(folder).catch(() => {})
    }
  }
}

/**
 * Removes temporary fetches (`_enlil/mirror/fetching/<alg>-<hex>-<id>/`) that a process which crashed
 * mid-transfer left: those whose blob no live lease covers (a transfer holds its blob's lease, renewed
 * while it runs, until its folder is gone) and that are older than `cutoff` as far as the store shows
 * (on a file system, a folder's time is when the fetch started). Returns how many were removed.
 */
export async function purgeFetching(driver: StorageDriver, leases: Leases, cutoff: Date): Promise<number> {
  const fetching = dirname(paths.mirrorFetching('x'))
  let removed = 0
  for (const name of await driver.list(fetching)) {
    const blob = /^([a-z0-9]+)-([0-9a-f]+)-/.exec(name)
    if (blob && (await leases.held(`${blob[1]}-${blob[2]}`))) continue
    const info = (await driver.stat(`${fetching}/${name}/data`, 'file')) ?? (await driver.stat(`${fetching}/${name}`))
    if (info && info.modifiedAt.getTime() >= cutoff.getTime()) continue
    await driver.delete(`${fetching}/${name}`)
    removed++
  }
  return removed
}

export function createBlobFetcher(deps: BlobFetchDeps): BlobFetcher {
  const { blobs, driver } = deps
  const maxWaitMs = deps.maxWaitMs ?? 30 * 60_000
  /** `store@digest` → the fetch that links it there; dropped when its transfer is over. */
  const inflight = new Map<string, Promise<{ info: BlobInfo | undefined; finished: Promise<void> }>>()
  /** digest → the transfer this process runs. */
  const live = new Map<string, Transfer>()
  /** digest → why its last transfer here failed: a client that was told the size hears 503, not 404. */
  const failed = new LruCache<string, { err: Error; at: number }>(10_000)

  /** Links bytes that are stored already, when the upstream's repository has them too. */
  async function linkStored(route: Route, digest: Digest): Promise<BlobInfo | undefined | 'again'> {
    const here = await blobs.stat(route.store, digest)
    if (here) return here
    const size = await route.upstream.client.blobSize(route.remote, digest)
    if (size === undefined) return undefined
    return deps.fence.use([digest], async (doomed) => {
      if (doomed.has(digest.value)) {
        await deps.fence.awaitDeletion(digest)
        return 'again' as const
      }
      const stored = await blobs.size(digest)
      if (stored === undefined) return 'again' as const
      await blobs.link(route.store, digest, stored)
      return { digest, size: stored }
    })
  }

  async function startTransfer(route: Route, digest: Digest, release: () => Promise<void>): Promise<{ info: BlobInfo | undefined; finished: Promise<void> }> {
    const upstream = await route.upstream.client.blob(route.remote, digest)
    if (!upstream) {
      await release()
      return { info: undefined, finished: Promise.resolve() }
    }
    metrics.mirrorPulls.inc([route.upstream.client.name, 'blob', 'miss'])
    const transfer = new Transfer(upstream.size)
    live.set(digest.value, transfer)
    failed.delete(digest.value)
    transfer.done = transfer.run(deps, upstream, route.upstream.client.name, route.store, digest)
    const over = transfer.done.catch((err: unknown) => {
      failed.set(digest.value, { err: err as Error, at: Date.now() })
      deps.log.warn('mirror: blob transfer failed; nothing was stored', { digest: digest.value, repository: route.store, err })
    }).finally(async () => {
      live.delete(digest.value)
      await release()
    })
    if (upstream.size !== undefined) return { info: { digest, size: upstream.size }, finished: over }
    // No length announced: the response needs one, so this waits for the bytes.
    await transfer.done
    return { info: await blobs.stat(route.store, digest), finished: over }
  }

  async function fetchShared(route: Route, digest: Digest): Promise<{ info: BlobInfo | undefined; finished: Promise<void> }> {
    const deadline = Date.now() + maxWaitMs
    for (let round = 0; ; round++) {
      if ((await blobs.size(digest)) !== undefined) {
        const linked = await linkStored(route, digest)
        if (linked !== 'again') return { info: linked, finished: Promise.resolve() }
      }
      const lease = await deps.leases.acquire(`${digest.algorithm}-${digest.hex}`)
      if (lease) {
        try {
          // Another process may have finished between the look and the lease.
          if ((await driver.stat(paths.blobData(digest), 'file')) !== undefined) {
            await lease.release()
            continue
          }
          return await startTransfer(route, digest, () => lease.release())
        } catch (err) {
          await lease.release()
          throw err
        }
      }
      if (Date.now() > deadline) throw new UpstreamError('timeout', `another process has been fetching blob ${digest.value} for ${Math.round(maxWaitMs / 60_000)} min`)
      await sleep(Math.min(1_000, 100 + round * 50))
    }
  }

  function fromStore(digest: Digest, range: ByteRange | undefined, out: Writable): Promise<void> {
    return blobs.open(digest, range).then((body) => (body.kind === 'bytes'
      ? body.copyTo(out)
      : driver.reader(paths.blobData(digest), range).then((r) => pipeline(r, out))))
  }

  const unavailable = (digest: Digest, err: Error) => new RegistryError('UNAVAILABLE', `blob ${digest.value} could not be fetched from the upstream: ${err.message}; retry`, { digest: digest.value }, { headers: { 'Retry-After': '1' } })

  return {
    async ensure(route, digest) {
      const found = await blobs.stat(route.store, digest)
      if (found) {
        metrics.mirrorPulls.inc([route.upstream.client.name, 'blob', 'hit'])
        return found
      }
      const key = `${route.store}@${digest.value}`
      let entry = inflight.get(key)
      if (!entry) {
        const fetching = fetchShared(route, digest)
        entry = fetching
        inflight.set(key, fetching)
        const clear = () => { if (inflight.get(key) === fetching) inflight.delete(key) }
        fetching.then((e) => e.finished.then(clear), clear)
      }
      return (await entry).info
    },

    async peek(route, digest) {
      const found = await blobs.stat(route.store, digest)
      if (found) return found
      const size = await route.upstream.client.blobSize(route.remote, digest)
      return size === undefined ? undefined : { digest, size }
    },

    async open(digest, range) {
      const transfer = live.get(digest.value)
      if (transfer) {
        const copy = async (out: Writable): Promise<void> => {
          const live = range ? undefined : transfer.attach(out)
          if (live) return live
          try {
            await transfer.done
          } catch (err) {
            throw unavailable(digest, err as Error)
          }
          return fromStore(digest, range, out)
        }
        return {
          kind: 'bytes', size: transfer.size ?? 0, copyTo: copy,
          stream: async (): Promise<Readable> => {
            const out = new PassThrough()
            copy(out).catch((err: unknown) => out.destroy(err as Error))
            return out
          },
        }
      }
      const failure = failed.get(digest.value)
      if (failure && Date.now() - failure.at < 30_000 && (await blobs.size(digest)) === undefined) throw unavailable(digest, failure.err)
      return blobs.open(digest, range)
    },
  }
}
