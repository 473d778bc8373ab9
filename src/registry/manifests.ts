/** @module ManifestStore: manifests kept byte-for-byte, tags, and the referrers index. */
import { type Digest, digestOf, tryParseDigest } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import { type Descriptor, mediaTypeOf, parseManifest } from '../oci/manifest.js'
import type { Reference } from '../oci/names.js'
import type { StagedContent, StorageDriver } from '../storage/driver.js'
import { type BlobStore, RECENT_LINK_MS } from './blobs.js'
import { LruCache } from './cache.js'
import type { GcFence } from './gc-protocol.js'
import { paths } from './paths.js'

export interface StoredManifest {
  digest: Digest
  mediaType: string
  bytes: Buffer
  /** An HTTP Warning to send with it (a mirror serving a tag it could not check upstream). */
  warning?: string
}

export interface PutResult {
  digest: Digest
  mediaType: string
  /** Set when the manifest has a subject: the response carries OCI-Subject. */
  subject?: Digest
}

export interface ReferrersResult {
  descriptors: Descriptor[]
  filtered: boolean
}

export interface ManifestStore {
  get(repo: string, ref: Reference): Promise<StoredManifest | undefined>
  put(repo: string, ref: Reference, bytes: Buffer, contentType: string | undefined): Promise<PutResult>
  /** A tag reference removes the tag only; a digest removes the manifest and the tags pointing to it. */
  delete(repo: string, ref: Reference): Promise<void>
  /** Tags in lexical order after `last`, at most `n`; undefined when the repository is unknown. */
  tags(repo: string, page: { n?: number; last?: string }): Promise<string[] | undefined>
  referrers(repo: string, subject: Digest, artifactType?: string): Promise<ReferrersResult>
}

export interface ManifestStoreOptions {
  /** Bytes of manifests kept in memory; digest-addressed content never changes. */
  cacheBytes?: number
  /** Garbage collection's fence: a PUT uses the blobs it references and its own bytes. */
  fence?: GcFence
}

