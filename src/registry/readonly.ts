/**
 * @module Read-only mode: on when the config says so, or while a marker object is in the store
 * (`enlil readonly on`), so one command switches every instance on the folder or bucket. Each
 * instance reads the marker at most once per `cacheMs`; a switch takes effect within that time.
 */
import type { StorageDriver } from '../storage/driver.js'
import { paths } from './paths.js'

export interface ReadOnlyState {
  /** Why writes are refused (the marker's reason, or the config), or undefined when they are not. */
  reason(): Promise<string | undefined>
}

export interface ReadOnlyMarker {
  reason?: string
  since: string
}

export const CONFIGURED_REASON = 'storage.maintenance.readonly.enabled is set in the configuration'

export function createReadOnlyState(driver: StorageDriver, options: { configured: boolean; cacheMs?: number }): ReadOnlyState {
  const cacheMs = options.cacheMs ?? 3_000
  let cached: { reason: string | undefined; at: number } | undefined
  let reading: Promise<string | undefined> | undefined
  const read = async (): Promise<string | undefined> => {
    const marker = await readMarker(driver)
    cached = { reason: marker ? marker.reason || `switched on with \`enlil readonly on\` at ${marker.since}` : undefined, at: Date.now() }
    return cached.reason
  }
  return {
    async reason() {
      if (options.configured) return CONFIGURED_REASON
      if (cached && Date.now() - cached.at < cacheMs) return cached.reason
      // One read for every write request that arrives while it is under way.
      reading ??= read().finally(() => { reading = undefined })
      return reading
    },
  }
}

export async function readMarker(driver: StorageDriver): Promise<ReadOnlyMarker | undefined> {
  const bytes = await driver.getContent(paths.readOnlyMarker)
  if (bytes === undefined) return undefined
  try {
    return JSON.parse(bytes.toString('utf8')) as ReadOnlyMarker
  } catch {
    // Someone wrote it by hand: its presence is what counts.
    return { since: 'an unknown time' }
  }
}

export async function setReadOnly(driver: StorageDriver, on: boolean, reason?: string): Promise<void> {
  if (on) await driver.putContent(paths.readOnlyMarker, JSON.stringify({ since: new Date().toISOString(), ...(reason ? { reason } : {}) } satisfies ReadOnlyMarker))
  else await driver.delete(paths.readOnlyMarker)
}
