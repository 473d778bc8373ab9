/** @module BlobStore: content-addressed bytes, visible in a repository only where linked. */
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Digest } from '../oci/digest.js'
import { type ByteRange, PathNotFoundError, type StorageDriver } from '../storage/driver.js'
import { RegistryError } from '../oci/errors.js'
import { LruCache } from './cache.js'
import type { GcFence } from './gc-protocol.js'
import { paths } from './paths.js'

export interface BlobInfo {
  digest: Digest
  size: number
}

/** The bytes to send: copied into a writable (the fast path), or as a stream; or a URL to redirect to. */
export type BlobBody =
  | { kind: 'bytes'; size: number; copyTo(out: Writable): Promise<void>; stream(): Promise<Readable> }
  | { kind: 'redirect'; size: number; url: string }

export interface BlobStore {
  /** undefined: not linked in this repository (or its bytes are gone). */
  stat(repo: string, digest: Digest): Promise<BlobInfo | undefined>
  /**
   * `stat` for a HEAD: the client asks whether it must push the blob, and skips it on a yes. A yes
   * is a use in the sense of gc-protocol.ts: garbage collection won't delete the blob after it.
   */
  statForReuse(repo: string, digest: Digest): Promise<BlobInfo | undefined>
  /**
   * `stat` for the checks of a push (a manifest's references, a mount's source): a link this process
   * wrote or found in the last `recentLinkMs` counts without asking the store. Never answers HEAD or GET.
   */
  statForPush(repo: string, digest: Digest): Promise<BlobInfo | undefined>
  /** Size of the stored bytes, whatever repository links them. */
  size(digest: Digest): Promise<number | undefined>
  open(digest: Digest, range?: ByteRange): Promise<BlobBody>
  /** `size`, when the caller knows it (a verified upload), saves a later lookup. */
  link(repo: string, digest: Digest, size?: number): Promise<void>
  /** Links a blob of `from` into `to`; undefined when `from` doesn't have it. Run it inside a GC fence use. */
  mount(from: string, to: string, digest: Digest): Promise<BlobInfo | undefined>
  /** Removes the blob from the repository; the bytes stay until garbage collection. Resolves false when not linked. */
  unlink(repo: string, digest: Digest): Promise<boolean>
}

export interface BlobStoreOptions {
  redirect?: boolean
  /** Garbage collection's fence: HEADs are uses, and a run seen drops cached existence. */
  fence?: GcFence
  /** Whether the registry is read-only now: a HEAD then writes nothing (no push can follow it). */
  readOnly?: () => Promise<boolean>
  /** How long a link seen or written here is trusted by statForPush (0: never). */
  recentLinkMs?: number
  /** How long bytes seen here are believed to exist without asking the store (EXISTENCE_TRUSTED_MS). */
  existenceTrustedMs?: number
}

/**
 * A push checks blobs it linked moments before: docker uploads or mounts the layers, then PUTs the
 * manifest that references them. On S3 each check is a round trip (distribution keeps such facts
 * in its blob-descriptor cache for good). Trusting them for a few seconds means an unlink made by
 * another instance in that time can go unseen by a push check, never by a pull.
 */
export const RECENT_LINK_MS = 10_000

/**
 * How long "these bytes exist" is believed without asking the store. A digest's size never changes,
 * but garbage collection may delete its bytes (on any instance): past this bound the store is
 * asked again, so no worker answers for deleted bytes for longer.
 */
export const EXISTENCE_TRUSTED_MS = 5_000

