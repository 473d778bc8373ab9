/** @module Catalog: repository listing by walking the repositories folder. */
import type { StorageDriver } from '../storage/driver.js'
import { paginate } from './manifests.js'
import { REPOSITORIES, REPOSITORY_MARKERS } from './paths.js'

export interface Catalog {
  /** Repository names in lexical order after `last`, at most `n`. */
  list(page: { n?: number; last?: string }): Promise<string[]>
  /** Every repository, in no particular order, each once. */
  walk(): AsyncIterable<string>
}

/** Bounds the walk: a name has at most 255 characters, so at most 128 path components. */
const MAX_DEPTH = 128

/** Bounds a flat scan: 10 million keys at 1000 a page. */
const MAX_SCAN_PAGES = 10_000
/** Listings of the catalog in flight at once. */
const SCAN_PARALLEL = 8

export function createCatalog(driver: StorageDriver): Catalog {
  /**
   * Repositories from a flat listing of the keys under `repositories/<folder>` (S3), names given
   * with `folder` in front: a repository is the part of a key before its first `_` component
   * (names can't start with `_`), when that component is a marker. Its own keys sort together
   * (`<name>/_…`), so once a page ends among them the next starts after `<name>/_~`: one request
   * covers as many repositories as fit in a page, and one with many layers costs at most one more.
   * `more` is set when it stopped after `pages` pages.
   */
  async function scanFolder(
    scan: NonNullable<StorageDriver['scan']>, folder: string, pages = MAX_SCAN_PAGES,
  ): Promise<{ names: string[]; more: boolean }> {
    const names: string[] = []
    const base = folder ? `${REPOSITORIES}/${folder}` : REPOSITORIES
    let after: string | undefined
    let last: string | undefined
    for (let page = 0; page < pages; page++) {
      const { entries, next } = await scan(base, after)
      let insideOf: string | undefined
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
      if (next === undefined) return { names, more: false }
      after = insideOf !== undefined && `${insideOf}/_~` > next ? `${insideOf}/_~` : next
    }
    return { names, more: true }
  }

  /**
   * Every repository from flat listings. A catalog that fits in two pages is listed in order; a
   * larger one is listed again folder by folder of the top level (one listing of it, then
   * SCAN_PARALLEL flat listings at a time, so that their round trips overlap). Each name once;
   * stops listing when the caller stops reading.
   */
  async function* scanned(scan: NonNullable<StorageDriver['scan']>): AsyncIterable<string> {
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

  return {
    walk: () => (driver.scan ? scanned(driver.scan.bind(driver)) : walk('', 0)),
    async list(page) {
      const names: string[] = []
      for await (const name of driver.scan ? scanned(driver.scan.bind(driver)) : walk('', 0)) names.push(name)
      return paginate(names, page)
    },
  }
}
