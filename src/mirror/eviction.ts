/**
 * @module Which mirrored repositories garbage collection drops: those not pulled for `evictAfterMs`,
 * then, least recently pulled first, as many as it takes for the blobs the rest hold to fit in
 * `maxBytes`. Only a mirror's copies with a pull record are candidates: a pushed repository is never
 * one. Dropping a repository removes its tags, manifests and links (never its nested repositories);
 * the run that dropped it then collects the blobs nothing else holds, as it does any garbage.
 */
import { tryParseDigest } from '../oci/digest.js'
import { createCatalog } from '../registry/catalog.js'
import type { Eviction } from '../registry/gc.js'
import { paths } from '../registry/paths.js'
import type { StorageDriver } from '../storage/driver.js'

export interface EvictionSettings {
  /** Whether a stored repository is a mirror's copy (routes.ts). */
  isCopy: (name: string) => boolean
  maxBytes?: number
  /** 0: never by age. */
  evictAfterMs: number
  now?: () => number
}

/** Digests under a `<alg>/<hex>` folder. */
async function digestsIn(driver: StorageDriver, folder: string): Promise<string[]> {
  const out: string[] = []
  for (const algorithm of await driver.list(folder)) {
    for (const hex of await driver.list(`${folder}/${algorithm}`)) {
      const d = tryParseDigest(`${algorithm}:${hex}`)
      if (d) out.push(d.value)
    }
  }
  return out
}

/**
 * The bytes under blobs/ that only mirrored copies hold (layers and manifests linked in copies and in
 * no pushed repository): what `quotas.total` leaves to `mirror.maxsize`. A blob a push shares with a
 * copy counts as pushed.
 */
export async function cachedOnlyBytes(driver: StorageDriver, isCopy: (name: string) => boolean): Promise<number> {
  const cached = new Set<string>()
  const pushed = new Set<string>()
  for await (const name of createCatalog(driver).walk()) {
    const into = isCopy(name) ? cached : pushed
    for (const d of [...await digestsIn(driver, paths.layers(name)), ...await digestsIn(driver, paths.revisions(name))]) into.add(d)
  }
  const only = [...cached].filter((d) => !pushed.has(d))
  let total = 0
  for (let i = 0; i < only.length; i += 32) {
    const sizes = await Promise.all(only.slice(i, i + 32).map((d) => driver.stat(paths.blobData(tryParseDigest(d)!), 'file')))
    for (const s of sizes) total += s?.size ?? 0
  }
  return total
}

export function createEviction(driver: StorageDriver, settings: EvictionSettings): Eviction {
  const now = settings.now ?? Date.now
  /** name → the pull time the plan saw. */
  const planned = new Map<string, number>()
  return {
    async plan() {
      const copies: { name: string; pulledAt: number }[] = []
      for await (const name of createCatalog(driver).walk()) {
        if (!settings.isCopy(name)) continue
        const record = await driver.stat(paths.mirrorPulled(name), 'file')
        if (record) copies.push({ name, pulledAt: record.modifiedAt.getTime() })
      }
      copies.sort((a, b) => a.pulledAt - b.pulledAt)
      planned.clear()
      for (const c of copies) planned.set(c.name, c.pulledAt)
      const drop = settings.evictAfterMs > 0 ? copies.filter((c) => now() - c.pulledAt > settings.evictAfterMs) : []
      const kept = copies.filter((c) => !drop.includes(c))
      if (settings.maxBytes === undefined) return drop.map((c) => c.name)

      /** digest → its size and the kept copies holding it. */
      const held = new Map<string, { size: number; by: Set<string> }>()
      const holding = new Map<string, string[]>()
      let total = 0
      for (const copy of kept) {
        const digests = [...await digestsIn(driver, paths.layers(copy.name)), ...await digestsIn(driver, paths.revisions(copy.name))]
        holding.set(copy.name, digests)
        for (const d of digests) {
          let entry = held.get(d)
          if (!entry) {
            const info = await driver.stat(paths.blobData(tryParseDigest(d)!), 'file')
            entry = { size: info?.size ?? 0, by: new Set() }
            held.set(d, entry)
            total += entry.size
          }
          entry.by.add(copy.name)
        }
      }
      for (const copy of kept) {
        if (total <= settings.maxBytes) break
        drop.push(copy)
        for (const d of holding.get(copy.name) ?? []) {
          const entry = held.get(d)!
          entry.by.delete(copy.name)
          if (entry.by.size === 0) total -= entry.size
        }
      }
      return drop.map((c) => c.name)
    },

    async drop(name) {
      // Pulled again since the plan: it stays.
      const record = await driver.stat(paths.mirrorPulled(name), 'file')
      if (!record || record.modifiedAt.getTime() > (planned.get(name) ?? 0)) return false
      await Promise.all(['_manifests', '_layers', '_uploads', '_referrers'].map((part) => driver.delete(`${paths.repository(name)}/${part}`)))
      await driver.delete(paths.mirrorPulled(name))
      return true
    },
  }
}