export function createBlobStore(driver: StorageDriver, options: BlobStoreOptions = {}): BlobStore {
  // Sizes of content-addressed bytes never change; caching them saves a stat on most HEADs. Whether
  // the bytes are still there is a mutable fact, believed for EXISTENCE_TRUSTED_MS at most, and
  // not at all once this process saw a GC run it had not seen when it cached it (the fence's epoch).
  const sizes = new LruCache<string, { size: number; seenAt: number; epoch: number }>(100_000)
  const fence = options.fence
  const epoch = () => fence?.epoch() ?? 0
  /** `repo@digest` → when this process last rewrote the link (a HEAD's touch, at most once a second). */
  const touched = new LruCache<string, number>(50_000)
  const touches = new Map<string, Promise<void>>()
  const existenceMs = options.existenceTrustedMs ?? EXISTENCE_TRUSTED_MS
  const recentLinkMs = options.recentLinkMs ?? RECENT_LINK_MS
  /** `repo@digest` → when the link stops being trusted. */
  const recentLinks = new LruCache<string, number>(50_000)
  const remember = (repo: string, digest: Digest): void => {
    if (recentLinkMs > 0) recentLinks.set(`${repo}@${digest.value}`, Date.now() + recentLinkMs)
  }

  async function size(digest: Digest): Promise<number | undefined> {
    const cached = sizes.get(digest.value)
    if (cached !== undefined && cached.epoch === epoch() && Date.now() - cached.seenAt < existenceMs) return cached.size
    const at = epoch()
    const info = await driver.stat(paths.blobData(digest), 'file')
    if (!info || info.isDirectory) {
      sizes.delete(digest.value)
      return undefined
    }
    sizes.set(digest.value, { size: info.size, seenAt: Date.now(), epoch: at })
    return info.size
  }

  async function isLinked(repo: string, digest: Digest): Promise<boolean> {
    return (await driver.stat(paths.layerLink(repo, digest), 'file')) !== undefined
  }

  async function stat(repo: string, digest: Digest): Promise<BlobInfo | undefined> {
    const [linked, bytes] = await Promise.all([isLinked(repo, digest), size(digest)])
    return linked && bytes !== undefined ? { digest, size: bytes } : undefined
  }

  return {
    size,
    stat,

    async statForReuse(repo, digest) {
      if (!fence || (await options.readOnly?.())) return stat(repo, digest)
      return fence.use([digest], async (doomed) => {
        if (doomed.has(digest.value)) return undefined
        const [link, bytes] = await Promise.all([driver.stat(paths.layerLink(repo, digest), 'file'), size(digest)])
        if (!link || bytes === undefined) return undefined
        // The link's time says when the blob was last used: GC keeps blobs used within its grace.
        // HEADs of one link at once share its touch (they all answer after it landed).
        const key = `${repo}@${digest.value}`
        const touching = touches.get(key)
        if (touching) await touching
        else if (fence.stale(link.modifiedAt) && Date.now() - (touched.get(key) ?? 0) >= 1_000) {
          touched.set(key, Date.now())
          const touch = driver.putOnce(paths.layerLink(repo, digest), digest.value).finally(() => touches.delete(key))
          touches.set(key, touch)
          await touch
        }
        // A push usually follows a HEAD 200 (the client skipped the upload): its manifest's check
        // of this blob needs no request.
        remember(repo, digest)
        return { digest, size: bytes }
      })
    },

    async statForPush(repo, digest) {
      const trustedUntil = recentLinks.get(`${repo}@${digest.value}`)
      if (trustedUntil !== undefined && trustedUntil > Date.now()) {
        const bytes = await size(digest)
        if (bytes !== undefined) return { digest, size: bytes }
      }
      const found = await stat(repo, digest)
      if (found) remember(repo, digest)
      return found
    },

    async open(digest, range) {
      const bytes = (await size(digest)) ?? 0
      if (options.redirect && driver.redirectUrl) {
        const url = await driver.redirectUrl(paths.blobData(digest))
        if (url) return { kind: 'redirect', size: bytes, url }
      }
      const path = paths.blobData(digest)
      // Bytes found gone when opened (deleted since they were seen): forget them, and say so with
      // 404 before any of the response went out, never a 200 cut short.
      const gone = (err: unknown): never => {
        if (!(err instanceof PathNotFoundError)) throw err
        sizes.delete(digest.value)
        throw new RegistryError('BLOB_UNKNOWN', `the bytes of blob ${digest.value} are gone from the store (garbage collected)`, { digest: digest.value })
      }
      return {
        kind: 'bytes',
        size: bytes,
        copyTo: (out) => (driver.copyTo ? driver.copyTo(path, out, range, bytes) : driver.reader(path, range).then((r) => pipeline(r, out))).catch(gone),
        stream: () => driver.reader(path, range).catch(gone),
      }
    },

    async link(repo, digest, knownSize) {
      await driver.putOnce(paths.layerLink(repo, digest), digest.value)
      if (knownSize !== undefined) sizes.set(digest.value, { size: knownSize, seenAt: Date.now(), epoch: epoch() })
      remember(repo, digest)
    },

    async mount(from, to, digest) {
      const found = await this.statForPush(from, digest)
      if (!found) return undefined
      await this.link(to, digest)
      return found
    },

    async unlink(repo, digest) {
      recentLinks.delete(`${repo}@${digest.value}`)
      if (!(await isLinked(repo, digest))) return false
      await driver.delete(paths.layer(repo, digest))
      return true
    },
  }
}
