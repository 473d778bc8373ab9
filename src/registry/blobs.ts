/** @module BlobStore: content-addressed bytes, visible in a repository only where linked. */
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Digest } from '../oci/digest.js'
import type { ByteRange, StorageDriver } from '../storage/driver.js'
import { LruCache } from './cache.js'
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
  /** Size of the stored bytes, whatever repository links them. */
  size(digest: Digest): Promise<number | undefined>
  open(digest: Digest, range?: ByteRange): Promise<BlobBody>
  link(repo: string, digest: Digest): Promise<void>
  /** Links a blob of `from` into `to`; undefined when `from` doesn't have it. */
  mount(from: string, to: string, digest: Digest): Promise<BlobInfo | undefined>
  /** Removes the blob from the repository; the bytes stay until garbage collection. Resolves false when not linked. */
  unlink(repo: string, digest: Digest): Promise<boolean>
}

export interface BlobStoreOptions {
  redirect?: boolean
}

export function createBlobStore(driver: StorageDriver, options: BlobStoreOptions = {}): BlobStore {
  // Sizes of content-addressed bytes never change; caching them saves a stat on every HEAD.
  const sizes = new LruCache<string, number>(100_000)

  async function size(digest: Digest): Promise<number | undefined> {
    const cached = sizes.get(digest.value)
    if (cached !== undefined) return cached
    const info = await driver.stat(paths.blobData(digest), 'file')
    if (!info || info.isDirectory) return undefined
    sizes.set(digest.value, info.size)
    return info.size
  }

  async function isLinked(repo: string, digest: Digest): Promise<boolean> {
    return (await driver.stat(paths.layerLink(repo, digest), 'file')) !== undefined
  }

  return {
    size,

    async stat(repo, digest) {
      const [linked, bytes] = await Promise.all([isLinked(repo, digest), size(digest)])
      return linked && bytes !== undefined ? { digest, size: bytes } : undefined
    },

    async open(digest, range) {
      const bytes = (await size(digest)) ?? 0
      if (options.redirect && driver.redirectUrl) {
        const url = await driver.redirectUrl(paths.blobData(digest))
        if (url) return { kind: 'redirect', size: bytes, url }
      }
      const path = paths.blobData(digest)
      return {
        kind: 'bytes',
        size: bytes,
        copyTo: (out) => (driver.copyTo ? driver.copyTo(path, out, range) : driver.reader(path, range).then((r) => pipeline(r, out))),
        stream: () => driver.reader(path, range),
      }
    },

    async link(repo, digest) {
      await driver.putOnce(paths.layerLink(repo, digest), digest.value)
    },

    async mount(from, to, digest) {
      const found = await this.stat(from, digest)
      if (!found) return undefined
      await this.link(to, digest)
      return found
    },

    async unlink(repo, digest) {
      if (!(await isLinked(repo, digest))) return false
      await driver.delete(paths.layer(repo, digest))
      return true
    },
  }
}
