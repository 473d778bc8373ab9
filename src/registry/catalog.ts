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

export function createCatalog(driver: StorageDriver): Catalog {
  /**
   * The repositories from a flat listing of every key under `repositories/` (S3): a repository is
   * the part of a key before its first `_` component (names can't start with `_`), when that
   * component is a marker. Its internal keys sort together (`<name>/_…`), so once a page ends among
   * them the next page starts after `<name>/_~`: one request covers as many repositories as fit in
   * a page, and a repository with many layers costs at most one more.
   */
  async function* scanned(scan: NonNullable<StorageDriver['scan']>): AsyncIterable<string> {
    let after: string | undefined
    let last: string | undefined
    for (let page = 0; page < MAX_SCAN_PAGES; page++) {
      const { entries, next } = await scan(REPOSITORIES, after)
      let insideOf: string | undefined
      for (const { key } of entries) {
        const parts = key.split('/')
        const at = parts.findIndex((part) => part.startsWith('_'))
        insideOf = undefined
        if (at <= 0 || at > MAX_DEPTH) continue
        const name = parts.slice(0, at).join('/')
        if (name === last) insideOf = name
        else if (REPOSITORY_MARKERS.has(parts[at]!)) {
          last = name
          insideOf = name
          yield name
        }
      }
      if (next === undefined) return
      after = insideOf !== undefined && `${insideOf}/_~` > next ? `${insideOf}/_~` : next
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
