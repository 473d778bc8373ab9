/** @module Bounded parallelism for maintenance walks: many small store requests, never unbounded. */

import { setImmediate as nextTurn } from 'node:timers/promises'

/** Items a runner handles before it lets the event loop take other work. */
const ITEMS_PER_TURN = 256

/** Runs `work` on every item with at most `limit` in flight; the first failure rejects (after in-flight work settles). */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]()
  let failed: { err: unknown } | undefined
  const runner = async () => {
    let handled = 0
    for (let next = iterator.next(); !next.done && !failed; next = iterator.next()) {
      try {
        await work(next.value)
      } catch (err) {
        failed ??= { err }
      }
      // The filesystem store answers many calls synchronously: a long walk would otherwise hold the
      // event loop (requests of a serving process) until it ends.
      if (++handled % ITEMS_PER_TURN === 0) await nextTurn()
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, limit) }, runner))
  if (failed) throw failed.err
}

/** Like forEachLimit, collecting results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  await forEachLimit(items.keys(), limit, async (i) => { results[i] = await work(items[i]!) })
  return results
}
