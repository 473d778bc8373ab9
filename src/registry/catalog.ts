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
/** What a repository name can start with (the grammar's path component). */
const FIRST_CHARACTERS = [...'0123456789abcdefghijklmnopqrstuvwxyz']
/** Listings of the catalog in flight at once. */
const SCAN_PARALLEL = 8

export function createCatalog(driver: StorageDriver): Catalog {
  /**
   * Repositories from a flat listing of the keys under `repositories/` (S3), from `after` while the
   * keys start with `first` (or to the end): a repository is the part of a key before its first `_`
   * component (names can't start with `_`), when that component is a marker. Its own keys sort
   * together (`<name>/_…`), so once a page ends among them the next starts after `<name>/_~`: one
   * request covers as many repositories as fit in a page, and one with many layers costs at most
   * one more. `next` is where the listing stopped, when it stopped after `pages` pages.
   */
  async function scanFrom(
    scan: NonNullable<StorageDriver['scan']>, after: string | undefined, first?: string, pages = MAX_SCAN_PAGES,
  ): Promise<{ names: string[]; next?: string }> {
    const names: string[] = []
    let last: string | undefined
    for (let page = 0; page < pages; page++) {
      const { entries, next } = await scan(REPOSITORIES, after)
      let insideOf: string | undefined
      for (const { key } of entries) {
        if (first !== undefined && key[0] !== first) return { names }
        const parts = key.split('/')
        const at = parts.findIndex((part) => part.startsWith('_'))
        insideOf = undefined
        if (at <= 0 || at > MAX_DEPTH) continue
        const name = parts.slice(0, at).join('/')
        if (name === last) insideOf = name
        else if (REPOSITORY_MARKERS.has(parts[at]!)) {
          last = name
          insideOf = name
          names.push(name)
        }
      }
      if (next === undefined) return { names }
      after = insideOf !== undefined && `${insideOf}/_~` > next ? `${insideOf}/_~` : next
    }
    return { names, next: after }
  }

  /**
   * Every repository from flat listings. A catalog that fits in a page or two is listed in order;
   * a larger one is split by the first character of the names (a digit or a lowercase letter),
   * SCAN_PARALLEL listings at a time, so that their round trips overlap. Yields in key order of
   * the partitions, each name once; stops listing when the caller stops reading.
   */
  async function* scanned(scan: NonNullable<StorageDriver['scan']>): AsyncIterable<string> {
    const head = await scanFrom(scan, undefined, undefined, 2)
    yield* head.names
    if (head.next === undefined) return
    const seen = new Set(head.names)
    const resumeAt = head.next
    // Partitions from the one the listing stopped in; that one resumes where it stopped.
    const firsts = FIRST_CHARACTERS.filter((c) => c >= resumeAt[0]!)
    const started: Promise<{ names: string[] }>[] = []
    const start = () => {
      const c = firsts[started.length]
      if (c === undefined) return
      started.push(scanFrom(scan, c === resumeAt[0] ? resumeAt : `${String.fromCharCode(c.charCodeAt(0) - 1)}\u007f`, c))
    }
    for (let i = 0; i < SCAN_PARALLEL; i++) start()
    for (let i = 0; i < firsts.length; i++) {
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
