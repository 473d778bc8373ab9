/**
 * @module The protocol between garbage collection and pushes: no blob that a push re-uses is ever
 * deleted under it, on any number of processes and instances sharing one store, with nothing held
 * in memory that another process needs, and deletions in batches of a thousand.
 *
 * A *use* of a blob is what a push relies on: a HEAD answered 200 (the client skips the upload), a
 * mount, an upload finding the bytes already stored, the blobs a manifest PUT references and its
 * own bytes. A use that happened within the grace period before a GC run, or during it, keeps the
 * blob; a manifest PUT never succeeds referencing a blob that GC deletes.
 *
 * Store objects (under `_enlil/gc/`, see paths.ts):
 * - `runs/<run>`: JSON `{ id, startedAt, expiresAt, finishedAt? }`, written when a run starts and
 *   renewed while it runs (its lease); kept for a while after it finished.
 * - `<run>/keep/<alg>-<hex>`: a use of the blob while the run was active.
 * - `<run>/batches/<n>`: a JSON list of up to BATCH_SIZE digests GC means to delete; all of a run's
 *   batches are written before GC lists `keep/`.
 * - `<run>/batches/<n>.done`: the bytes of batch n's deleted blobs are gone: bytes stored under one
 *   of those digests after that are a new push's, and no longer doomed.
 *
 * GC, in order:
 * 1. publishes `runs/<run>` (P), then marks and lists candidates: unmarked blobs whose bytes are
 *    older than `start - grace`;
 * 2. waits until P + SETTLE_MS, then lists every repository again (revisions and tags pushed
 *    meanwhile keep their blobs), and reads the times of the candidates' layer links: a link
 *    written or touched after `start - grace` keeps its blob;
 * 3. writes the remaining candidates as batches, then lists `keep/`: a blob kept by a use stays.
 *    Per batch, the links and bytes of the others go (DeleteObjects, a thousand keys a request),
 *    then `<n>.done`. Nothing is deleted unless the run renewed its lease within LEASE_MS -
 *    LEASE_MARGIN_MS.
 *
 * A use, on any process:
 * - reads the runs (a listing cached VIEW_TTL_MS) and, for each active run, writes `keep` for each
 *   blob it uses, then lists the run's batches (reading each batch once per process: they never
 *   change). A blob in a batch is *doomed* until the batch is done, then *gone*; else it is kept
 *   for good (once per run and blob in a process). A doomed blob is treated as missing: HEAD 404,
 *   no mount, MANIFEST_BLOB_UNKNOWN; an upload of it waits for `.done` and stores its bytes anew.
 * - must finish its effect (the link, touch or revision it writes) within SETTLE_MS of when its
 *   view of the runs was read; when it took longer it claims again under a fresh view (and undoes
 *   or refuses what a batch contradicts).
 * - a HEAD 200, a mount and an upload rewrite the layer link when it is older than TOUCH_AFTER_MS,
 *   so its time says when the blob was last used (at most a second or two old).
 *
 * Why a use and a deletion never both win: the use writes `keep` (k) and then lists the batches;
 * GC writes the batch (b) and then lists `keep/` (l > b). The store lists what was written before
 * (strong read-after-write, as S3, Tigris, Ceph RGW and a folder give). If k < l, GC sees `keep`
 * and the blob stays. Otherwise b < l < k, so the use's listing sees the batch and the use does not
 * rely on the blob. (Both may happen: the blob stays and the client uploads it again, harmlessly.)
 *
 * Why nothing is lost: take a use whose view was read at f and whose effect landed at e ≤ f +
 * SETTLE_MS. If f is after P, the use saw the run and wrote `keep`: see above. If f is before P,
 * then e < P + SETTLE_MS ≤ the time GC re-lists and reads link times in step 2, which therefore
 * sees the revision, tag or fresh link the use wrote. Uses before the run started left a link time
 * no older than the grace period (plus the two seconds of slack GC adds for whole-second store
 * times and TOUCH_AFTER_MS). Only durations are compared on one clock; across machines only the
 * lease needs clocks within LEASE_MARGIN_MS + CLOCK_SKEW_MS of each other.
 *
 * Cached facts: a process that sees a run it had not seen drops what it believed about the
 * existence of bytes (the epoch), so no cache outlives a deletion it could have seen.
 */
