/**
 * @module Catalog: the repository listing, paged from the catalog index (catalog-index.ts) and
 * checked against the store; the walk of the repositories folder for stores not indexed yet, and
 * for what must see the store itself (GC, the index's build).
 */
import type { StorageDriver } from '../storage/driver.js'
import { type CatalogIndex, createCatalogIndex } from './catalog-index.js'
import { paginate } from './manifests.js'
import { mapLimit } from './parallel.js'
import { REPOSITORIES, REPOSITORY_MARKERS } from './paths.js'
import { type Scan, scanPages } from './scan.js'

export interface Catalog {
  /**
   * Repository names in lexical order after `last`, at most `n`, each checked against the store: from
   * the index, a request per thousand names plus one per name returned; a walk until it is built.
   */
  list(page: { n?: number; last?: string }): Promise<string[]>
  /** Every repository, in no particular order, each once: a walk of the store itself (GC, purges, mounts). */
  walk(): AsyncIterable<string>
  /**
   * Every repository's name, sorted, from the index once it is complete (else a walk): names of
   * repositories gone since may be among them, so check those shown with `existing`.
   */
  names(): Promise<string[]>
  /** Those of `names` the store holds, in the same order (a request per name, some at a time). */
  existing(names: readonly string[]): Promise<string[]>
  /** Builds the index of a store written without it (once per process at a time); resolves to the names indexed. */
  buildIndex(): Promise<number>
  readonly index: CatalogIndex
}

/** Bounds the walk: a name has at most 255 characters, so at most 128 path components. */
const MAX_DEPTH = 128
/** Listings of the catalog in flight at once. */
const SCAN_PARALLEL = 8
/** Existence checks in flight for one page. */
const CHECK_PARALLEL = 16
/** Listings of the repositories folder that confirm the names of a page before they are checked one by one. */
const CONFIRM_PAGES = 2
/** Names checked together when a page has no size. */
const CHECK_BATCH = 100

export interface CatalogOptions {
  /** Whether the index may be built now (not on a read-only store); yes by default. */
  mayBuild?: () => Promise<boolean>
}

/** After a failed build, the walk answers this long before another build is tried. */
const BUILD_RETRY_MS = 60_000

