/**
 * @module The filesystem store's small operations: stat, reading and writing a link or a manifest,
 * rename, link, mkdir, rmdir, unlink.
 *
 * They run synchronously on the event loop while the disk answers fast. A trip through libuv's
 * thread pool wakes a pool thread and then the loop again: on the 2-core VM of the benchmarks that
 * cost 2–4 times the CPU of the operation itself, and a manifest PUT makes about twenty of them.
 * Made synchronous, one process went from 1.5x to 2.3x distribution's rate of manifest PUTs in the
 * benchmark, and from 1.7x to 4.2x on manifest GETs.
 *
 * A slow disk (a network mount, a stalled device) must not stall every request of the process, so
 * the time of each synchronous call is watched: one call slower than `stallMs`, or an average above
 * `slowAverageMs`, sends the process to the thread pool for `cooldownMs`, after which it tries again.
 */
import * as fs from 'node:fs'
import { promisify } from 'node:util'

export type MetadataMode = 'auto' | 'sync' | 'async'

export interface StallLimits {
  /** One synchronous call this slow switches to the thread pool. */
  stallMs: number
  /** A moving average of synchronous calls above this switches to the thread pool. */
  slowAverageMs: number
  /** How long the thread pool is used before synchronous calls are tried again. */
  cooldownMs: number
}

export interface MetadataOptions extends Partial<StallLimits> {
  /** `auto` (the default): synchronous while fast, as described above. */
  mode?: MetadataMode
  /** Told when the process switches to the thread pool (once per switch). */
  onSlow?: (reason: string) => void
}

export interface MetadataOps {
  /** undefined when nothing is there (ENOENT), without the cost of building an error. */
  stat(path: string): Promise<fs.Stats | undefined>
  readFile(path: string): Promise<Buffer>
  /**
   * `exclusive`: fail with EEXIST instead of replacing an existing file; `append`: add to the end of
   * the file (created when missing); `durable`: the bytes are on the disk (fdatasync) when this resolves.
   */
  writeFile(path: string, data: string | Uint8Array, options?: { exclusive?: boolean; append?: boolean; durable?: boolean }): Promise<void>
  /** Puts a file's written bytes on the disk (fdatasync). */
  flush(path: string): Promise<void>
  rename(from: string, to: string): Promise<void>
  /** A hard link: fails with EEXIST when something is at `to`. */
  link(from: string, to: string): Promise<void>
  mkdirp(path: string): Promise<void>
  rmdir(path: string): Promise<void>
  unlink(path: string): Promise<void>
  /** The entries of a folder known to be small (a finished upload's), with their types. */
  readdir(path: string): Promise<fs.Dirent[]>
  /** True while calls go through the thread pool. */
  readonly usingThreadPool: boolean
}

/** Weight of the newest call in the moving average. */
const AVERAGE_WEIGHT = 0.05

export interface StallGuard {
  /** May the next call run synchronously? (No side effect: the cooldown ends by the clock.) */
  allowsSync(now: number): boolean
  /** Records how long a synchronous call took; returns the reason when this switches to the pool. */
  record(ms: number, now: number): string | undefined
}

/** The decision of `auto` mode, apart from any clock or file system. */
export function createStallGuard(limits: StallLimits): StallGuard {
  let average = 0
  let poolUntil = 0
  return {
    allowsSync: (now) => now >= poolUntil,
    record(ms, now) {
      // The first call after a cooldown starts afresh: the slow calls before it are forgotten.
      if (poolUntil !== 0) {
        poolUntil = 0
        average = 0
      }
      average += (ms - average) * AVERAGE_WEIGHT
      const reason = ms > limits.stallMs ? `one call took ${ms.toFixed(0)} ms`
        : average > limits.slowAverageMs ? `calls averaged ${average.toFixed(1)} ms` : undefined
      if (reason) poolUntil = now + limits.cooldownMs
      return reason
    },
  }
}

