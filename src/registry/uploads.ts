/**
 * @module UploadStore: resumable blob upload sessions whose state lives in storage.
 *
 * Any instance, or a restarted one, can continue an upload: the session is `_uploads/<id>/startedat`
 * and the bytes so far are `_uploads/<id>/data`, whose size is the session's offset. The running
 * sha256 can't be serialized, so this process keeps it in memory keyed by session and offset; when
 * a request lands here without it (another instance, a restart), completion re-reads the stored
 * bytes to compute the digest. The common flows (monolithic, or POST + one PATCH + PUT on one
 * instance) never read data back. A blob becomes visible only after its digest is verified.
 *
 * One request at a time writes to a session, on every worker and instance: each PATCH and each
 * completing PUT holds the session (upload-writers.ts) and appends only where the session's size
 * says; a second writer gets 416 with the current Range. The bytes a failed or interrupted request
 * had stored stay in the session (on S3: the multipart parts that completed), so the client can
 * resume from `Range`.
 */
import { createHash, type Hash, randomUUID } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type Digest, digestFromHash, HashingStream } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import { AppendOffsetError, type StorageDriver } from '../storage/driver.js'
import type { BlobInfo, BlobStore } from './blobs.js'
import { LruCache } from './cache.js'
import type { GcFence } from './gc-protocol.js'
import { paths } from './paths.js'
import { metrics } from '../observe/metrics.js'
import type { Quotas } from './quotas.js'
import { createUploadWriters, DEFAULT_WRITER_LEASE_MS, type WriterHold } from './upload-writers.js'

export interface UploadSession {
  id: string
  repo: string
  /** Bytes received so far; the next chunk starts here. */
  size: number
  startedAt: Date
}

export interface UploadStore {
  start(repo: string): Promise<UploadSession>
  /** Throws BLOB_UPLOAD_UNKNOWN for an unknown, finished, cancelled or purged session. */
  get(repo: string, id: string): Promise<UploadSession>
  /**
   * Appends a chunk; `start` (from Content-Range) must equal the session's size, else 416. `length`
   * is the chunk's announced length (Content-Length), when there is one.
   */
  append(session: UploadSession, body: Readable, start?: number, length?: number): Promise<UploadSession>
  /** Appends the optional last chunk, verifies the digest, and makes the blob visible in the repository. */
  complete(session: UploadSession, digest: Digest, body?: Readable, start?: number, length?: number): Promise<BlobInfo>
  cancel(session: UploadSession): Promise<void>
  /** A whole blob in one request (POST ?digest=): no session state is written. `declaredSize` lets a quota refuse it before any byte is read. */
  putMonolithic(repo: string, digest: Digest, body: Readable, declaredSize?: number): Promise<BlobInfo>
  /** Deletes sessions started before `cutoff`; resolves to how many. */
  purge(repositories: AsyncIterable<string>, cutoff: Date): Promise<number>
}