export function createCatalog(driver: StorageDriver, index: CatalogIndex = createCatalogIndex(driver), options: CatalogOptions = {}): Catalog {
  /**
   * Repositories from a flat listing of the keys under `repositories/<folder>` (S3), names given
   * with `folder` in front: a repository is the part of a key before its first `_` component
   * (names can't start with `_`), when that component is a marker. Its own keys sort together
   * (`<name>/_…`), so once a page ends among them the next starts after `<name>/_~`: one request
   * covers as many repositories as fit in a page, and one with many layers costs at most one more.
   * `more` is set when it stopped after `pages` pages.
   */
  async function scanFolder(scan: Scan, folder: string, pages?: number): Promise<{ names: string[]; more: boolean }> {
    const names: string[] = []
    const base = folder ? `${REPOSITORIES}/${folder}` : REPOSITORIES
    let last: string | undefined
    let insideOf: string | undefined
    const resume = (next: string) => (insideOf !== undefined ? `${insideOf}/_~` : next)
    for await (const { entries, more } of scanPages(scan, base, { ...(pages ? { maxPages: pages } : {}), resume })) {
      for (const { key } of entries) {
        const parts = key.split('/')
        const at = parts.findIndex((part) => part.startsWith('_'))
        insideOf = undefined
        if (at < (folder ? 0 : 1) || at > MAX_DEPTH) continue
        const local = parts.slice(0, at).join('/')
        if (local === last) insideOf = local
        else if (REPOSITORY_MARKERS.has(parts[at]!)) {
          last = local
          insideOf = local
          names.push(folder ? (local ? `${folder}/${local}` : folder) : local)
        }
      }
      if (!more) return { names, more: false }
    }
    return { names, more: pages !== undefined }
  }

  /**
   * Every repository from flat listings. A catalog that fits in two pages is listed in order; a
   * larger one is listed again folder by folder of the top level (one listing of it, then
   * SCAN_PARALLEL flat listings at a time, so that their round trips overlap). Each name once;
   * stops listing when the caller stops reading.
   */
  async function* scanned(scan: Scan): AsyncIterable<string> {
    const head = await scanFolder(scan, '', 2)
    yield* head.names
    if (!head.more) return
    const seen = new Set(head.names)
    const folders = (await driver.list(REPOSITORIES)).filter((name) => !name.startsWith('_')).sort()
    const started: Promise<{ names: string[] }>[] = []
    const start = () => {
      const folder = folders[started.length]
      if (folder !== undefined) started.push(scanFolder(scan, folder))
    }
    for (let i = 0; i < SCAN_PARALLEL; i++) start()
    for (let i = 0; i < folders.length; i++) {
      const { names } = await started[i]!
      start()
      for (const name of names) if (!seen.has(name)) yield name
    }
  }

  async function* walk(prefix: string, depth: number): AsyncIterable<string> {
    if (depth > MAX_DEPTH) return
    const children = await driver.list(prefix ? `${REPOSITORIES}/${prefix}` : REPOSITORIES)
    if (prefix && children.some((c) => REPOSITORY_MARKERS.has(c))) yield prefix
    for (const child of children.sort()) {
      if (child.startsWith('_')) continue
      yield* walk(prefix ? `${prefix}/${child}` : child, depth + 1)
    }
  }

  const storeWalk = () => (driver.scan ? scanned(driver.scan.bind(driver)) : walk('', 0))

  let building: Promise<number> | undefined
  let failedAt = Number.NEGATIVE_INFINITY
  const buildIndex = () => {
    building ??= index.build(storeWalk()).catch((err: unknown) => {
      failedAt = performance.now()
      throw err
    }).finally(() => { building = undefined })
    return building
  }
  /** Whether the index answers; when it can't yet, its build starts in the background. */
  async function indexed(): Promise<boolean> {
    if (await index.complete()) return true
    // The walk answers meanwhile (and while the store is read-only, or a build failed a moment ago).
    if (!building && performance.now() - failedAt > BUILD_RETRY_MS && (await (options.mayBuild?.() ?? true))) buildIndex().catch(() => {})
    return false
  }

  /**
   * Those of `names` whose keys a flat listing of the repositories folder shows, from the first of
   * them on, at most CONFIRM_PAGES requests: a page of the catalog is a run of neighbouring names,
   * whose keys mostly fit in one listing (a repository's own keys are jumped over once it is seen).
   */
  async function confirmedByScan(scan: Scan, names: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>()
    if (names.length === 0) return found
    const wanted = new Set(names)
    const starts = names.map((name) => `${name}/`).sort()
    // Before `<first>/` and after every key of a name sorting before it (no name holds `~`).
    const after = `${starts[0]!.slice(0, -1)}.~`
    const end = `${starts[starts.length - 1]}\uffff`
    let insideOf: string | undefined
    const resume = (next: string) => (insideOf !== undefined ? `${insideOf}/_~` : next)
    for await (const { entries } of scanPages(scan, REPOSITORIES, { after, maxPages: CONFIRM_PAGES, resume })) {
      for (const { key } of entries) {
        if (key > end) return found
        insideOf = undefined
        const parts = key.split('/')
        const at = parts.findIndex((part) => part.startsWith('_'))
        if (at < 1 || !REPOSITORY_MARKERS.has(parts[at]!)) continue
        const name = parts.slice(0, at).join('/')
        insideOf = name
        if (wanted.has(name)) found.add(name)
      }
      if (found.size === wanted.size) break
    }
    return found
  }

  async function existing(names: readonly string[]): Promise<string[]> {
    const confirmed = driver.scan ? await confirmedByScan(driver.scan.bind(driver), names) : new Set<string>()
    // The rest (gone, or beyond the listings) one by one.
    const rest = names.filter((name) => !confirmed.has(name))
    const found = new Set(confirmed)
    const checked = await mapLimit(rest, CHECK_PARALLEL, (name) => index.exists(name))
    rest.forEach((name, i) => { if (checked[i]) found.add(name) })
    return names.filter((name) => found.has(name))
  }

  /** Up to `n` names after `last` from the index, each checked: a page of candidates at a time. */
  async function checkedPage(last: string | undefined, n: number): Promise<string[]> {
    const out: string[] = []
    let batch: string[] = []
    const check = async () => {
      out.push(...(await existing(batch)))
      batch = []
    }
    for await (const name of index.names(last)) {
      batch.push(name)
      if (out.length + batch.length >= n || batch.length >= CHECK_BATCH) {
        await check()
        if (out.length >= n) break
      }
    }
    if (batch.length > 0) await check()
    return out.slice(0, n)
  }

  return {
    index,
    walk: storeWalk,
    buildIndex,
    existing,
    async names() {
      const names: string[] = []
      if (await indexed()) {
        for await (const name of index.names()) names.push(name)
        return names
      }
      for await (const name of storeWalk()) names.push(name)
      return names.sort()
    },
    async list(page) {
      if (page.n === 0) return []
      if (await indexed()) return checkedPage(page.last, page.n ?? Number.POSITIVE_INFINITY)
      const names: string[] = []
      for await (const name of storeWalk()) names.push(name)
      return paginate(names, page)
    },
  }
}
