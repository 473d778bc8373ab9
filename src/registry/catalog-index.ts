/**
 * @module The catalog index: one empty object per repository under `_enlil/catalog/`, so that a
 * page of the catalog is one flat listing (1,000 names a request on S3, `StartAfter` = `last`)
 * instead of a walk through every repository's keys.
 *
 * - Written before a repository's first content: every write under `repositories/<name>/_layers`,
 *   `_manifests` or `_uploads` goes through `indexWrites`, which puts the marker first. A process
 *   remembers its "yes" for ENSURE_TTL_MS, so a busy repository costs one small PUT per process per
 *   TTL, not one per push; that bound is also what lets a removal be safe (below).
 * - Never trusted alone for what is gone: readers check the names of a page against the store
 *   (`exists`), so a repository whose content went away (deleted uploads, GC, eviction, another
 *   registry's writes) is never listed. Such leftover markers are removed by garbage collection
 *   (`reconcile`), which also adds the markers of repositories an older enlil or distribution made.
 * - Complete once `_enlil/catalog-built` exists: a store written before the index is walked once
 *   (`build`, in the background of the first catalog request), and the walk answers until then.
 *
 * Keys keep the catalog's order: a name's `/` is written `.~`. In names `/` sorts between `.` and
 * the digits, and no name holds `~`, so `.~` (after `.`+anything a name may hold, before a digit)
 * orders the keys exactly as the names, and decodes unambiguously. The index is flat, so it works on
 * the filesystem too, where `a` and `a/b` could not both be files.
 */
import { isName } from '../oci/names.js'
import type { StorageDriver } from '../storage/driver.js'
import { forEachLimit } from './parallel.js'
import { paths, REPOSITORIES, REPOSITORY_MARKERS } from './paths.js'
import { scanKeys } from './scan.js'

/** How long a process trusts that a repository's marker exists. A removal waits longer than this. */
export const ENSURE_TTL_MS = 60_000
/**
 * GC removes the marker of a repository gone only when no process wrote it for this long: the check
 * that follows a removal waits a trust, and a repository emptied a moment ago is often pushed again.
 */
export const REMOVE_IDLE_MS = 60 * 60_000
/** Markers a process remembers (a few MB at most). */
const ENSURE_CACHE_MAX = 50_000
/** How far the store's clock may be from ours, for the age of a marker. */
const CLOCK_SKEW_MS = 10_000
/** Marker writes in flight while building or reconciling. */
const WRITE_CONCURRENCY = 32

export const encodeName = (name: string): string => name.replaceAll('/', '.~')
export const decodeName = (key: string): string => key.replaceAll('.~', '/')

/**
 * The key to start a listing after so that every name greater than `last` comes after it, for any
 * `last` a client sends: characters from `~` on (which no name holds, and which could sort a name's
 * `.~` before them) end it. Names at or before `last` may still follow: readers filter them.
 */
export function seekKey(last: string): string {
  const at = [...last].findIndex((c) => c >= '~')
  return encodeName(at < 0 ? last : [...last].slice(0, at).join(''))
}

/** The repository a path under `repositories/` writes content of (a marker folder's), if any. */
export function repositoryOfWrite(path: string): string | undefined {
  if (!path.startsWith(`${REPOSITORIES}/`)) return undefined
  const parts = path.slice(REPOSITORIES.length + 1).split('/')
  const at = parts.findIndex((part) => part.startsWith('_'))
  if (at < 1 || !REPOSITORY_MARKERS.has(parts[at]!)) return undefined
  const name = parts.slice(0, at).join('/')
  return isName(name) ? name : undefined
}

export interface CatalogIndex {
  /** Puts the repository's marker unless this process did so within ENSURE_TTL_MS. */
  ensure(name: string): Promise<void>
  /** Whether the index holds every repository (the store was indexed, or made with the index). */
  complete(): Promise<boolean>
  /** Indexed names greater than `last`, in order (may include repositories gone since: check them). */
  names(last?: string): AsyncIterable<string>
  /** Whether the store holds the repository: a marker folder with something in it (what the walk finds). */
  exists(name: string): Promise<boolean>
  /** Indexes every repository a walk finds, then marks the index complete. Resolves to the names indexed. */
  build(walk: AsyncIterable<string>): Promise<number>
  /**
   * Makes the index match `existing`, a fresh walk of the store (GC): adds the missing markers and
   * removes the others, each removal checked again after ENSURE_TTL_MS (a process that believed the
   * marker was there may have written content meanwhile): a repository found then is indexed again.
   */
  reconcile(existing: ReadonlySet<string>, progress?: (message: string) => void): Promise<{ added: number; removed: number }>
}

export interface CatalogIndexOptions {
  /** ENSURE_TTL_MS, shorter in tests. */
  ttlMs?: number
  /** Time added to the TTL before a removal is checked again (requests still in flight). */
  settleMs?: number
  /** CLOCK_SKEW_MS, shorter in tests. */
  clockSkewMs?: number
  /** REMOVE_IDLE_MS, shorter in tests. */
  removeIdleMs?: number
  now?: () => number
}