const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** `Range` header value for an upload of `size` bytes (distribution answers 0-0 for an empty one). */
export function uploadRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`
}

/** A full store or a quota: the upload can't go on, so its session and partial bytes are deleted. */
function endsUpload(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'StorageFullError' || (err instanceof RegistryError && err.status === 507)
}

export interface UploadStoreOptions {
  /** How long a writer that died (kill -9) can keep holding its session (upload-writers.ts). */
  writerLeaseMs?: number
  /** Garbage collection's fence: finding a blob's bytes stored already is a use (gc-protocol.ts). */
  fence?: GcFence
}

export function createUploadStore(driver: StorageDriver, blobs: BlobStore, quotas?: Quotas, options: UploadStoreOptions = {}): UploadStore {
  const fence = options.fence
  /** Live sha256 states of sessions this process is receiving, valid at `offset`. */
  const liveHashes = new LruCache<string, { hash: Hash; offset: number }>(10_000)
  /** Sessions with a request in flight in this process: refused without asking the store. */
  const busy = new Set<string>()
  const writers = createUploadWriters(driver, { leaseMs: options.writerLeaseMs ?? DEFAULT_WRITER_LEASE_MS })

  const storedSize = async (session: UploadSession) => (await driver.appendedSize(paths.uploadData(session.repo, session.id))) ?? 0

  /** Runs a write to the session as its one writer; another request writing to it meanwhile gets 416. */
  async function exclusive<T>(session: UploadSession, work: (hold: WriterHold) => Promise<T>): Promise<T> {
    if (busy.has(session.id)) throw rangeError(session.size, ANOTHER_WRITER)
    busy.add(session.id)
    try {
      const hold = await writers.hold(session.repo, session.id, session.size)
      if (!hold) throw rangeError(await storedSize(session), ANOTHER_WRITER)
      try {
        return await work(hold)
      } finally {
        await hold.release()
      }
    } finally {
      busy.delete(session.id)
    }
  }

  function checkStart(session: UploadSession, start: number | undefined): void {
    if (start !== undefined && start !== session.size) {
      throw rangeError(session.size, `chunk starts at ${start} but the upload holds ${session.size} bytes; send the next chunk from byte ${session.size}`)
    }
  }

  /** Streams a chunk to the session's data, continuing the live hash when this process holds it. */
  async function appendChunk(session: UploadSession, body: Readable, hold: WriterHold, length?: number): Promise<UploadSession> {
    const live = liveHashes.get(session.id)
    const hash = live && live.offset === session.size ? live.hash : session.size === 0 ? createHash('sha256') : undefined
    liveHashes.delete(session.id)
    const counter = new HashingStream(hash ?? nullHash)
    const meter = await quotas?.meter(session.repo, session.size)
    const piped = meter ? pipeline(body, meter, counter) : pipeline(body, counter)
    piped.catch(() => { /* the driver's pipeline reports the error */ })
    let written: number
    try {
      written = await driver.append(paths.uploadData(session.repo, session.id), counter, { at: session.size, guard: hold.guard, length })
    } catch (err) {
      if (err instanceof AppendOffsetError) {
        throw rangeError(err.actual, `the upload holds ${err.actual} bytes now, not ${session.size}: another request wrote to it meanwhile; send the next chunk from byte ${err.actual}`)
      }
      // The quota cut the stream: say so, not "premature close".
      throw meter?.error ?? err
    }
    const size = session.size + written
    if (hash) liveHashes.set(session.id, { hash, offset: size })
    return { ...session, size }
  }

  async function digestOfUpload(session: UploadSession, algorithm: Digest['algorithm']): Promise<string> {
    const live = liveHashes.get(session.id)
    if (algorithm === 'sha256' && live && live.offset === session.size) return live.hash.copy().digest('hex')
    // Another instance received (some of) the bytes: hash what is stored.
    metrics.uploadReadBackBytes.inc([], session.size)
    const hash = createHash(algorithm)
    if (session.size > 0) {
      const hasher = new HashingStream(hash)
      await pipeline(await driver.reader(paths.uploadData(session.repo, session.id)), hasher, new PassThrough().resume())
    }
    return hash.digest('hex')
  }

  /** Puts verified bytes at their content address (or drops them when already there) and links them. */
  async function place(repo: string, dataPath: string, digest: Digest, size: number, uploadDir: string): Promise<BlobInfo> {
    if (!fence) return placeOnce(repo, dataPath, digest, size, uploadDir, false)
    // Finding the bytes stored already is a use (gc-protocol.ts); bytes that GC decided to delete
    // are waited out, then stored anew.
    return fence.use([digest], (doomed) => placeOnce(repo, dataPath, digest, size, uploadDir, doomed.has(digest.value)))
  }

  async function placeOnce(repo: string, dataPath: string, digest: Digest, size: number, uploadDir: string, doomed: boolean): Promise<BlobInfo> {
    if (doomed) await fence?.awaitDeletion(digest)
    const target = paths.blobData(digest)
    const existing = await driver.stat(target, 'file')
    if (!existing) {
      if (size === 0 && (await driver.appendedSize(dataPath)) === undefined) await driver.putContent(target, new Uint8Array())
      else await driver.move(dataPath, target)
    }
    const wasLinked = quotas ? (await blobs.stat(repo, digest)) !== undefined : true
    // The bytes are at their address: linking and clearing the session don't depend on each other.
    await Promise.all([blobs.link(repo, digest, size), driver.delete(uploadDir)])
    if (!wasLinked) quotas?.stored(repo, size, !existing)
    return { digest, size }
  }

  /** Runs a step of an upload; when the store is full or a quota is hit, the session goes too. */
  async function orEnd<T>(session: UploadSession, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      if (endsUpload(err)) {
        liveHashes.delete(session.id)
        await driver.delete(paths.upload(session.repo, session.id)).catch(() => {})
      }
      throw err
    }
  }

  return {
    async start(repo) {
      const session = { id: randomUUID(), repo, size: 0, startedAt: new Date() }
      await driver.putOnce(paths.uploadStartedAt(repo, session.id), session.startedAt.toISOString())
      return session
    },

    async get(repo, id) {
      if (!SESSION_ID.test(id)) throw unknownUpload(id)
      const [marker, size] = await Promise.all([
        driver.stat(paths.uploadStartedAt(repo, id), 'file'),
        driver.appendedSize(paths.uploadData(repo, id)),
      ])
      if (!marker) throw unknownUpload(id)
      return { id, repo, size: size ?? 0, startedAt: marker.modifiedAt }
    },

    async append(session, body, start, length) {
      checkStart(session, start)
      return exclusive(session, (hold) => orEnd(session, () => appendChunk(session, body, hold, length)))
    },

    async complete(session, digest, body, start, length) {
      if (body) checkStart(session, start)
      return exclusive(session, (hold) => orEnd(session, async () => {
        let current = session
        if (body) current = await appendChunk(session, body, hold, length)
        else {
          // A writer that ended just before this request held the session may have moved it on.
          const size = await storedSize(session)
          if (size !== session.size) throw rangeError(size, `the upload holds ${size} bytes now, not ${session.size}: another request wrote to it meanwhile`)
        }
        const actual = await digestOfUpload(current, digest.algorithm)
        if (actual !== digest.hex) {
          throw new RegistryError('DIGEST_INVALID', `upload content has digest ${digest.algorithm}:${actual}, not ${digest.value}`, {
            expected: digest.value, actual: `${digest.algorithm}:${actual}`, size: current.size,
          })
        }
        hold.guard()
        const renewals = hold.renewals()
        const info = await place(session.repo, paths.uploadData(session.repo, session.id), digest, current.size, paths.upload(session.repo, session.id))
        liveHashes.delete(session.id)
        // The claim went with the session folder, unless a renewal landed after that.
        await hold.stop()
        if (hold.renewals() === renewals) hold.forget()
        return info
      }))
    },

    async cancel(session) {
      liveHashes.delete(session.id)
      await driver.delete(paths.upload(session.repo, session.id))
    },

    async putMonolithic(repo, digest, body, declaredSize) {
      const id = randomUUID()
      const dataPath = paths.uploadData(repo, id)
      const hasher = new HashingStream(createHash(digest.algorithm))
      let meter: Awaited<ReturnType<Quotas['meter']>>
      if (quotas) {
        const existing = await blobs.size(digest)
        // Known bytes: refuse before reading any. Already stored: only the repository's share grows.
        if (existing !== undefined) await quotas.check(repo, existing, { newBlob: false })
        else if (declaredSize !== undefined) await quotas.check(repo, declaredSize)
        if (existing === undefined) meter = await quotas.meter(repo, 0)
      }
      const piped = meter ? pipeline(body, meter, hasher) : pipeline(body, hasher)
      piped.catch(() => { /* the driver's pipeline reports the error */ })
      try {
        await driver.writeStream(dataPath, hasher).catch((err: unknown) => { throw meter?.error ?? err })
        const actual = digestFromHash(hasher.hash, digest.algorithm)
        if (actual.hex !== digest.hex) {
          throw new RegistryError('DIGEST_INVALID', `uploaded content has digest ${actual.value}, not ${digest.value}`, {
            expected: digest.value, actual: actual.value, size: hasher.bytes,
          })
        }
        return await place(repo, dataPath, digest, hasher.bytes, paths.upload(repo, id))
      } catch (err) {
        await driver.delete(paths.upload(repo, id)).catch(() => {})
        throw err
      }
    },

    async purge(repositories, cutoff) {
      let purged = 0
      for await (const repo of repositories) {
        for (const id of await driver.list(paths.uploads(repo))) {
          const text = (await driver.getContent(paths.uploadStartedAt(repo, id)))?.toString('utf8').trim()
          const started = text ? new Date(text) : undefined
          // A folder without a readable start time (a killed monolithic upload) ages by its mtime.
          const age = started && !Number.isNaN(started.getTime()) ? started : (await driver.stat(paths.upload(repo, id)))?.modifiedAt
          if (age && age < cutoff) {
            liveHashes.delete(id)
            await driver.delete(paths.upload(repo, id))
            purged++
          }
        }
      }
      return purged
    },
  }
}

/** Counts bytes without hashing, for chunks that can't continue a live hash. */
const nullHash = { update: () => nullHash } as unknown as Hash

const ANOTHER_WRITER = 'another request is writing to this upload session; retry after it finished, from the Range of the session'

function unknownUpload(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload session ${id.slice(0, 64)} is unknown: it finished, was cancelled, expired, or never existed`)
}

function rangeError(size: number, message: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_INVALID', message, { size }, { status: 416, headers: { Range: uploadRange(size) } })
}
