/** @module The registry core: OCI semantics over a storage driver, knowing nothing about HTTP. */
import type { StorageDriver } from '../storage/driver.js'
import { type BlobStore, createBlobStore } from './blobs.js'
import { type Catalog, createCatalog } from './catalog.js'
import { createManifestStore, type ManifestStore } from './manifests.js'
import { createUploadStore, type UploadStore } from './uploads.js'
import { REPOSITORIES } from './paths.js'

export interface Registry {
  driver: StorageDriver
  blobs: BlobStore
  uploads: UploadStore
  manifests: ManifestStore
  catalog: Catalog
  /** Resolves when the store answers (one cheap listing), for readiness checks. */
  ready(): Promise<void>
}

export interface RegistryOptions {
  /** Blob GETs answer with a redirect to the store (presigned URL) where the driver can. */
  redirect?: boolean
  manifestCacheBytes?: number
}

export function createRegistry(driver: StorageDriver, options: RegistryOptions = {}): Registry {
  const blobs = createBlobStore(driver, { redirect: options.redirect ?? false })
  return {
    driver,
    blobs,
    uploads: createUploadStore(driver, blobs),
    manifests: createManifestStore(driver, blobs, { cacheBytes: options.manifestCacheBytes }),
    catalog: createCatalog(driver),
    ready: async () => { await driver.list(REPOSITORIES) },
  }
}
