/** @module What the routes need, passed by closure from createApp. */
import type { Context } from 'hono'
import type { Registry } from '../../registry/index.js'
import { RegistryError } from '../../oci/errors.js'
import type { AppEnv } from '../env.js'
import { baseUrl } from '../headers.js'
import type { Notifier } from '../../observe/notifications.js'
import { metrics } from '../../observe/metrics.js'

export interface RouteDeps {
  registry: Registry
  deleteEnabled: boolean
  manifestMaxSize: number
  /** Public base URL for Location headers; else derived from each request. */
  publicUrl?: string
  /** Webhooks; undefined when none are configured. */
  notifier?: Notifier
  /** The process to name in an upload's Location (`?_owner=`), when uploads are forwarded (http/forwarding.ts). */
  uploadOwner?: (c: Context<AppEnv>) => string | undefined
}

/** Counts an upload request streaming bytes (the uploads-in-progress gauge) while `work` runs. */
export async function streamingUpload<T>(work: () => Promise<T>): Promise<T> {
  metrics.uploadsInProgress.add(1)
  try {
    return await work()
  } finally {
    metrics.uploadsInProgress.add(-1)
  }
}

export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const

export function absolute(c: Context<AppEnv>, deps: RouteDeps, path: string): string {
  return `${baseUrl(deps.publicUrl, c.req.url, c.req.raw.headers)}${path}`
}

export function requireDeleteEnabled(deps: RouteDeps): void {
  if (!deps.deleteEnabled) {
    throw new RegistryError('UNSUPPORTED', 'deletion is disabled on this registry (enable it with storage.delete.enabled or REGISTRY_STORAGE_DELETE_ENABLED=true)')
  }
}
