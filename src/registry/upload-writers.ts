/**
 * @module One writer per upload session, across workers, processes and instances, on any store
 * with an atomic create-if-absent (`StorageDriver.createOnce`).
 *
 * A request that writes to a session (a PATCH, or the PUT that completes it) holds it first:
 *
 * 1. It has read the session's size `o`, where its bytes start (a Content-Range must say the same).
 * 2. When `o` > 0 it lists the session's claims, `writer-<offset>-<gen>`. A live claim (renewed
 *    within the lease) at an offset below `o` is a writer still streaming the bytes this request
 *    saw arrive: refused. At offset `o` the highest gen decides: live, refused; stale, this request
 *    takes the next gen (none there: gen 0).
 * 3. It creates its claim with createOnce: of the requests that try one name, exactly one wins;
 *    the others are refused. (At offset 0 nothing is below: step 2 runs only when gen 0 exists.)
 * 4. The store appends only if the data still holds `o` bytes (`AppendOptions.at`): a writer that
 *    ended between 1 and 3 moved the size on. A completing PUT without a body re-reads the size.
 * 5. While it runs it renews its claim every lease/4 (the claim holds the wall-clock time of its
 *    last renewal) and checks, before every write that changes the data (`AppendOptions.guard`),
 *    that its last renewal started less than lease/2 ago by its own monotonic clock; past that it
 *    stops with 503 and writes nothing more, even if a late renewal lands.
 * 6. When it ends it stops renewing and deletes its claim (a completed upload's claim goes with the
 *    session folder).
 *
 * A refused request gets 416 with the session's current `Range`, as for a chunk out of order.
 *
 * Why two writers never write at once. Say W holds offset `w` and R read size `o`. If `o` = `w`,
 * createOnce lets one of them claim that name; a later R either sees W's live claim or, W having
 * ended, fails the size check. If `o` > `w`, the size passed `w` after W created its claim (W saw
 * size `w` after claiming), so R's listing, made after R read `o`, shows W's claim until W ends. If
 * `o` < `w`, the size is past `o` already and R's size check fails. A claim is taken over only when
 * stale, a lease after its last renewal by the taker's clock, while its writer stopped itself at
 * lease/2 by its own: instances' clocks must agree to within lease/2 (NTP does, by far). A writer
 * killed with kill -9 blocks its session for at most a lease; for a writer on the same machine, not
 * even that: a claim names its process (Linux boot id, pid namespace, pid and start time), and a
 * process seeing the same kernel and pid namespace knows at once whether that process is gone (a
 * restart, a replaced worker). The store must read its own writes and list them at once (S3,
 * Tigris in one region, Ceph RGW and a local folder do).
 *
 * Cost on S3: a PATCH adds a conditional PUT and a DELETE, and a LIST when it doesn't start at 0;
 * the completing PUT adds a LIST, a conditional PUT and a read of the session's state; a writer
 * running longer than lease/4 adds a PUT per lease/4.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { type StorageDriver, StorageUnavailableError } from '../storage/driver.js'
import { paths } from './paths.js'

export interface WriterHold {
  /** Throws once the hold may have lapsed (call before each write): then it never passes again. */
  guard: () => void
  /** Renewals written so far. */
  renewals(): number
  /** No more renewals; resolves once none is in flight. */
  stop(): Promise<void>
  /** The claim went with the session folder: `release` won't delete it. */
  forget(): void
  /** Stops renewing and deletes the claim (unless forgotten), so the next writer needn't wait. */
  release(): Promise<void>
}

export interface UploadWriters {
  /** Holds the session for a request writing from `offset`; undefined when another writer has it. */
  hold(repo: string, id: string, offset: number): Promise<WriterHold | undefined>
}

export interface UploadWritersOptions {
  /** A claim not renewed for this long is stale (its writer died). */
  leaseMs: number
}

export const DEFAULT_WRITER_LEASE_MS = 30_000

const CLAIM = /^writer-(\d{1,16})-(\d{1,9})$/

interface Claim {
  writer: string
  /** Date.now() when its last renewal started. */
  renewed: number
  /** The writing process, where the system says (Linux). */
  process?: ProcessIdentity
}

interface ProcessIdentity {
  /** /proc/sys/kernel/random/boot_id: one per kernel boot. */
  boot: string
  /** The pid namespace (containers on one kernel have their own), e.g. "pid:[4026531836]". */
  ns: string
  pid: number
  /** Field 22 of /proc/<pid>/stat: when the process started, so a reused pid isn't taken for it. */
  start: string
}

/** This process's identity, or undefined where /proc doesn't tell (not Linux). */
function ownIdentity(): ProcessIdentity | undefined {
  try {
    const start = startTime(process.pid)
    if (!start) return undefined
    return { boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), ns: readlinkSync('/proc/self/ns/pid'), pid: process.pid, start }
  } catch {
    return undefined
  }
}

