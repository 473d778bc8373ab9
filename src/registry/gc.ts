/**
 * @module Garbage collection: keep every blob a kept manifest reaches, delete the rest of `blobs/`.
 *
 * Works on distribution's layout through the driver's list/stat/getContent/delete (and createOnce
 * for the protocol with pushes), so a folder or bucket that `registry:2` filled is collected the
 * same way. The run, in order:
 *
 * 0. The run is published (gc-protocol.ts): from now on every push that uses a blob records it.
 * 1. Per repository: retention policies drop tags; then the kept manifests are marked: tag targets,
 *    every revision (or, with delete-untagged, only revisions younger than the grace period), and,
 *    recursively, index children, subjects and referrers of kept manifests. Each kept manifest's own
 *    digest, config and layers go into one Set of digests. With delete-untagged, the other revisions
 *    are unlinked (the tags' history entries and referrer entries with them).
 * 2. `blobs/` is listed; a blob not marked whose bytes were written before `start - grace` is a
 *    candidate. Only candidates are stat'ed: the cost of a run grows with the garbage, not the store.
 * 3. Once every push that could not see the run has landed (the protocol's settle time), every
 *    repository is listed again: revisions and tags that appeared since step 1 are marked too, which
 *    takes their blobs out of the candidates. The layer links of candidates are stat'ed: a link
 *    written or touched (a HEAD, a mount, an upload) within the grace period keeps its blob.
 *    Layer links to bytes that are gone are noted.
 * 4. The remaining candidates are written as batches of a thousand and decided at once
 *    (gc-protocol.ts): a blob a push used meanwhile stays. Per batch, the links go, then the bytes
 *    (one DeleteObjects request per thousand keys on S3). Dangling links older than grace go too.
 * Listing uses the store's flat `scan` where it has one (S3: a thousand keys with sizes and times
 * per request), so neither candidates nor their links are stat'ed one by one.
 *
 * So a blob a push linked, mounted or was told exists (HEAD 200) within the grace period or during
 * the run is never deleted, and a manifest PUT never succeeds referencing a blob this deletes, on
 * any number of processes and instances: gc-protocol.ts has the argument.
 */
import { tryParseDigest, type Digest } from '../oci/digest.js'
import type { ScannedKey, StorageDriver } from '../storage/driver.js'
import { LruCache } from './cache.js'
import { createCatalog } from './catalog.js'
import { type CatalogIndexOptions, createCatalogIndex } from './catalog-index.js'
import { forEachLimit, mapLimit } from './parallel.js'
import { BATCH_SIZE, type GcRunOptions, startGcRun } from './gc-protocol.js'
import { BLOBS, paths } from './paths.js'
import { planRetention, policyFor, type RetentionPolicy } from './retention.js'

export interface GcOptions {
  /** Blobs, links and revisions modified less than this many milliseconds before the run started stay. */
  graceMs: number
  /** Decide and report, delete nothing. */
  dryRun?: boolean
  /** Also remove manifest revisions that no tag reaches (never a child, subject or referrer of a kept one). */
  deleteUntagged?: boolean
  retention?: readonly RetentionPolicy[]
  /** Whether a policy may remove tags of this repository at all (a pull-through cache keeps catch-alls off its copies); all may by default. */
  retentionApplies?: (policy: RetentionPolicy, repo: string) => boolean
  /** Phase and count lines, for a human watching. */
  progress?: (message: string) => void
  /** Everything deleted (or that would be, in a dry run), as it is decided. */
  onDelete?: (item: GcItem) => void
  /** Each batch of blobs deleted (a thousand at most), as it finishes: live progress for metrics. */
  onBatch?: (blobs: number, bytes: number) => void
  /** Store requests in flight. */
  concurrency?: number
  now?: () => Date
  /** Clocks, settle time and lease of the protocol with pushes (tests). */
  protocol?: GcRunOptions
  /** Points where tests hold the run to force an interleaving with pushes. */
  hooks?: GcHooks
  /** A pull-through cache's eviction (mirror/eviction.ts): repositories dropped before marking. */
  evict?: Eviction
  /** Clocks of the catalog index, whose leftover markers a run removes (tests). */
  catalogIndex?: CatalogIndexOptions
}

