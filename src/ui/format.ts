/** @module Human sizes and times for the pages (exact values go in a title attribute beside them). */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB']

/** 1234567 → "1.2 MB" (decimal units, as registries and docker show them). */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—'
  let i = 0
  let v = n
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000
    i++
  }
  return i === 0 ? `${n} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`
}

/** The exact count for a hover title: "1,234,567 bytes". */
export const exactBytes = (n: number) => `${n.toLocaleString('en-US')} bytes`

/** "3 minutes ago", "in 2 days". */
export function relativeTime(date: Date, now = Date.now()): string {
  const s = Math.round((date.getTime() - now) / 1000)
  const abs = Math.abs(s)
  const steps: [number, string][] = [[60, 'second'], [3600, 'minute'], [86400, 'hour'], [86400 * 30, 'day'], [86400 * 365, 'month'], [Infinity, 'year']]
  const sizes: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400, month: 86400 * 30, year: 86400 * 365 }
  if (abs < 10) return 'just now'
  const unit = steps.find(([limit]) => abs < limit)![1]
  const value = Math.floor(abs / sizes[unit]!)
  const text = `${value} ${unit}${value === 1 ? '' : 's'}`
  return s < 0 ? `${text} ago` : `in ${text}`
}

/** A digest shortened for tables: "sha256:0123456789ab". */
export const shortDigest = (digest: string) => {
  const colon = digest.indexOf(':')
  return colon < 0 ? digest.slice(0, 19) : digest.slice(0, colon + 13)
}