const pool = {
  stat: promisify(fs.stat),
  readFile: promisify(fs.readFile),
  writeFile: promisify(fs.writeFile),
  rename: promisify(fs.rename),
  link: promisify(fs.link),
  mkdir: promisify(fs.mkdir),
  rmdir: promisify(fs.rmdir),
  unlink: promisify(fs.unlink),
  readdir: (p: string) => fs.promises.readdir(p, { withFileTypes: true }),
  open: promisify(fs.open),
  write: promisify(fs.write) as (fd: number, data: Uint8Array) => Promise<unknown>,
  close: promisify(fs.close),
  // Waits for the disk: never on the event loop, whatever the mode.
  fdatasync: promisify(fs.fdatasync),
}

export function createMetadataOps(options: MetadataOptions = {}): MetadataOps {
  const mode = options.mode ?? 'auto'
  const guard = createStallGuard({ stallMs: options.stallMs ?? 50, slowAverageMs: options.slowAverageMs ?? 2, cooldownMs: options.cooldownMs ?? 60_000 })

  const useSync = (): boolean => (mode === 'auto' ? guard.allowsSync(performance.now()) : mode === 'sync')

  /** Runs a synchronous call and judges its time; errors are returned as rejections, like the pool's. */
  async function timed<T>(call: () => T): Promise<T> {
    const started = performance.now()
    try {
      return call()
    } finally {
      if (mode === 'auto') {
        const ended = performance.now()
        const reason = guard.record(ended - started, ended)
        if (reason) options.onSlow?.(reason)
      }
    }
  }

  const either = <A extends unknown[], T>(sync: (...args: A) => T, viaPool: (...args: A) => Promise<T>) =>
    (...args: A): Promise<T> => (useSync() ? timed(() => sync(...args)) : viaPool(...args))

  const open = either((p: string, flags: string) => fs.openSync(p, flags), (p, flags) => pool.open(p, flags))
  const write = either(
    (fd: number, data: Uint8Array) => void fs.writeSync(fd, data),
    async (fd, data) => void (await pool.write(fd, data)),
  )
  const close = either((fd: number) => fs.closeSync(fd), pool.close)
  const plainWrite = either(
    (p: string, data: string | Uint8Array, flag: string) => fs.writeFileSync(p, data, { flag }),
    (p, data, flag) => pool.writeFile(p, data, { flag }),
  )

  /** Runs `work` on an open file, closing it whatever happens. */
  async function withFile(p: string, flags: string, work: (fd: number) => Promise<void>): Promise<void> {
    const fd = await open(p, flags)
    try {
      await work(fd)
    } finally {
      await close(fd)
    }
  }

  return {
    stat: either(
      (p: string) => fs.statSync(p, { throwIfNoEntry: false }),
      (p) => pool.stat(p).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err }),
    ),
    readFile: either((p: string) => fs.readFileSync(p), (p) => pool.readFile(p)),
    async writeFile(p, data, options = {}) {
      const flag = options.append ? 'a' : options.exclusive ? 'wx' : 'w'
      if (!options.durable) return plainWrite(p, data, flag)
      await withFile(p, flag, async (fd) => {
        await write(fd, typeof data === 'string' ? Buffer.from(data) : data)
        await pool.fdatasync(fd)
      })
    },
    flush: (p) => withFile(p, 'r', (fd) => pool.fdatasync(fd)),
    rename: either((from: string, to: string) => fs.renameSync(from, to), pool.rename),
    link: either((from: string, to: string) => fs.linkSync(from, to), pool.link),
    mkdirp: either(
      (p: string) => void fs.mkdirSync(p, { recursive: true }),
      async (p) => void (await pool.mkdir(p, { recursive: true })),
    ),
    rmdir: either((p: string) => fs.rmdirSync(p), pool.rmdir),
    unlink: either((p: string) => fs.unlinkSync(p), pool.unlink),
    readdir: either((p: string) => fs.readdirSync(p, { withFileTypes: true }), pool.readdir),
    get usingThreadPool() {
      return mode === 'async' || (mode === 'auto' && !guard.allowsSync(performance.now()))
    },
  }
}