export function createCatalogIndex(driver: StorageDriver, options: CatalogIndexOptions = {}): CatalogIndex {
  const ttl = options.ttlMs ?? ENSURE_TTL_MS
  const settle = options.settleMs ?? 5_000
  const skew = options.clockSkewMs ?? CLOCK_SKEW_MS
  const now = options.now ?? (() => performance.now())
  /** name → until when this process trusts its marker. Map order is insertion order: the oldest go first. */
  const ensured = new Map<string, number>()
  const pending = new Map<string, Promise<void>>()
  let built = false

  const markerOf = (name: string) => `${paths.catalogIndex}/${encodeName(name)}`

  async function put(name: string): Promise<void> {
    // The trust starts before the write: a removal that waits the TTL from its own delete covers it.
    const from = now()
    await driver.putOnce(markerOf(name), '')
    ensured.delete(name)
    ensured.set(name, from + ttl)
    if (ensured.size > ENSURE_CACHE_MAX) ensured.delete(ensured.keys().next().value!)
  }

  async function* listed(last: string | undefined): AsyncIterable<string> {
    const accept = (key: string): string | undefined => {
      if (key.includes('/')) return undefined
      const name = decodeName(key)
      return isName(name) && (last === undefined || name > last) ? name : undefined
    }
    if (driver.scan) {
      const after = last === undefined ? undefined : seekKey(last)
      for await (const { key } of scanKeys(driver.scan.bind(driver), paths.catalogIndex, after ? { after } : {})) {
        const name = accept(key)
        if (name !== undefined) yield name
      }
      return
    }
    const names = (await driver.list(paths.catalogIndex)).map(accept).filter((n): n is string => n !== undefined)
    yield* names.sort()
  }

  async function complete(): Promise<boolean> {
    if (!built) built = (await driver.stat(paths.catalogBuilt, 'file')) !== undefined
    return built
  }

  async function exists(name: string): Promise<boolean> {
    return (await driver.list(paths.repository(name))).some((child) => REPOSITORY_MARKERS.has(child))
  }

  return {
    ensure(name) {
      const until = ensured.get(name)
      if (until !== undefined && until > now()) return Promise.resolve()
      let p = pending.get(name)
      if (!p) {
        p = put(name).finally(() => pending.delete(name))
        pending.set(name, p)
      }
      return p
    },

    complete,

    names: listed,
    exists,

    async build(walk) {
      const names: string[] = []
      for await (const name of walk) if (isName(name)) names.push(name)
      await forEachLimit(names, WRITE_CONCURRENCY, async (name) => {
        if (!ensured.has(name)) await put(name)
      })
      await driver.putContent(paths.catalogBuilt, JSON.stringify({ builtAt: new Date().toISOString(), repositories: names.length }))
      built = true
      return names.length
    },

    async reconcile(existing, progress) {
      /** Indexed name → when its marker was last written. */
      const indexed = new Map<string, Date | undefined>()
      if (driver.scan) {
        for await (const { key, modifiedAt } of scanKeys(driver.scan.bind(driver), paths.catalogIndex)) {
          const name = decodeName(key)
          if (!key.includes('/') && isName(name)) indexed.set(name, modifiedAt)
        }
      } else {
        for await (const name of listed(undefined)) indexed.set(name, undefined)
      }
      const missing = [...existing].filter((name) => isName(name) && !indexed.has(name))
      await forEachLimit(missing, WRITE_CONCURRENCY, put)
      // Only markers of repositories the walk did not find and that no process wrote for
      // REMOVE_IDLE_MS (at least a trust, with room for clocks): one created since has a fresh marker.
      const oldBefore = Date.now() - Math.max(options.removeIdleMs ?? REMOVE_IDLE_MS, ttl + settle + skew)
      const gone: string[] = []
      await forEachLimit([...indexed].filter(([name]) => !existing.has(name)), WRITE_CONCURRENCY, async ([name, written]) => {
        const at = written ?? (await driver.stat(markerOf(name), 'file'))?.modifiedAt
        if (!at || at.getTime() > oldBefore || (await exists(name))) return
        await driver.delete(markerOf(name), 'file')
        ensured.delete(name)
        gone.push(name)
      })
      let removed = gone.length
      if (gone.length > 0) {
        progress?.(`gc: catalog index: ${gone.length} repositories gone; checking again in ${Math.round((ttl + settle) / 1000)} s that no push wrote to them meanwhile`)
        // A process that put the marker just before it was deleted trusts it for a TTL: whatever it
        // wrote meanwhile is there now, and its repository is indexed again.
        await new Promise((resolve) => setTimeout(resolve, ttl + settle))
        await forEachLimit(gone, WRITE_CONCURRENCY, async (name) => {
          if (!(await exists(name))) return
          await put(name)
          removed--
        })
      }
      if (!(await complete())) await driver.putContent(paths.catalogBuilt, JSON.stringify({ builtAt: new Date().toISOString(), repositories: existing.size }))
      built = true
      return { added: missing.length, removed }
    },
  }
}

/**
 * The driver with every write of a repository's content preceded by its catalog marker: the one
 * place the index is kept, whatever path (uploads, links, manifests, mounts, a mirror) writes.
 */
export function indexWrites(driver: StorageDriver, index: CatalogIndex): StorageDriver {
  const before = async (path: string): Promise<void> => {
    const name = repositoryOfWrite(path)
    if (name !== undefined) await index.ensure(name)
  }
  // Reads fall through to the driver itself (its prototype here), whatever kind of object it is.
  const writes: Partial<StorageDriver> = {
    async writeStream(path, body) {
      await before(path)
      return driver.writeStream(path, body)
    },
    async append(path, body, options) {
      await before(path)
      return driver.append(path, body, options)
    },
    async putContent(path, data) {
      await before(path)
      return driver.putContent(path, data)
    },
    async stageContent(path, data) {
      await before(path)
      return driver.stageContent(path, data)
    },
    async putOnce(path, data) {
      await before(path)
      return driver.putOnce(path, data)
    },
    async createOnce(path, data, options) {
      await before(path)
      return driver.createOnce(path, data, options)
    },
    async move(from, to) {
      await before(to)
      return driver.move(from, to)
    },
  }
  return Object.assign(Object.create(driver) as StorageDriver, writes)
}
