/** @module Catalog: repository listing by walking the repositories folder. */
import type { StorageDriver } from '../storage/driver.js'
import { paginate } from './manifests.js'
import { REPOSITORIES, REPOSITORY_MARKERS } from './paths.js'

export interface Catalog {
  /** Repository names in lexical order after `last`, at most `n`. */
  list(page: { n?: number; last?: string }): Promise<string[]>
  /** Every repository, in no particular order. */
  walk(): AsyncIterable<string>
}

/** Bounds the walk: a name has at most 255 characters, so at most 128 path components. */
const MAX_DEPTH = 128

export function createCatalog(driver: StorageDriver): Catalog {
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
    walk: () => walk('', 0),
    async list(page) {
      const names: string[] = []
      for await (const name of walk('', 0)) names.push(name)
      return paginate(names, page)
    },
  }
}
