/**
 * @module Cross-repository mounts (spec: end-11): a blob of another repository linked into this
 * one, no bytes moved, counted against quotas like an upload. With `from` the source is named;
 * without it (automatic content discovery) a repository that holds the blob and that the caller
 * may pull is looked for.
 */
import type { Digest } from '../oci/digest.js'
import type { BlobInfo, BlobStore } from './blobs.js'
import type { Catalog } from './catalog.js'
import type { GcFence } from './gc-protocol.js'
import type { Quotas } from './quotas.js'

/** An automatic mount looks through at most this many repositories: on S3 each is a request. */
export const MOUNT_SEARCH_LIMIT = 1_000
const SEARCH_BATCH = 16

export interface MountRequest {
  to: string
  digest: Digest
  /** The repository named by `from`; undefined: find one (automatic content discovery). */
  from?: string
  /** Repositories the caller may read, for the search; undefined: all (auth off). */
  mayPull?: (name: string) => boolean
}

export interface Mounts {
  /** Links the blob into `to`; undefined when no source has it (the client then uploads it). */
  mount(request: MountRequest): Promise<{ blob: BlobInfo; from: string } | undefined>
}

export function createMounts(blobs: BlobStore, catalog: Catalog, quotas?: Quotas, fence?: GcFence): Mounts {
  /** A repository other than `to` that links the blob and that the caller may pull. */
  async function findSource(request: MountRequest): Promise<string | undefined> {
    if ((await blobs.size(request.digest)) === undefined) return undefined
    let batch: string[] = []
    let searched = 0
    const look = async (): Promise<string | undefined> => {
      const found = await Promise.all(batch.map(async (name) => ((await blobs.statForPush(name, request.digest)) ? name : undefined)))
      batch = []
      return found.find((name) => name !== undefined)
    }
    for await (const name of catalog.walk()) {
      if (name === request.to || (request.mayPull && !request.mayPull(name))) continue
      batch.push(name)
      if (++searched >= MOUNT_SEARCH_LIMIT) break
      if (batch.length >= SEARCH_BATCH) {
        const hit = await look()
        if (hit) return hit
      }
    }
    return batch.length > 0 ? look() : undefined
  }

  /** Links the blob of `from` into `to`, counting it against the quota of `to`. */
  async function link(request: MountRequest, from: string): Promise<{ blob: BlobInfo; from: string } | undefined> {
    const { to, digest } = request
    if (!quotas) {
      const blob = await blobs.mount(from, to, digest)
      return blob ? { blob, from } : undefined
    }
    // A mount moves no bytes but grows the repository's share: checked before linking, with the
    // source's stat done once.
    const [there, here] = await Promise.all([blobs.statForPush(from, digest), blobs.stat(to, digest)])
    if (!there) return undefined
    if (!here) await quotas.check(to, there.size, { newBlob: false })
    await blobs.link(to, digest, there.size)
    if (!here) quotas.stored(to, there.size, false)
    return { blob: there, from }
  }

  return {
    async mount(request) {
      const from = request.from ?? (await findSource(request))
      if (from === undefined) return undefined
      // A mount is a use of the blob (gc-protocol.ts): one that GC decided to delete is not mounted.
      if (!fence) return link(request, from)
      return fence.use([request.digest], async (doomed) => (doomed.has(request.digest.value) ? undefined : link(request, from)))
    },
  }
}
