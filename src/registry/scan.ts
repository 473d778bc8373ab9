/**
 * @module Paging over a store's flat listing (`StorageDriver.scan`): the one loop the catalog index,
 * the catalog's walk of a store without an index, and the tag listings of the web UI share.
 */
import type { ScannedKey, StorageDriver } from '../storage/driver.js'

export type Scan = NonNullable<StorageDriver['scan']>

/** Bounds a scan: 10 million keys at 1000 a page. */
export const MAX_SCAN_PAGES = 10_000

export interface ScanOptions {
  /** Start after this key (relative to the folder). */
  after?: string
  /** Stop after this many pages (the last page then says `more`). */
  maxPages?: number
  /**
   * Where the next page starts, given where it would (the last key of the page): lets a reader
   * jump over keys it needs no more of. Called after the reader handled the page.
   */
  resume?: (next: string) => string
}

/** The pages of keys under `folder`, in the store's order; `more` when a page is not the last. */
export async function* scanPages(scan: Scan, folder: string, options: ScanOptions = {}): AsyncGenerator<{ entries: ScannedKey[]; more: boolean }> {
  let after = options.after
  const pages = options.maxPages ?? MAX_SCAN_PAGES
  for (let page = 0; page < pages; page++) {
    const { entries, next } = await scan(folder, after)
    yield { entries, more: next !== undefined }
    if (next === undefined) return
    const resumed = options.resume ? options.resume(next) : next
    // Never backwards: a scan that went back could loop.
    after = resumed > next ? resumed : next
  }
}

/** Every key under `folder`, in the store's order (a request per thousand keys on S3). */
export async function* scanKeys(scan: Scan, folder: string, options: ScanOptions = {}): AsyncGenerator<ScannedKey> {
  for await (const { entries } of scanPages(scan, folder, options)) yield* entries
}