/** The start time of a process, or undefined when there is no such process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // After the command name, which may hold spaces and parentheses: fields 3 onwards.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

const self = ownIdentity()

/** A claim's writer is a process of this kernel and pid namespace that no longer runs. */
function isGone(writer: ProcessIdentity | undefined): boolean {
  if (!self || !writer || writer.boot !== self.boot || writer.ns !== self.ns || !Number.isInteger(writer.pid) || writer.pid <= 0) return false
  return startTime(writer.pid) !== writer.start
}

export function createUploadWriters(driver: StorageDriver, options: UploadWritersOptions): UploadWriters {
  const lease = options.leaseMs

  /** Whether a claim is held by a writer that may still write. Gone or unreadable: no. */
  async function isLive(path: string): Promise<boolean> {
    const bytes = await driver.getContent(path)
    if (!bytes) return false
    let claim: Partial<Claim>
    try {
      claim = JSON.parse(bytes.toString('utf8')) as Partial<Claim>
    } catch {
      return false
    }
    return typeof claim.renewed === 'number' && Date.now() - claim.renewed <= lease && !isGone(claim.process)
  }

  async function isOwn(path: string, writer: string): Promise<boolean> {
    const bytes = await driver.getContent(path)
    try {
      return bytes !== undefined && (JSON.parse(bytes.toString('utf8')) as Partial<Claim>).writer === writer
    } catch {
      return false
    }
  }

  /** The next gen to claim at `offset`, or undefined when a writer below or at it is live. */
  async function nextGen(repo: string, id: string, offset: number): Promise<number | undefined> {
    const highest = new Map<number, number>()
    for (const name of await driver.list(paths.upload(repo, id))) {
      const m = CLAIM.exec(name)
      if (!m) continue
      const at = Number(m[1])
      const gen = Number(m[2])
      if (at <= offset && gen >= (highest.get(at) ?? -1)) highest.set(at, gen)
    }
    // Lower gens at one offset were taken over (stale): only the highest can be live.
    const live = await Promise.all([...highest].map(([at, gen]) => isLive(paths.uploadWriter(repo, id, at, gen))))
    if (live.some(Boolean)) return undefined
    const top = highest.get(offset)
    return top === undefined ? 0 : top + 1
  }

  return {
    async hold(repo, id, offset) {
      const began = performance.now()
      let gen = offset > 0 ? await nextGen(repo, id, offset) : 0
      if (gen === undefined) return undefined
      let path = paths.uploadWriter(repo, id, offset, gen)
      const writer = randomUUID()
      const content = () => JSON.stringify({ writer, renewed: Date.now(), ...(self ? { process: self } : {}) } satisfies Claim)
      // A create whose first attempt landed but whose answer was lost is retried and refused: then
      // the claim there is this request's own.
      const claim = async (at: string) => (await driver.createOnce(at, content(), { transient: true })) || await isOwn(at, writer)
      let renewedAt = performance.now()
      let won = await claim(path)
      if (!won && offset === 0 && gen === 0) {
        // Someone held offset 0 before: live, or stale (a writer died before keeping a byte).
        gen = await nextGen(repo, id, offset)
        if (gen === undefined) return undefined
        path = paths.uploadWriter(repo, id, offset, gen)
        renewedAt = performance.now()
        won = await claim(path)
      }
      if (!won) return undefined
      // What this request listed may be older than a lease by now (a stalled process): don't trust it.
      if (performance.now() - began > lease / 2) {
        await driver.delete(path, 'file').catch(() => {})
        return undefined
      }

      let lost = false
      let stopped = false
      let forgotten = false
      let renewals = 0
      let renewing: Promise<void> | undefined
      const lapsed = () => lost || (lost = performance.now() - renewedAt > lease / 2)
      const timer = setInterval(() => {
        if (stopped || renewing || lapsed()) return
        const started = performance.now()
        renewing = driver.putContent(path, content()).then(() => {
          renewals++
          if (!lost) renewedAt = started
        }, () => { /* the next tick tries again; the guard stops the writer at lease/2 */ }).finally(() => { renewing = undefined })
      }, lease / 4)
      timer.unref()

      const stop = async () => {
        stopped = true
        clearInterval(timer)
        await renewing
      }
      return {
        guard: () => {
          if (lapsed()) {
            throw new StorageUnavailableError(`upload session ${id}: this request could not renew its hold on the session for ${Math.round(lease / 2000)} s (the store is slow or unreachable), so it stopped writing; the bytes kept so far stay`)
          }
        },
        renewals: () => renewals,
        stop,
        forget: () => { forgotten = true },
        async release() {
          await stop()
          if (!forgotten) await driver.delete(path, 'file').catch(() => { /* stale within a lease */ })
          forgotten = true
        },
      }
    },
  }
}