/**
 * Repositories a pull-through cache gives up (least recently pulled first). They are dropped once
 * the run is published and before anything is marked, exactly as a client's DELETE of their
 * manifests would, so this run collects the blobs only they held; the protocol with pushes and
 * pulls through (gc-protocol.ts) is the same for every blob.
 */
export interface Eviction {
  plan(): Promise<readonly string[]>
  /** Removes the repository's tags, manifests and links; false when it stays after all (pulled since the plan). */
  drop(name: string): Promise<boolean>
}

export interface GcHooks {
  /** The run is published; nothing is marked yet. */
  published?: () => Promise<void>
  /** Candidates are listed; the settle wait comes next. */
  listed?: (candidates: readonly string[]) => Promise<void>
  /** Repositories were listed again and links stat'ed: the decisions come next. */
  rechecked?: (doomed: readonly string[]) => Promise<void>
  /** A blob was decided: `deleting` false when a push kept it. */
  decided?: (digest: string, deleting: boolean) => Promise<void>
}

export type GcItem =
  | { kind: 'tag'; repo: string; tag: string; pushedAt: Date }
  | { kind: 'manifest'; repo: string; digest: string }
  | { kind: 'blob'; digest: string; size: number }
  | { kind: 'layer-link'; repo: string; digest: string }
  | { kind: 'evicted'; repo: string }

export interface GcSummary {
  dryRun: boolean
  repositories: number
  /** Manifest revisions seen in step 1. */
  manifests: number
  blobsScanned: number
  blobsDeleted: number
  bytesFreed: number
  /** Unreferenced blobs left alone because they, or a link to them, were written or used within the grace period. */
  blobsInGrace: number
  /** Unreferenced blobs kept because a push used them while the run decided. */
  blobsReused: number
  tagsDeleted: number
  manifestsDeleted: number
  layerLinksDeleted: number
  /** Mirrored repositories dropped by the eviction (options.evict). */
  repositoriesEvicted: number
  durationMs: number
}

/** What a manifest points at, by digest string. */
interface References {
  blobs: string[]
  manifests: string[]
  subject?: string
}

const NO_REFERENCES: References = { blobs: [], manifests: [] }

/**
 * The digests a stored manifest references, read leniently: OCI and Docker schema 2 images and
 * indexes, and Docker schema 1 (`fsLayers`, which distribution 2.8 folders may hold). Bytes that are
 * not JSON reference nothing.
 */
export function referencesOf(bytes: Uint8Array): References {
  let body: unknown
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    return NO_REFERENCES
  }
  if (typeof body !== 'object' || body === null) return NO_REFERENCES
  const m = body as Record<string, unknown>
  const digestIn = (d: unknown, key = 'digest'): string | undefined => {
    const value = typeof d === 'object' && d !== null ? (d as Record<string, unknown>)[key] : undefined
    return typeof value === 'string' ? tryParseDigest(value)?.value : undefined
  }
  const all = (list: unknown, key = 'digest') => (Array.isArray(list) ? list.map((d) => digestIn(d, key)).filter((d): d is string => d !== undefined) : [])
  const config = digestIn(m.config)
  return {
    blobs: [...(config ? [config] : []), ...all(m.layers), ...all(m.fsLayers, 'blobSum')],
    manifests: all(m.manifests),
    subject: digestIn(m.subject),
  }
}

/** Digests under a `<alg>/<hex>` folder (revisions, layers, referrer subjects). */
async function listDigests(driver: StorageDriver, folder: string): Promise<Digest[]> {
  const out: Digest[] = []
  for (const algorithm of await driver.list(folder)) {
    for (const hex of await driver.list(`${folder}/${algorithm}`)) {
      const d = tryParseDigest(`${algorithm}:${hex}`)
      if (d) out.push(d)
    }
  }
  return out
}

/** Every key under a folder with its size and time, page by page (stores with `scan`). */
async function* scanAll(driver: StorageDriver, folder: string): AsyncGenerator<ScannedKey> {
  let after: string | undefined
  for (let page = 0; page < 10_000_000; page++) {
    const { entries, next } = await driver.scan!(folder, after)
    yield* entries
    if (next === undefined) return
    after = next
  }
}

/** Deletes small objects: in batches where the store has them, else each one's folder. */
async function deleteObjects(driver: StorageDriver, objects: readonly { file: string; folder: string }[], concurrency: number): Promise<void> {
  if (objects.length === 0) return
  if (driver.deleteFiles) await driver.deleteFiles(objects.map((o) => o.file))
  else await forEachLimit(objects, concurrency, (o) => driver.delete(o.folder))
}

