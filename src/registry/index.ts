/** @module The registry core: OCI semantics over a storage driver, knowing nothing about HTTP. */
import type { StorageDriver } from '../storage/driver.js'
import { type BlobStore, createBlobStore } from './blobs.js'
import { type Catalog, createCatalog } from './catalog.js'
import { createManifestStore, type ManifestStore } from './manifests.js'
import { createUploadStore, type UploadStore } from './uploads.js'
import { REPOSITORIES } from './paths.js'
import { createQuotas, type QuotaOptions, type Quotas } from './quotas.js'
import { createReadOnlyState, type ReadOnlyState } from './readonly.js'
import { createMounts, type Mounts } from './mounts.js'

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
  /** Resolves when the store answers (one cheap listing), for readiness checks. */
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
  /** How long a writer that died can hold its upload session. */
  uploadWriterLeaseMs?: number
}

export function createRegistry(driver: StorageDriver, options: RegistryOptions = {}): Registry {
  const blobs = createBlobStore(driver, { redirect: options.redirect ?? false })
  const quotas = options.quotas ? createQuotas(driver, blobs, options.quotas) : undefined
  const catalog = createCatalog(driver)
  return {
    driver,
    blobs,
    quotas,
    readOnly: createReadOnlyState(driver, { configured: options.readOnly ?? false, cacheMs: options.readOnlyCacheMs }),
    uploads: createUploadStore(driver, blobs, quotas, { writerLeaseMs: options.uploadWriterLeaseMs }),
    manifests: createManifestStore(driver, blobs, { cacheBytes: options.manifestCacheBytes }),
    catalog,
    mounts: createMounts(blobs, catalog, quotas),
    ready: async () => { await driver.list(REPOSITORIES) },
  }
}
