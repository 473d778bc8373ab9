/**
 * @module Quotas: a limit on the bytes under blobs/ (total) and on the bytes linked in a repository
 * (first matching pattern of `repositories`; each matching repository on its own).
 *
 * Nothing is kept only in memory: usage is computed from the store (the sizes of the blobs in a
 * repository's `_layers/`; the size of `blobs/`) and cached for `refreshMs`; this instance adds what
 * it stores itself, and a stale value is served while it is recomputed in the background. So the
 * limit is approximate across instances: it can be overshot by what other instances store within
 * one refresh interval, plus uploads running at the same moment (each is checked without the
 * others' unfinished bytes). Manifests are not counted (they are small and capped).
 */
import { Transform, type TransformCallback } from 'node:stream'
import { patternMatches } from '../oci/name-patterns.js'
import { type Digest, tryParseDigest } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import { metrics } from '../observe/metrics.js'
import type { StorageDriver } from '../storage/driver.js'
import type { BlobStore } from './blobs.js'
import { BLOBS, paths } from './paths.js'

export interface QuotaRule {
  /** A glob (`*` does not cross `/`) or an anchored regex written `/…/`, as in the ACL. */
  match: string
  limit: number
}

export interface QuotaOptions {
  total?: number
  repositories?: QuotaRule[]
  refreshMs?: number
  /** Bytes under blobs/ that `total` leaves out: a pull-through cache's, which its own size limit bounds. */
  cached?: () => Promise<number>
}

export interface Quotas {
  /** Throws (507 DENIED, naming the quota) when `incoming` more bytes in `repo` would pass a limit. */
  check(repo: string, incoming: number, options?: { newBlob?: boolean; pending?: number }): Promise<void>
  /** A pass-through stream failing with that error once the bytes through it pass a limit; undefined when no quota applies. */
  meter(repo: string, pending: number): Promise<QuotaMeter | undefined>
  /** Bytes that became stored in `repo` (and under blobs/ when `newBlob`). */
  stored(repo: string, size: number, newBlob: boolean): void
  /** Bytes unlinked from `repo` (blobs/ shrinks only when garbage collection runs). */
  released(repo: string, size: number): void
}

interface Usage { bytes: number; at: number; refreshing?: Promise<number> }

const GiB = 1024 ** 3
const MiB = 1024 ** 2

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n} bytes`
}

export class QuotaMeter extends Transform {
  #seen = 0
  /** The quota error, once raised: the caller reports it rather than the broken pipe it causes. */
  error: RegistryError | undefined
  constructor(private readonly room: number, private readonly explain: (over: number) => RegistryError) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.room) {
      this.error = this.explain(this.#seen)
      done(this.error)
      return
    }
    done(null, chunk)
  }
}

export function createQuotas(driver: StorageDriver, blobs: BlobStore, options: QuotaOptions): Quotas | undefined {
  const rules = options.repositories ?? []
  if (options.total === undefined && rules.length === 0) return undefined
  const refreshMs = options.refreshMs ?? 60_000
  const usages = new Map<string, Usage>()

  const ruleFor = (repo: string) => rules.find((r) => patternMatches(r.match, repo))

  async function repositoryBytes(repo: string): Promise<number> {
    let total = 0
    for (const algorithm of await driver.list(paths.layers(repo))) {
      const digests = (await driver.list(`${paths.layers(repo)}/${algorithm}`))
        .map((hex) => tryParseDigest(`${algorithm}:${hex}`)).filter((d): d is Digest => d !== undefined)
      for (let i = 0; i < digests.length; i += 32) {
        const sizes = await Promise.all(digests.slice(i, i + 32).map((d) => blobs.size(d)))
        for (const s of sizes) total += s ?? 0
      }
    }
    return total
  }

  /** The cached usage; computed on first use, then refreshed in the background once stale. */
  async function usage(key: string, compute: () => Promise<number>): Promise<number> {
    const u = usages.get(key)
    const refresh = () => {
      const entry = usages.get(key) ?? { bytes: 0, at: 0 }
      const started = Date.now()
      entry.refreshing ??= compute().then((bytes) => {
        // Bytes this instance stored while the listing ran are in the listing or in the old count.
        usages.set(key, { bytes, at: started })
        return bytes
      }).finally(() => { entry.refreshing = undefined })
      usages.set(key, entry)
      return entry.refreshing
    }
    if (!u || u.at === 0) return u?.refreshing ?? refresh()
    if (Date.now() - u.at > refreshMs) refresh().catch(() => { /* the stale value stands; retried next time */ })
    return u.bytes
  }

  const totalUsage = () => usage('', async () => {
    const [all, cached] = await Promise.all([driver.usage(BLOBS), options.cached?.() ?? 0])
    return Math.max(0, all - cached)
  })
  const repoUsage = (repo: string) => usage(`r:${repo}`, () => repositoryBytes(repo))

  function exceeded(what: string, limit: number, used: number, incoming: number, detail: Record<string, unknown>): RegistryError {
    metrics.quotaRejections.inc([detail.quota as string])
    return new RegistryError('DENIED',
      `quota exceeded: ${what} may hold ${formatBytes(limit)} and holds ${formatBytes(used)}; this upload needs ${formatBytes(incoming)} more. Delete images (and run garbage collection) or ask for a larger quota`,
      { ...detail, limit, usage: used }, { status: 507 })
  }

  /** Room left before a limit, and how to explain passing it. */
  async function room(repo: string, newBlob: boolean): Promise<{ room: number; explain: (incoming: number) => RegistryError } | undefined> {
    const checks: { room: number; explain: (incoming: number) => RegistryError }[] = []
    const rule = ruleFor(repo)
    if (rule) {
      const used = await repoUsage(repo)
      checks.push({ room: rule.limit - used, explain: (n) => exceeded(`repository ${repo} (quota "${rule.match}")`, rule.limit, used, n, { quota: rule.match, repository: repo }) })
    }
    if (newBlob && options.total !== undefined) {
      const used = await totalUsage()
      const limit = options.total
      checks.push({ room: limit - used, explain: (n) => exceeded('the registry (total quota)', limit, used, n, { quota: 'total' }) })
    }
    return checks.sort((a, b) => a.room - b.room)[0]
  }

  return {
    async check(repo, incoming, opts = {}) {
      const r = await room(repo, opts.newBlob ?? true)
      const pending = opts.pending ?? 0
      if (r && pending + incoming > r.room) throw r.explain(pending + incoming)
    },

    async meter(repo, pending) {
      const r = await room(repo, true)
      if (!r) return undefined
      if (pending > r.room) throw r.explain(pending)
      return new QuotaMeter(r.room - pending, (seen) => r.explain(pending + seen))
    },

    stored(repo, size, newBlob) {
      const add = (key: string) => {
        const u = usages.get(key)
        if (u && u.at > 0) u.bytes += size
      }
      if (ruleFor(repo)) add(`r:${repo}`)
      if (newBlob) add('')
    },

    released(repo, size) {
      const u = usages.get(`r:${repo}`)
      if (u && u.at > 0) u.bytes = Math.max(0, u.bytes - size)
    },
  }
}