export async function collectGarbage(driver: StorageDriver, options: GcOptions): Promise<GcSummary> {
  const started = (options.now ?? (() => new Date()))()
  // A positive grace gets two seconds on top: S3 keeps whole-second times, and a use rewrites a
  // link only when it is older than a second (gc-protocol.ts TOUCH_AFTER_MS).
  const cutoff = started.getTime() - options.graceMs - (options.graceMs > 0 ? 2000 : 0)
  const dryRun = options.dryRun ?? false
  const concurrency = options.concurrency ?? 16
  const progress = options.progress ?? (() => {})
  const emit = options.onDelete ?? (() => {})
  const summary: GcSummary = {
    dryRun, repositories: 0, manifests: 0, blobsScanned: 0, blobsDeleted: 0, bytesFreed: 0, blobsInGrace: 0, blobsReused: 0,
    tagsDeleted: 0, manifestsDeleted: 0, layerLinksDeleted: 0, repositoriesEvicted: 0, durationMs: 0,
  }

  /** Digests of everything kept: manifests, configs, layers, subjects. The only structure that grows with the store. */
  const marked = new Set<string>()
  /** Manifests whose references are in `marked` already. */
  const traversed = new Set<string>()
  /** `repo@digest` of revisions left out in a dry run's step 1: step 3 must not count them back in. */
  const untaggedDecided = new Set<string>()
  /** `repo@digest` of revisions step 1 unlinked (not in a dry run). */
  const unlinked = new Set<string>()
  /** `repo/tag` of tags a dry run's retention would remove. */
  const tagsDecided = new Set<string>()
  const cache = new LruCache<string, References>(100_000)
  /** `repo@digest` → when its layer link was written or last touched, from step 3's listing (stores with `scan`). */
  const linkTimes = new Map<string, Date>()

  async function references(d: string): Promise<References> {
    const cached = cache.get(d)
    if (cached) return cached
    const digest = tryParseDigest(d)
    const bytes = digest ? await driver.getContent(paths.blobData(digest)) : undefined
    // Missing bytes (a broken link) reference nothing; a store error rejects and stops the run.
    const refs = bytes ? referencesOf(bytes) : NO_REFERENCES
    cache.set(d, refs)
    return refs
  }

  /** Tag name → digest string of its current link. */
  async function readTags(repo: string): Promise<Map<string, string>> {
    const names = (await driver.list(paths.tags(repo))).filter((t) => !tagsDecided.has(`${repo}/${t}`))
    const targets = await mapLimit(names, concurrency, async (tag) => {
      const link = await driver.getContent(paths.tagCurrentLink(repo, tag))
      return link ? tryParseDigest(link.toString('utf8').trim())?.value : undefined
    })
    const out = new Map<string, string>()
    names.forEach((tag, i) => { if (targets[i]) out.set(tag, targets[i]!) })
    return out
  }

  /**
   * Adds to `kept` every manifest of the repository reachable from `roots`: index children, subjects
   * and referrers that are revisions of this repository. Roots are read whatever they are (a tag may
   * point at bytes without a revision link, and distribution still serves it).
   */
  async function keep(repo: string, roots: Iterable<string>, revisions: Set<string>, kept: Set<string>, subjectsWithReferrers: Set<string>, skip?: Set<string>): Promise<void> {
    const fresh = (d: string) => !kept.has(d) && !skip?.has(d)
    let frontier = [...new Set(roots)].filter(fresh)
    while (frontier.length > 0) {
      for (const d of frontier) kept.add(d)
      const next: string[] = []
      await forEachLimit(frontier, concurrency, async (d) => {
        marked.add(d)
        const refs = await references(d)
        for (const b of refs.blobs) marked.add(b)
        for (const child of refs.manifests) {
          marked.add(child)
          if (revisions.has(child)) next.push(child)
        }
        // A kept referrer keeps its subject: a signature is no use without what it signs.
        if (refs.subject) {
          marked.add(refs.subject)
          if (revisions.has(refs.subject)) next.push(refs.subject)
        }
        traversed.add(d)
        // A kept manifest keeps its referrers (signatures, SBOMs), tagged or not.
        if (subjectsWithReferrers.has(d)) {
          const digest = tryParseDigest(d)!
          for (const entry of await driver.list(paths.referrers(repo, digest))) {
            const referrer = tryParseDigest(entry.replace('-', ':'))?.value
            if (referrer && revisions.has(referrer)) next.push(referrer)
          }
        }
      })
      frontier = [...new Set(next)].filter(fresh)
    }
  }

  /** Unlinks an untagged revision: its link, its tag-history entries, its referrer entry and its referrers folder. */
  async function removeRevision(repo: string, d: Digest, history: Map<string, string[]>): Promise<void> {
    const refs = await references(d.value)
    const subject = refs.subject ? tryParseDigest(refs.subject) : undefined
    await Promise.all([
      driver.delete(paths.revision(repo, d)),
      driver.delete(paths.referrers(repo, d)),
      ...(subject ? [driver.delete(paths.referrer(repo, subject, d))] : []),
      ...(history.get(d.value) ?? []).map((tag) => driver.delete(paths.tagIndexLink(repo, tag, d).replace(/\/link$/, ''))),
    ])
  }

  /**
   * Revisions whose link exists, with its modified time. distribution deletes a manifest by removing
   * the link file only, leaving the folder behind on a filesystem: such a folder is no revision.
   */
  async function linkedRevisions(repo: string, among?: (d: Digest) => boolean): Promise<Map<string, { digest: Digest; modifiedAt: Date }>> {
    const names = (await listDigests(driver, paths.revisions(repo))).filter((d) => among?.(d) ?? true)
    const infos = await mapLimit(names, concurrency, (d) => driver.stat(paths.revisionLink(repo, d)))
    const out = new Map<string, { digest: Digest; modifiedAt: Date }>()
    names.forEach((d, i) => {
      const info = infos[i]
      if (info && !info.isDirectory) out.set(d.value, { digest: d, modifiedAt: info.modifiedAt })
    })
    return out
  }

  /** Step 1 for one repository. */
  async function markRepository(repo: string): Promise<void> {
    const applies = options.retentionApplies
    const policy = options.retention ? policyFor(applies ? options.retention.filter((p) => applies(p, repo)) : options.retention, repo) : undefined
    if (policy) {
      for (const expired of await planRetention(driver, repo, policy, started, concurrency)) {
        emit({ kind: 'tag', repo, tag: expired.tag, pushedAt: expired.pushedAt })
        summary.tagsDeleted++
        if (dryRun) tagsDecided.add(`${repo}/${expired.tag}`)
        else await driver.delete(paths.tag(repo, expired.tag))
      }
    }
    const tags = await readTags(repo)
    const linked = await linkedRevisions(repo)
    const revisions = new Set(linked.keys())
    summary.manifests += revisions.size
    const kept = new Set<string>()
    // Every revision is a root: referrers are revisions, so they need no lookup.
    if (!options.deleteUntagged) return keep(repo, [...tags.values(), ...revisions], revisions, kept, new Set())
    const subjectsWithReferrers = new Set((await listDigests(driver, paths.referrersRoot(repo))).map((d) => d.value))
    await keep(repo, tags.values(), revisions, kept, subjectsWithReferrers)
    // A revision written less than grace ago may be a push in progress (its tag comes next): a root.
    const untagged = [...linked.values()].filter((r) => !kept.has(r.digest.value))
    const young = untagged.filter((r) => r.modifiedAt.getTime() >= cutoff).map((r) => r.digest.value)
    await keep(repo, young, revisions, kept, subjectsWithReferrers)
    const doomed = untagged.filter((r) => !kept.has(r.digest.value)).map((r) => r.digest)
    if (doomed.length === 0) return
    // Which tags' histories mention each doomed revision: one listing per tag, only when needed.
    const history = new Map<string, string[]>()
    if (!dryRun) {
      await forEachLimit(await driver.list(paths.tags(repo)), concurrency, async (tag) => {
        for (const d of await listDigests(driver, `${paths.tag(repo, tag)}/index`)) {
          const list = history.get(d.value) ?? []
          list.push(tag)
          history.set(d.value, list)
        }
      })
    }
    await forEachLimit(doomed, concurrency, async (d) => {
      emit({ kind: 'manifest', repo, digest: d.value })
      summary.manifestsDeleted++
      if (dryRun) untaggedDecided.add(`${repo}@${d.value}`)
      else {
        unlinked.add(`${repo}@${d.value}`)
        await removeRevision(repo, d, history)
      }
    })
  }

  /** Step 3 for one repository: marks what was pushed since step 1; notes layer links that may go. */
  async function markAgain(repo: string, suspectLinks: { repo: string; digest: Digest }[]): Promise<void> {
    const tags = await readTags(repo)
    // Only revisions not seen yet need their link checked.
    const seen = (d: Digest) => traversed.has(d.value) || untaggedDecided.has(`${repo}@${d.value}`)
    const added = await linkedRevisions(repo, (d) => !seen(d))
    const revisions = new Set(added.keys())
    for (const [tag, target] of tags) {
      if (revisions.has(target) || !unlinked.has(`${repo}@${target}`)) continue
      // A tag moved onto a revision that step 1 unlinked as untagged: put the link back.
      const digest = tryParseDigest(target)!
      if (await driver.stat(paths.blobData(digest))) {
        await driver.putOnce(paths.revisionLink(repo, digest), digest.value)
        progress(`gc: ${repo}:${tag} now points at ${target}, unlinked earlier in this run: link restored`)
      }
    }
    const roots = [...tags.values(), ...revisions].filter((d) => !traversed.has(d) && !untaggedDecided.has(`${repo}@${d}`))
    const reached = new Set<string>()
    if (roots.length > 0) await keep(repo, roots, revisions, reached, new Set(), traversed)
    // An index (or referrer) pushed meanwhile names a manifest that step 1 unlinked as untagged:
    // put its link back, or the new manifest would point at nothing.
    for (const d of reached) {
      const refs = await references(d)
      for (const child of [...refs.manifests, ...(refs.subject ? [refs.subject] : [])]) {
        if (!unlinked.has(`${repo}@${child}`)) continue
        const digest = tryParseDigest(child)!
        unlinked.delete(`${repo}@${child}`)
        await driver.putOnce(paths.revisionLink(repo, digest), digest.value)
        progress(`gc: ${repo}@${d} names ${child}, unlinked earlier in this run: link restored`)
      }
    }
    if (driver.scan) {
      // One listing gives the links and their times: no stat per candidate link.
      for await (const entry of scanAll(driver, paths.layers(repo))) {
        const [algorithm, hex, file] = entry.key.split('/')
        const d = file === 'link' ? tryParseDigest(`${algorithm}:${hex}`) : undefined
        if (!d || marked.has(d.value)) continue
        suspectLinks.push({ repo, digest: d })
        linkTimes.set(`${repo}@${d.value}`, entry.modifiedAt)
      }
      return
    }
    for (const d of await listDigests(driver, paths.layers(repo))) {
      if (!marked.has(d.value)) suspectLinks.push({ repo, digest: d })
    }
  }

  /** When a layer link was written or last touched; undefined when it is gone. */
  async function linkTime(repo: string, digest: Digest): Promise<Date | undefined> {
    return linkTimes.get(`${repo}@${digest.value}`) ?? (await driver.stat(paths.layerLink(repo, digest), 'file'))?.modifiedAt
  }

  // Published before anything is marked: every push from here on records what it uses.
  const run = dryRun ? undefined : await startGcRun(driver, options.protocol)
  try {
    if (run) await options.hooks?.published?.()
    await sweep(run)
  } catch (err) {
    // The run's error is the one to report, not a store that also refuses the run's record.
    await run?.finish().catch(() => {})
    throw err
  }
  await run?.finish()
  if (!dryRun) await reconcileCatalog()
  summary.durationMs = Date.now() - started.getTime()
  if (!dryRun) {
    const record = { ...summary, startedAt: started.toISOString(), finishedAt: new Date().toISOString() }
    await driver.putContent(paths.gcLastRun, JSON.stringify(record)).catch((err: unknown) => progress(`gc: could not record the run's summary: ${(err as Error).message}`))
  }
  return summary

  /** The catalog index made to match the store after the run (catalog-index.ts): a fresh walk. */
  async function reconcileCatalog(): Promise<void> {
    const index = createCatalogIndex(driver, options.catalogIndex)
    const existing = new Set<string>()
    for await (const repo of createCatalog(driver, index).walk()) existing.add(repo)
    const { added, removed } = await index.reconcile(existing, progress)
    if (added + removed > 0) progress(`gc: catalog index: ${added} repositories added, ${removed} gone removed`)
  }

  async function sweep(run: Awaited<ReturnType<typeof startGcRun>> | undefined): Promise<void> {
    if (options.evict) {
      for (const repo of await options.evict.plan()) {
        if (!dryRun && !(await options.evict.drop(repo))) continue
        emit({ kind: 'evicted', repo })
        summary.repositoriesEvicted++
      }
    }
    const repositories: string[] = []
    for await (const repo of createCatalog(driver).walk()) repositories.push(repo)
    summary.repositories = repositories.length
    progress(`gc: ${dryRun ? 'dry run: ' : ''}marking ${repositories.length} repositories (grace ${Math.round(options.graceMs / 1000)} s${options.deleteUntagged ? ', deleting untagged manifests' : ''})`)
    let done = 0
    await forEachLimit(repositories, Math.max(1, Math.floor(concurrency / 4)), async (repo) => {
      await markRepository(repo)
      if (++done % 100 === 0) progress(`gc: marked ${done}/${repositories.length} repositories, ${marked.size} digests in use`)
    })
    progress(`gc: marked ${marked.size} digests in use in ${repositories.length} repositories (${summary.manifests} manifests); listing blobs`)

    // Step 2: candidates are unmarked blobs older than grace.
    const candidates = new Map<string, { digest: Digest; size: number }>()
    const young = new Set<string>()
    const note = (d: Digest, size: number, modifiedAt: Date) => {
      if (modifiedAt.getTime() >= cutoff) young.add(d.value)
      else candidates.set(d.value, { digest: d, size })
    }
    const listed = () => { if (++summary.blobsScanned % 10_000 === 0) progress(`gc: listed ${summary.blobsScanned} blobs`) }
    for (const algorithm of await driver.list(BLOBS)) {
      const prefixes = await driver.list(`${BLOBS}/${algorithm}`)
      await forEachLimit(prefixes, Math.max(1, Math.floor(concurrency / 4)), async (prefix) => {
        const folder = `${BLOBS}/${algorithm}/${prefix}`
        if (driver.scan) {
          // A flat listing carries sizes and times: no stat per candidate.
          for await (const entry of scanAll(driver, folder)) {
            const [hex, file] = entry.key.split('/')
            const d = file === 'data' ? tryParseDigest(`${algorithm}:${hex}`) : undefined
            if (!d) continue
            listed()
            if (!marked.has(d.value)) note(d, entry.size, entry.modifiedAt)
          }
          return
        }
        const unmarked: Digest[] = []
        for (const hex of await driver.list(folder)) {
          const d = tryParseDigest(`${algorithm}:${hex}`)
          if (!d) continue
          listed()
          if (!marked.has(d.value)) unmarked.push(d)
        }
        await forEachLimit(unmarked, Math.max(1, Math.floor(concurrency / 2)), async (d) => {
          const info = await driver.stat(paths.blobData(d))
          if (info && !info.isDirectory) note(d, info.size, info.modifiedAt)
        })
      })
    }
    summary.blobsInGrace = young.size
    progress(`gc: ${summary.blobsScanned} blobs, ${candidates.size} unreferenced and older than grace, ${young.size} unreferenced but younger; checking for pushes during the run`)

    if (run) await options.hooks?.listed?.([...candidates.keys()])
    // Every push that could not see the run has landed its links, revisions and tags by now (only
    // candidates can be deleted: with none there is nothing to wait for).
    if (candidates.size > 0) await run?.settled()

    // Step 3.
    const suspectLinks: { repo: string; digest: Digest }[] = []
    const again: string[] = []
    for await (const repo of createCatalog(driver).walk()) again.push(repo)
    await forEachLimit(again, Math.max(1, Math.floor(concurrency / 4)), (repo) => markAgain(repo, suspectLinks))
    /** Digest → repositories linking a candidate; a link written within grace keeps the blob. */
    const linksOf = new Map<string, string[]>()
    for (const { repo, digest } of suspectLinks) {
      if (candidates.has(digest.value)) linksOf.set(digest.value, [...(linksOf.get(digest.value) ?? []), repo])
    }
    await forEachLimit([...linksOf], concurrency, async ([d, repos]) => {
      if (marked.has(d)) return
      const times = await Promise.all(repos.map((repo) => linkTime(repo, candidates.get(d)!.digest)))
      if (times.some((t) => t && t.getTime() >= cutoff)) young.add(d)
    })
    const doomed = [...candidates.values()].filter((c) => !marked.has(c.digest.value) && !young.has(c.digest.value))
    summary.blobsInGrace = young.size
    if (run) await options.hooks?.rechecked?.(doomed.map((c) => c.digest.value))

    // Step 4: per blob, its links first, then its bytes, so that wherever a link is found its bytes
    // are still there (a HEAD asks for the link each time).
    await forEachLimit(suspectLinks, concurrency, async ({ repo, digest }) => {
      if (marked.has(digest.value) || young.has(digest.value) || candidates.has(digest.value)) return
      // Bytes not listed in step 2: gone (or written since, and then the link is young too).
      const link = await linkTime(repo, digest)
      if (!link || link.getTime() >= cutoff) return
      if (await driver.stat(paths.blobData(digest))) return
      run?.assertLease()
      emit({ kind: 'layer-link', repo, digest: digest.value })
      if (!dryRun) await driver.delete(paths.layer(repo, digest))
      summary.layerLinksDeleted++
    })
    const batches = run ? await run.decide(doomed.map((c) => c.digest)) : [{ id: 'dry run', deleting: doomed.map((c) => c.digest), kept: [] }]
    for (const batch of batches) {
      summary.blobsReused += batch.kept.length
      if (!options.hooks?.decided) continue
      for (const d of batch.kept) await options.hooks.decided(d.value, false)
      for (const d of batch.deleting) await options.hooks.decided(d.value, true)
    }
    const toDelete = batches.reduce((n, b) => n + b.deleting.length, 0)
    const deletingSince = Date.now()
    // A few batches at a time: each is a handful of requests of a thousand keys.
    await forEachLimit(batches, 4, async (batch) => {
      const blobs = batch.deleting.map((d) => candidates.get(d.value)!)
      const links = blobs.flatMap(({ digest }) => (linksOf.get(digest.value) ?? []).map((repo) => ({ repo, digest })))
      for (const { repo, digest } of links) emit({ kind: 'layer-link', repo, digest: digest.value })
      for (const { digest, size } of blobs) emit({ kind: 'blob', digest: digest.value, size })
      if (!dryRun) {
        // Links first, then bytes: wherever a link is found its bytes are still there (a HEAD asks
        // for the link each time).
        run?.assertLease()
        await deleteObjects(driver, links.map(({ repo, digest }) => ({ file: paths.layerLink(repo, digest), folder: paths.layer(repo, digest) })), concurrency)
        run?.assertLease()
        await deleteObjects(driver, blobs.map(({ digest }) => ({ file: paths.blobData(digest), folder: paths.blob(digest) })), concurrency)
        await run?.done(batch)
      }
      const bytes = blobs.reduce((n, b) => n + b.size, 0)
      summary.layerLinksDeleted += links.length
      summary.blobsDeleted += blobs.length
      summary.bytesFreed += bytes
      options.onBatch?.(blobs.length, bytes)
      if (toDelete >= BATCH_SIZE) {
        const seconds = Math.max(0.001, (Date.now() - deletingSince) / 1000)
        progress(`gc: ${dryRun ? 'would delete' : 'deleted'} ${summary.blobsDeleted}/${toDelete} blobs (${Math.round(summary.blobsDeleted / seconds)} per second)`)
      }
    })
  }
}

/** One line for logs and the CLI. */
export function formatSummary(s: GcSummary): string {
  const verb = s.dryRun ? 'would delete' : 'deleted'
  return `gc: ${s.dryRun ? 'dry run: ' : ''}${s.repositories} repositories, ${s.manifests} manifests, ${s.blobsScanned} blobs scanned; `
    + `${verb} ${s.blobsDeleted} blobs (${formatBytes(s.bytesFreed)}), ${s.tagsDeleted} tags, ${s.manifestsDeleted} manifests, ${s.layerLinksDeleted} layer links${s.repositoriesEvicted > 0 ? `, ${s.repositoriesEvicted} mirrored repositories evicted` : ''}; `
    + `${s.blobsInGrace} unreferenced blobs kept (written or used within grace)${s.blobsReused > 0 ? `, ${s.blobsReused} kept (used by a push during the run)` : ''}; ${(s.durationMs / 1000).toFixed(1)} s`
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]} (${n} bytes)`
}
