/** @module The storage driver a config names: the filesystem, or S3 (loaded only then). */
import type { Config } from '../config/schema.js'
import type { Logger } from '../observe/log.js'
import { metrics } from '../observe/metrics.js'
import type { StorageDriver } from '../storage/driver.js'
import { createFilesystemDriver } from '../storage/filesystem.js'

/** The S3 endpoint of the config, with a scheme (distribution accepts a bare host and `secure`). */
export function s3Endpoint(config: Config): string | undefined {
  const s3 = config.storage.s3
  return s3.regionendpoint && !/^https?:\/\//.test(s3.regionendpoint) ? `${s3.secure ? 'https' : 'http'}://${s3.regionendpoint}` : s3.regionendpoint
}

/** Tigris's endpoints: `fly.storage.tigris.dev`, `t3.storage.dev` and their kin. */
export function isTigris(endpoint: string | undefined): boolean {
  if (!endpoint) return false
  try {
    const host = new URL(endpoint).hostname
    return host === 'tigris.dev' || host.endsWith('.tigris.dev') || host === 'storage.dev' || host.endsWith('.storage.dev')
  } catch {
    return false
  }
}

export async function createDriver(config: Config, log?: Logger): Promise<StorageDriver> {
  const fsConfig = config.storage.filesystem
  if (config.storage.driver === 'filesystem') {
    return countedByMethod(createFilesystemDriver(fsConfig.rootdirectory, {
      fsync: fsConfig.fsync,
      metadata: {
        mode: fsConfig.metadata,
        onSlow: (reason) => log?.warn('small file operations on the storage folder are slow (a slow disk, or an overloaded machine): they run on the thread pool for a minute', { reason }),
      },
    }))
  }
  // Loaded only for the s3 store: the AWS SDK is about 25 MiB of each process's memory.
  const { createS3Driver } = await import('../storage/s3.js')
  const s3 = config.storage.s3
  const endpoint = s3Endpoint(config)
  return createS3Driver({
    bucket: s3.bucket!,
    region: s3.region,
    endpoint,
    forcePathStyle: s3.forcepathstyle,
    accessKeyId: s3.accesskey,
    secretAccessKey: s3.secretkey,
    rootDirectory: s3.rootdirectory,
    partSize: s3.chunksize,
    encrypt: s3.encrypt,
    equalParts: s3.equalparts,
    rename: s3.tigrisrename === 'auto' ? isTigris(endpoint) : s3.tigrisrename === 'true',
    consistent: s3.tigrisconsistent,
    redirect: !config.storage.redirect.disable,
    onRequest: (operation) => metrics.storageRequests.inc([operation]),
  })
}


/** The filesystem driver, each call counted under the driver method's name (`stat`, `getContent`…). */
function countedByMethod(driver: StorageDriver): StorageDriver {
  const counted: Record<string, unknown> = { ...driver }
  for (const [name, value] of Object.entries(driver)) {
    if (typeof value !== 'function') continue
    const method = value as (...args: unknown[]) => unknown
    counted[name] = (...args: unknown[]) => {
      metrics.storageRequests.inc([name])
      return method.apply(driver, args)
    }
  }
  return counted as unknown as StorageDriver
}