import { randomUUID } from 'node:crypto'
import type { Digest } from '../oci/digest.js'
import type { StorageDriver } from '../storage/driver.js'
import { LruCache } from './cache.js'
import { forEachLimit } from './parallel.js'
import { paths } from './paths.js'

/** How long a process believes its listing of GC runs. */
export const VIEW_TTL_MS = 1_000
/** A use finishes its effect within this long of reading its view; GC waits this long before re-listing. */
export const SETTLE_MS = 5_000
/** A run that has not renewed its lease for this long is over for everyone. */
export const LEASE_MS = 60_000
/** GC renews its lease this often. */
export const RENEW_MS = 10_000
/** GC deletes nothing once its last renewal is older than LEASE_MS minus this. */
export const LEASE_MARGIN_MS = 15_000
/** Pushers consider a run over this long after its lease ran out by their clock. */
export const CLOCK_SKEW_MS = 10_000
/** A use rewrites a layer link older than this, so its time tells when the blob was last used. */
export const TOUCH_AFTER_MS = 1_000
/** Finished runs stay listed this long (processes that see them drop cached existence). */
export const FINISHED_KEPT_MS = 60 * 60_000
/** Digests per batch: one DeleteObjects request holds a thousand keys. */
export const BATCH_SIZE = 1_000

interface RunRecord {
  id: string
  startedAt: string
  expiresAt: string
  finishedAt?: string
}

/** `delete`: in a batch GC is deleting; `gone`: that batch is done (what is there now was pushed since). */
export type Decision = 'keep' | 'delete' | 'gone'

export interface Clocks {
  /** Milliseconds on a clock that never jumps (durations). */
  monotonic: () => number
  /** Wall-clock milliseconds (leases, compared across machines). */
  wall: () => number
}

const systemClocks: Clocks = { monotonic: () => performance.now(), wall: () => Date.now() }

export interface GcFenceOptions {
  clocks?: Clocks
  settleMs?: number
  viewTtlMs?: number
}

/** What a process knows of the GC runs, as read at `fetchedAt`. */
export interface GcView {
  readonly fetchedAt: number
  /** Runs that may be deciding now. */
  readonly active: readonly string[]
}

export interface GcFence {
  /** The runs, as listed at most VIEW_TTL_MS ago (`fresh`: now). */
  view(fresh?: boolean): Promise<GcView>
  /**
   * Records that a push uses these blobs, in every run of the view: resolves to those a run has
   * already decided to delete (to be treated as missing).
   */
  claim(view: GcView, digests: readonly Digest[]): Promise<Set<string>>
  /**
   * Runs a use: `work` gets the blobs to treat as missing and does its effect. When it finished too
   * late for the view it was given, the blobs are claimed again under a fresh view and, if that
   * dooms one more, `work` runs again (attempt 2, 3) to refuse or undo.
   */
  use<T>(digests: readonly Digest[], work: (doomed: Set<string>, attempt: number) => Promise<T>): Promise<T>
  /** Changes whenever this process sees a run it had not seen: cached existence from before is void. */
  epoch(): number
  /** Resolves once a blob decided `delete` is gone (or its run is over), so its bytes can be stored anew. */
  awaitDeletion(digest: Digest): Promise<void>
  /** Whether a use that wants to skip rewriting a link of this time must rewrite it. */
  stale(modifiedAt: Date): boolean
}

const decisionKey = (d: Digest) => `${d.algorithm}-${d.hex}`

/** Reads `runs/<id>`; undefined when it is gone or unreadable (a half-written one is not a run). */
async function readRun(driver: StorageDriver, id: string): Promise<RunRecord | undefined> {
  const bytes = await driver.getContent(paths.gcRun(id))
  if (!bytes) return undefined
  try {
    const run = JSON.parse(bytes.toString('utf8')) as RunRecord
    return typeof run.expiresAt === 'string' ? run : undefined
  } catch {
    return undefined
  }
}

