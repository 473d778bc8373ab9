/**
 * @module Leases in the store: at most one process (of any worker or instance on the store) fetches
 * a given thing from an upstream at a time; the others wait for it to land in the store.
 *
 * A lease is `leases/<key>/<generation>`, created once (`createOnce`: an exclusive link on disk,
 * `If-None-Match: *` on S3), holding when it runs out; its holder renews it while it works and
 * deletes the folder when done. A lease that ran out (its holder died) is taken over by creating the
 * next generation, which again only one process can do. Leases only save upstream transfers: what
 * is fetched is content-addressed and verified, so two fetchers (a lease taken over from a holder
 * that was only slow) store the same bytes twice, never wrong ones.
 */
import { hostname } from 'node:os'
import type { StorageDriver } from '../storage/driver.js'
import { paths } from '../registry/paths.js'

export interface Lease {
  release(): Promise<void>
}

export interface Leases {
  /** The lease on `key`, or undefined while another process holds a live one. */
  acquire(key: string): Promise<Lease | undefined>
  /** Whether some process holds a live lease on `key` (what it fetches is in progress). */
  held(key: string): Promise<boolean>
}

export interface LeaseOptions {
  /** How long a lease lasts without renewal. */
  leaseMs?: number
  /** Clocks of different machines may differ by this much. */
  skewMs?: number
}

export function createLeases(driver: StorageDriver, options: LeaseOptions = {}): Leases {
  const leaseMs = options.leaseMs ?? 30_000
  const skewMs = options.skewMs ?? 5_000
  const owner = `${hostname()}/${process.pid}`
  const record = () => JSON.stringify({ owner, expiresAt: new Date(Date.now() + leaseMs).toISOString() })

  /** The newest generation, and whether it is live. */
  async function current(key: string): Promise<{ top: number; live: boolean }> {
    const generations = (await driver.list(paths.mirrorLeases(key))).map(Number).filter((n) => Number.isInteger(n) && n >= 0)
    const top = generations.length > 0 ? Math.max(...generations) : -1
    if (top < 0) return { top, live: false }
    const held = await driver.getContent(paths.mirrorLease(key, top))
    let expiresAt = Number.NaN
    try {
      expiresAt = Date.parse((JSON.parse(held?.toString('utf8') ?? '') as { expiresAt: string }).expiresAt)
    } catch {
      // Gone (released meanwhile) or unreadable: the next generation decides.
    }
    return { top, live: held !== undefined && !(Date.now() > expiresAt + skewMs) }
  }

  return {
    held: async (key) => (await current(key)).live,

    async acquire(key) {
      const folder = paths.mirrorLeases(key)
      const { top, live } = await current(key)
      if (live) return undefined
      const generation = top + 1
      const path = paths.mirrorLease(key, generation)
      if (!(await driver.createOnce(path, record()))) return undefined
      const timer = setInterval(() => { driver.putContent(path, record()).catch(() => { /* the next tick tries again */ }) }, Math.max(1_000, leaseMs / 3))
      timer.unref()
      return {
        async release() {
          clearInterval(timer)
          await driver.delete(folder).catch(() => { /* it runs out by itself */ })
        },
      }
    },
  }
}