export function createManifestStore(driver: StorageDriver, blobs: BlobStore, options: ManifestStoreOptions = {}): ManifestStore {
  const fence = options.fence
  const cache = new LruCache<string, StoredManifest>(options.cacheBytes ?? 64 * 1024 * 1024, (m) => m.bytes.length + 200)
  /**
   * `repo@digest` → when this process found or wrote the revision link. As blobs' recent links (the
   * same RECENT_LINK_MS), only a push's check of an index's children trusts it, and not past a GC
   * run this process saw since (the fence's epoch): GET and HEAD always ask.
   */
  const revisions = new LruCache<string, { seenAt: number; epoch: number }>(50_000)
  /** A referrer entry's path → its descriptor (immutable: see `referrers`), bounded by its JSON's size. */
  const referrerDescriptors = new LruCache<string, Descriptor>(8 * 1024 * 1024, (d) => JSON.stringify(d).length + 200)
  const epoch = () => fence?.epoch() ?? 0
  const sawRevision = (repo: string, digest: Digest, at: number) => revisions.set(`${repo}@${digest.value}`, { seenAt: Date.now(), epoch: at })

  async function resolveTag(repo: string, tag: string): Promise<Digest | undefined> {
    const link = await driver.getContent(paths.tagCurrentLink(repo, tag))
    return link ? tryParseDigest(link.toString('utf8').trim()) : undefined
  }

  async function hasRevision(repo: string, digest: Digest, forPush = false): Promise<boolean> {
    const seen = revisions.get(`${repo}@${digest.value}`)
    if (forPush && seen !== undefined && seen.epoch === epoch() && Date.now() - seen.seenAt < RECENT_LINK_MS) return true
    const at = epoch()
    const found = (await driver.stat(paths.revisionLink(repo, digest), 'file')) !== undefined
    if (found) sawRevision(repo, digest, at)
    else revisions.delete(`${repo}@${digest.value}`)
    return found
  }

  async function load(digest: Digest): Promise<StoredManifest | undefined> {
    const cached = cache.get(digest.value)
    if (cached) return cached
    const bytes = await driver.getContent(paths.blobData(digest))
    if (!bytes) return undefined
    const manifest = { digest, bytes, mediaType: mediaTypeOf(bytes) }
    cache.set(digest.value, manifest)
    return manifest
  }

  async function digestOfRef(repo: string, ref: Reference): Promise<Digest | undefined> {
    if (ref.kind === 'tag') return resolveTag(repo, ref.tag)
    return (await hasRevision(repo, ref.digest)) ? ref.digest : undefined
  }

  return {
    async get(repo, ref) {
      const digest = await digestOfRef(repo, ref)
      return digest ? load(digest) : undefined
    },

    async put(repo, ref, bytes, contentType) {
      const parsed = parseManifest(bytes, contentType)
      const digest = digestOf(bytes, ref.kind === 'digest' ? ref.digest.algorithm : 'sha256')
      if (ref.kind === 'digest' && ref.digest.hex !== digest.hex) {
        throw new RegistryError('DIGEST_INVALID', `manifest body has digest ${digest.value}, not ${ref.digest.value} as in the URL`, {
          expected: ref.digest.value, actual: digest.value,
        })
      }
      const referrerDescriptor: Descriptor | undefined = parsed.subject
        ? {
            mediaType: parsed.mediaType, digest: digest.value, size: bytes.length,
            ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
            ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
          }
        : undefined
      const links = () => [
        paths.revisionLink(repo, digest),
        ...(parsed.subject ? [paths.referrer(repo, parsed.subject, digest)] : []),
      ]
      let tagStaged: StagedContent | undefined
      let tagStaging: Promise<StagedContent | undefined> | undefined

      /**
       * Checks the references and stores the manifest, treating blobs that garbage collection
       * decided to delete as missing (gc-protocol.ts). Attempt 2 or 3 runs only when attempt 1 took
       * so long that a GC run may have begun unseen, and one did doom a blob: then the links it
       * wrote are taken back before the PUT is refused.
       */
      const store = async (doomed: Set<string>, attempt: number): Promise<void> => {
        // spec: every blob and child manifest the manifest references must already be in this repository.
        const checks = await Promise.all([
          ...parsed.blobs.map(async (d) => ({ d, kind: 'blob', ok: !doomed.has(d.value) && (await blobs.statForPush(repo, d)) !== undefined })),
          ...parsed.manifests.map(async (d) => ({ d, kind: 'manifest', ok: !doomed.has(d.value) && await hasRevision(repo, d, true) })),
        ])
        const missing = checks.filter((c) => !c.ok)
        if (missing.length > 0) {
          if (attempt > 1) await Promise.all(links().map((l) => driver.delete(l.replace(/\/link$/, ''))))
          const list = missing.slice(0, 5).map((c) => `${c.kind} ${c.d.value}`).join(', ')
          throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length === 1 ? 'a' : missing.length} ${missing.length === 1 ? 'thing' : 'things'} not in repository ${repo}: ${list}${missing.length > 5 ? ', …' : ''}; push ${missing.length === 1 ? 'it' : 'them'} first`, {
            digests: missing.map((c) => c.d.value),
          })
        }
        if (doomed.has(digest.value)) await fence?.awaitDeletion(digest)

        const target = paths.blobData(digest)
        // The bytes and the tag's new value reach the disk together (one wait for a flush, not two);
        // then they appear in an order that keeps every link pointing at stored bytes, whatever
        // moment a crash picks: bytes, revision (and referrer) links, the tag.
        // The tag's history (tags/<tag>/index/, which distribution writes) is not written: neither
        // distribution nor enlil ever reads it, and it was 4 of a tagged PUT's 11 new files and folders.
        tagStaging ??= ref.kind === 'tag' ? driver.stageContent(paths.tagCurrentLink(repo, ref.tag), digest.value) : undefined
        // Bytes this process has not seen are written without asking whether they are stored (a
        // new manifest, the common case: one request, not two); rewriting the same bytes is harmless.
        const known = cache.get(digest.value) !== undefined
        const [bytesStaged, tag] = await stageAll([
          known ? driver.stat(target, 'file').then((stored) => (stored ? undefined : driver.stageContent(target, bytes))) : driver.stageContent(target, bytes),
          tagStaging,
        ])
        tagStaged = tag
        try {
          await bytesStaged?.publish()
          const writes: Promise<void>[] = [driver.putOnce(paths.revisionLink(repo, digest), digest.value)]
          if (parsed.subject) writes.push(driver.putOnce(paths.referrer(repo, parsed.subject, digest), JSON.stringify(referrerDescriptor)))
          await Promise.all(writes)
        } catch (err) {
          await tagStaged?.discard()
          throw err
        }
      }

      const used = [digest, ...parsed.blobs, ...parsed.manifests]
      const putEpoch = epoch()
      try {
        await (fence ? fence.use(used, store) : store(new Set(), 1))
      } catch (err) {
        await (tagStaged ?? (await tagStaging?.catch(() => undefined)))?.discard().catch(() => {})
        throw err
      }
      await tagStaged?.publish()
      cache.set(digest.value, { digest, bytes, mediaType: parsed.mediaType })
      sawRevision(repo, digest, putEpoch)
      return { digest, mediaType: parsed.mediaType, ...(parsed.subject ? { subject: parsed.subject } : {}) }
    },

    async delete(repo, ref) {
      if (ref.kind === 'tag') {
        if (!(await resolveTag(repo, ref.tag))) throw manifestUnknown(repo, ref)
        await driver.delete(paths.tag(repo, ref.tag))
        return
      }
      const digest = ref.digest
      revisions.delete(`${repo}@${digest.value}`)
      if (!(await hasRevision(repo, digest))) throw manifestUnknown(repo, ref)
      revisions.delete(`${repo}@${digest.value}`)
      const manifest = await load(digest)
      if (manifest) {
        try {
          const parsed = parseManifest(manifest.bytes, manifest.mediaType)
          if (parsed.subject) await driver.delete(paths.referrer(repo, parsed.subject, digest))
        } catch {
          // A manifest we can't parse (written by another registry) has no referrer entry of ours.
        }
      }
      await driver.delete(paths.revision(repo, digest))
      // Like distribution: tags pointing at a deleted manifest go with it.
      const tags = await driver.list(paths.tags(repo))
      await Promise.all(tags.map(async (tag) => {
        if ((await resolveTag(repo, tag))?.value === digest.value) await driver.delete(paths.tag(repo, tag))
      }))
    },

    async tags(repo, page) {
      const names = await driver.list(paths.tags(repo))
      if (names.length === 0 && !(await driver.stat(paths.repository(repo)))) return undefined
      return paginate(names, page)
    },

    async referrers(repo, subject, artifactType) {
      // The listing says which referrers there are now; each entry's descriptor is derived from its
      // manifest's bytes, so it never changes while it exists: read once, then from memory.
      const entries = await driver.list(paths.referrers(repo, subject))
      const descriptors = (await Promise.all(entries.sort().map(async (entry) => {
        const path = `${paths.referrers(repo, subject)}/${entry}`
        const known = referrerDescriptors.get(path)
        if (known) return known
        const body = await driver.getContent(path)
        if (!body) return undefined
        try {
          const descriptor = JSON.parse(body.toString('utf8')) as Descriptor
          referrerDescriptors.set(path, descriptor)
          return descriptor
        } catch {
          return undefined
        }
      }))).filter((d): d is Descriptor => d !== undefined)
      if (artifactType === undefined) return { descriptors, filtered: false }
      return { descriptors: descriptors.filter((d) => d.artifactType === artifactType), filtered: true }
    },
  }
}

/** Stages every write or none: when one fails, those that succeeded are discarded. */
async function stageAll(writes: (Promise<StagedContent | undefined> | undefined)[]): Promise<(StagedContent | undefined)[]> {
  const settled = await Promise.allSettled(writes.map((w) => w ?? Promise.resolve(undefined)))
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  const staged = settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined))
  if (!failure) return staged
  await Promise.all(staged.map((s) => s?.discard()))
  throw failure.reason
}

/** Sorted names after `last`, at most `n` (n = 0 gives none, as the spec allows). */
export function paginate(names: string[], page: { n?: number; last?: string }): string[] {
  const sorted = names.sort()
  const start = page.last === undefined ? 0 : upperBound(sorted, page.last)
  return sorted.slice(start, page.n === undefined ? undefined : start + page.n)
}

function upperBound(sorted: string[], value: string): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! <= value) lo = mid + 1
    else hi = mid
  }
  return lo
}

function manifestUnknown(repo: string, ref: Reference): RegistryError {
  const what = ref.kind === 'tag' ? `tag ${ref.tag}` : `manifest ${ref.digest.value}`
  return new RegistryError('MANIFEST_UNKNOWN', `${what} is not in repository ${repo}`, ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest.value })
}