export function createGcFence(driver: StorageDriver, options: GcFenceOptions = {}): GcFence {
  const clocks = options.clocks ?? systemClocks
  const settleMs = options.settleMs ?? SETTLE_MS
  const ttl = options.viewTtlMs ?? VIEW_TTL_MS
  let current: GcView | undefined
  let pending: Promise<GcView> | undefined
  let epoch = 0
  /** Runs seen finished: never read again. */
  const finished = new Set<string>()
  const seen = new Set<string>()
  /** `run/digest` → decision, final once known. */
  const decisions = new LruCache<string, Decision>(100_000)
  /** `run/batch` → its digests: a batch never changes once written. */
  const batchContents = new LruCache<string, ReadonlySet<string>>(200)

  /** The run's batches as listed now (one request), their contents read once per process. */
  async function readBatches(run: string): Promise<{ batchOf: (digest: string) => string | undefined; done: ReadonlySet<string>; kept: ReadonlyMap<string, ReadonlySet<string>> }> {
    const names = await driver.list(paths.gcBatches(run))
    const done = new Set(names.filter((n) => n.endsWith('.done')).map((n) => n.slice(0, -'.done'.length)))
    const decidedIds = names.filter((n) => n.endsWith('.decided')).map((n) => n.slice(0, -'.decided'.length))
    const ids = names.filter((n) => !n.includes('.'))
    const contents = await Promise.all(ids.map(async (id) => {
      const cached = batchContents.get(`${run}/${id}`)
      if (cached) return cached
      const bytes = await driver.getContent(paths.gcBatch(run, id))
      // Gone since the listing: the run finished and its folder went; it deletes nothing more.
      if (!bytes) return new Set<string>()
      const digests = new Set(JSON.parse(bytes.toString('utf8')) as string[])
      batchContents.set(`${run}/${id}`, digests)
      return digests
    }))
    const kept = new Map(await Promise.all(decidedIds.map(async (id): Promise<[string, ReadonlySet<string>]> => {
      const cached = batchContents.get(`${run}/${id}.decided`)
      if (cached) return [id, cached]
      const bytes = await driver.getContent(paths.gcBatchDecided(run, id))
      const digests = new Set(bytes ? JSON.parse(bytes.toString('utf8')) as string[] : [])
      if (bytes) batchContents.set(`${run}/${id}.decided`, digests)
      return [id, digests]
    })))
    return { batchOf: (digest) => ids.find((_, i) => contents[i]!.has(digest)), done, kept }
  }

  /**
   * The decision on a blob found in a batch: GC publishes what it keeps right after it read the
   * uses; until then it is waited for (a use written before GC read them keeps the blob, and a
   * client may have been told it exists), bounded by the run's lease.
   */
  async function decisionIn(run: string, digest: string): Promise<Decision> {
    const deadline = clocks.monotonic() + LEASE_MS + CLOCK_SKEW_MS
    for (let i = 0; i < 2_000; i++) {
      const batches = await readBatches(run)
      const batch = batches.batchOf(digest)
      if (batch === undefined) return 'keep'
      const kept = batches.kept.get(batch)
      if (kept) return kept.has(digest) ? 'keep' : batches.done.has(batch) ? 'gone' : 'delete'
      if (clocks.monotonic() > deadline || !(await fence.view(true)).active.includes(run)) return 'keep'
      await new Promise((ok) => setTimeout(ok, 50))
    }
    return 'keep'
  }

  async function fetchView(): Promise<GcView> {
    const fetchedAt = clocks.monotonic()
    const ids = await driver.list(paths.gcRuns)
    const active: string[] = []
    await Promise.all(ids.map(async (id) => {
      if (!seen.has(id)) {
        seen.add(id)
        epoch++
      }
      if (finished.has(id)) return
      const run = await readRun(driver, id)
      if (!run) return
      if (run.finishedAt) finished.add(id)
      else if (clocks.wall() <= Date.parse(run.expiresAt) + CLOCK_SKEW_MS) active.push(id)
    }))
    return { fetchedAt, active }
  }

  const fence: GcFence = {
    async view(fresh = false) {
      if (!fresh && current && clocks.monotonic() - current.fetchedAt < ttl) return current
      if (!fresh && pending) return pending
      const fetching = fetchView()
      if (!fresh) pending = fetching
      try {
        const view = await fetching
        if (!current || view.fetchedAt >= current.fetchedAt) current = view
        return view
      } finally {
        if (pending === fetching) pending = undefined
      }
    },

    async claim(view, digests) {
      const doomed = new Set<string>()
      await Promise.all(view.active.map(async (run) => {
        const open = digests.filter((d) => {
          const decision = decisions.get(`${run}/${d.value}`)
          return decision !== 'keep' && decision !== 'gone'
        })
        if (open.length === 0) return
        // `keep` first, the batches after: the order the argument in the module comment needs. A
        // blob found doomed before has its `keep` written already.
        // A create (not a put): on disk it survives the run's folder going away meanwhile (the run
        // finished), and a `keep` already there is as good as a new one.
        await Promise.all(open.filter((d) => !decisions.get(`${run}/${d.value}`)).map((d) => driver.createOnce(paths.gcKeep(run, decisionKey(d)), '', { transient: true })))
        const batches = await readBatches(run)
        for (const d of open) {
          const decision: Decision = batches.batchOf(d.value) === undefined ? 'keep' : await decisionIn(run, d.value)
          decisions.set(`${run}/${d.value}`, decision)
          if (decision === 'delete') doomed.add(d.value)
        }
      }))
      return doomed
    },

    async use(digests, work) {
      let view = await fence.view()
      let doomed = await fence.claim(view, digests)
      for (let attempt = 1; ; attempt++) {
        const result = await work(doomed, attempt)
        if (clocks.monotonic() - view.fetchedAt < settleMs) return result
        // Too slow: a run may have started unseen and re-listed before the effect landed.
        view = await fence.view(true)
        const now = await fence.claim(view, digests)
        const newlyDoomed = [...now].some((d) => !doomed.has(d))
        if (!newlyDoomed) return result
        doomed = now
        if (attempt >= 3) return work(doomed, attempt + 1)
      }
    },

    epoch: () => epoch,

    async awaitDeletion(digest) {
      // Deleting one blob's links and bytes takes a few requests; a run that died is over once its
      // lease ran out.
      const deadline = clocks.monotonic() + LEASE_MS + CLOCK_SKEW_MS + 5_000
      for (let i = 0; i < 1_000 && clocks.monotonic() < deadline; i++) {
        const view = await fence.view(true)
        const waiting = await Promise.all(view.active.map(async (run) => {
          const batches = await readBatches(run)
          const batch = batches.batchOf(digest.value)
          return batch !== undefined && !batches.done.has(batch) && !batches.kept.get(batch)?.has(digest.value)
        }))
        if (!waiting.some(Boolean)) return
        await new Promise((ok) => setTimeout(ok, 100))
      }
      throw new Error(`blob ${digest.value} is still being deleted by garbage collection after ${Math.round((LEASE_MS + CLOCK_SKEW_MS) / 1000)} s`)
    },

    stale: (modifiedAt) => clocks.wall() - modifiedAt.getTime() >= TOUCH_AFTER_MS,
  }
  return fence
}

