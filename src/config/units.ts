/** @module Durations and sizes as people write them in configs: "90s", "168h", "4MiB". */

/** "90s", "30m", "168h", "1h30m", "250ms", or a number of milliseconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return v
  if (/^\d+$/.test(v.trim())) return Number(v.trim())
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  let total = 0
  let consumed = 0
  for (const m of v.trim().matchAll(re)) {
    total += Number(m[1]) * units[m[2]!]!
    consumed += m[0].length
  }
  return consumed > 0 && consumed === v.trim().length ? total : undefined
}

/** "4MiB", "512KiB", "1GiB", "4MB", or a number of bytes. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return v
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)?$/.exec(v.trim())
  if (!m) return undefined
  const units: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1e3, MB: 1e6, GB: 1e9, k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }
  return Math.floor(Number(m[1]) * units[m[2] ?? 'B']!)
}
