/** @module The registry core: OCI semantics over a storage driver, knowing nothing about HTTP. */
import type { StorageDriver } from '../storage/driver.js'
import { type BlobStore, createBlobStore } from './blobs.js'
import { type Catalog, createCatalog } from './catalog.js'
import { type CatalogIndexOptions, createCatalogIndex, indexWrites } from './catalog-index.js'
import { createManifestStore, type ManifestStore } from './manifests.js'
import { createUploadStore, type UploadStore } from './uploads.js'
import { paths, REPOSITORIES } from './paths.js'
import { createQuotas, type QuotaOptions, type Quotas } from './quotas.js'
import { createReadOnlyState, type ReadOnlyState } from './readonly.js'
import { createMounts, type Mounts } from './mounts.js'
import { createGcFence, type GcFence, type GcFenceOptions } from './gc-protocol.js'

export interface Registry {
  driver: StorageDriver
  blobs: BlobStore
  uploads: UploadStore
  manifests: ManifestStore
  catalog: Catalog
  mounts: Mounts
  /** Undefined when no quota is configured. */
  quotas?: Quotas
  readOnly: ReadOnlyState
  /** Garbage collection's fence on this process's pushes (gc-protocol.ts). */
  gcFence: GcFence
  /**
   * Resolves when the store answers a listing and takes a small write (unless the registry is
   * read-only by configuration: a replica may hold read-only credentials), for readiness checks.
   */
  ready(): Promise<void>
}

export interface RegistryOptions {
  /** Blob GETs answer with a redirect to the store (presigned URL) where the driver can. */
  redirect?: boolean
  manifestCacheBytes?: number
  quotas?: QuotaOptions
  /** Read-only by configuration; else while the store holds the marker of `enlil readonly on`. */
  readOnly?: boolean
  readOnlyCacheMs?: number
  /** Clocks and bounds of the GC protocol, for tests. */
  gcFence?: GcFenceOptions
  /** How long a writer that died can hold its upload session. */
  uploadWriterLeaseMs?: number
  /** Clocks of the catalog index, for tests. */
  catalogIndex?: CatalogIndexOptions
}

export function createRegistry(store: StorageDriver, options: RegistryOptions = {}): Registry {
  // Every write of a repository's content puts its catalog marker first (catalog-index.ts).
  const index = createCatalogIndex(store, options.catalogIndex)
  const driver = indexWrites(store, index)
  const gcFence = createGcFence(driver, options.gcFence)
  const readOnly = createReadOnlyState(driver, { configured: options.readOnly ?? false, cacheMs: options.readOnlyCacheMs })
  const blobs = createBlobStore(driver, {
    redirect: options.redirect ?? false, fence: gcFence, readOnly: async () => (await readOnly.reason()) !== undefined,
  })
  const quotas = options.quotas ? createQuotas(driver, blobs, options.quotas) : undefined
  const catalog = createCatalog(driver, index, { mayBuild: async () => (await readOnly.reason()) === undefined })
  return {
    driver,
    blobs,
    quotas,
    readOnly,
    gcFence,
    uploads: createUploadStore(driver, blobs, quotas, { writerLeaseMs: options.uploadWriterLeaseMs, fence: gcFence }),
    manifests: createManifestStore(driver, blobs, { cacheBytes: options.manifestCacheBytes, fence: gcFence }),
    catalog,
    mounts: createMounts(blobs, catalog, quotas, gcFence),
    ready: async () => {
      await driver.list(REPOSITORIES)
      // A folder or bucket that lists but refuses writes would take every push's bytes and fail at the end.
      if (!options.readOnly) await driver.putContent(paths.readinessProbe, new Date().toISOString())
    },
  }
}