export interface GcRunOptions {
  clocks?: Clocks
  settleMs?: number
  sleep?: (ms: number) => Promise<void>
  /** Digests per batch (tests); BATCH_SIZE by default. */
  batchSize?: number
  /** Lease timing, for tests. */
  leaseMs?: number
  renewMs?: number
  leaseMarginMs?: number
}

export interface DecidedBatch {
  readonly id: string
  readonly deleting: readonly Digest[]
  /** Blobs of the batch a use kept. */
  readonly kept: readonly Digest[]
}

/** GC's side of the protocol: one run, from publication to its record. */
export interface GcRun {
  readonly id: string
  /** Resolves once every use that could not see this run has landed its effect. */
  settled(): Promise<void>
  /**
   * Writes the blobs GC means to delete as batches, then reads which of them a use kept: resolves to
   * each batch with the blobs it may delete. Called once per run, with every candidate.
   */
  decide(digests: readonly Digest[]): Promise<DecidedBatch[]>
  /** Records that a batch's bytes are gone (uploads waiting for them go on). */
  done(batch: DecidedBatch): Promise<void>
  /** Throws when the lease may have run out: nothing may be deleted any more. */
  assertLease(): void
  /** Marks the run finished and removes its decisions. */
  finish(): Promise<void>
}

/** Starts a run: removes what runs that finished long ago or died left behind, publishes this one and keeps its lease renewed until `finish`. */
export async function startGcRun(driver: StorageDriver, options: GcRunOptions = {}): Promise<GcRun> {
  const clocks = options.clocks ?? systemClocks
  const settleMs = options.settleMs ?? SETTLE_MS
  const leaseMs = options.leaseMs ?? LEASE_MS
  const marginMs = options.leaseMarginMs ?? LEASE_MARGIN_MS
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((ok) => setTimeout(ok, ms)))
  const id = `${new Date(clocks.wall()).toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`

  for (const other of await driver.list(paths.gcRuns)) {
    const run = await readRun(driver, other)
    const over = run?.finishedAt ? Date.parse(run.finishedAt) + FINISHED_KEPT_MS : run ? Date.parse(run.expiresAt) + CLOCK_SKEW_MS + leaseMs : 0
    if (clocks.wall() > over) await Promise.all([driver.delete(paths.gcRun(other)), driver.delete(paths.gcRunFolder(other))])
  }

  const startedAt = new Date(clocks.wall()).toISOString()
  const record = (extra: Partial<RunRecord> = {}): string => JSON.stringify({
    id, startedAt, expiresAt: new Date(clocks.wall() + leaseMs).toISOString(), ...extra,
  } satisfies RunRecord)
  let renewedAt = clocks.monotonic()
  await driver.putContent(paths.gcRun(id), record())
  const publishedAt = clocks.monotonic()
  let stopped = false
  const timer = setInterval(() => {
    const at = clocks.monotonic()
    driver.putContent(paths.gcRun(id), record()).then(() => { if (!stopped) renewedAt = Math.max(renewedAt, at) }, () => { /* next tick tries again; assertLease notices */ })
  }, options.renewMs ?? RENEW_MS)
  timer.unref()

  const run: GcRun = {
    id,
    async settled() {
      const left = publishedAt + settleMs - clocks.monotonic()
      if (left > 0) await sleep(left)
    },
    assertLease() {
      if (clocks.monotonic() - renewedAt > leaseMs - marginMs) {
        throw new Error(`gc run ${id} could not renew its lease in the store for ${Math.round((clocks.monotonic() - renewedAt) / 1000)} s: stopping before deleting anything more`)
      }
    },
    async decide(digests) {
      run.assertLease()
      const batches: Digest[][] = []
      const size = options.batchSize ?? BATCH_SIZE
      for (let i = 0; i < digests.length; i += size) batches.push(digests.slice(i, i + size))
      const name = (i: number) => String(i).padStart(6, '0')
      await forEachLimit(batches.keys(), 8, (i) => driver.putContent(paths.gcBatch(id, name(i)), JSON.stringify(batches[i]!.map((d) => d.value))))
      // Every batch is written: only now may `keep/` be read (the module comment says why).
      const kept = new Set(await driver.list(paths.gcKeeps(id)))
      const decided = batches.map((batch, i) => ({
        id: name(i),
        deleting: batch.filter((d) => !kept.has(decisionKey(d))),
        kept: batch.filter((d) => kept.has(decisionKey(d))),
      }))
      // What GC keeps, published before anything is deleted: a push on another process that finds
      // a kept blob in a batch must not take it for doomed (a client may have been told it exists).
      await forEachLimit(decided, 8, (b) => driver.putContent(paths.gcBatchDecided(id, b.id), JSON.stringify(b.kept.map((d) => d.value))))
      return decided
    },
    async done(batch) {
      await driver.putContent(paths.gcBatchDone(id, batch.id), '')
    },
    async finish() {
      stopped = true
      clearInterval(timer)
      await driver.putContent(paths.gcRun(id), record({ finishedAt: new Date(clocks.wall()).toISOString() }))
      // A push that read the runs a moment ago may still add a decision: what is left over goes
      // with the run's record, once it has been finished for FINISHED_KEPT_MS.
      await driver.delete(paths.gcRunFolder(id)).catch(() => {})
    },
  }
  return run
}
