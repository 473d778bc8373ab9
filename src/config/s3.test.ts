import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'

const problems = (env: Record<string, string>, file?: string): string[] => {
  try {
    loadConfig(env, file)
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

describe('s3 configuration', () => {
  it('takes the environment of distribution on Tigris', () => {
    const config = loadConfig({
      REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'reg', REGISTRY_STORAGE_S3_ACCESSKEY: 'tid_x',
      REGISTRY_STORAGE_S3_SECRETKEY: 'tsec_y', REGISTRY_STORAGE_S3_REGION: 'auto',
      REGISTRY_STORAGE_S3_REGIONENDPOINT: 'https://t3.storage.dev', REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'false',
      REGISTRY_STORAGE_S3_SECURE: 'true', REGISTRY_STORAGE_S3_V4AUTH: 'true', REGISTRY_STORAGE_S3_CHUNKSIZE: '16777216',
      REGISTRY_STORAGE_S3_ROOTDIRECTORY: '/registry', REGISTRY_STORAGE_S3_ENCRYPT: 'false',
    })
    expect(config.storage.driver).toBe('s3')
    expect(config.storage.s3).toMatchObject({
      bucket: 'reg', accesskey: 'tid_x', secretkey: 'tsec_y', region: 'auto', regionendpoint: 'https://t3.storage.dev',
      forcepathstyle: false, chunksize: 16 * 1024 * 1024, rootdirectory: '/registry', encrypt: false,
    })
  })

  it('falls back to what `fly storage create` sets, and REGISTRY_ names win over it', () => {
    const fly = { AWS_ACCESS_KEY_ID: 'tid_fly', AWS_SECRET_ACCESS_KEY: 'tsec_fly', AWS_ENDPOINT_URL_S3: 'https://fly.storage.tigris.dev', AWS_REGION: 'auto', BUCKET_NAME: 'fly-bucket' }
    const config = loadConfig({ REGISTRY_STORAGE: 's3', ...fly })
    expect(config.storage.s3).toMatchObject({ bucket: 'fly-bucket', accesskey: 'tid_fly', secretkey: 'tsec_fly', regionendpoint: 'https://fly.storage.tigris.dev', region: 'auto' })
    expect(loadConfig({ REGISTRY_STORAGE: 's3', ...fly, REGISTRY_STORAGE_S3_BUCKET: 'mine' }).storage.s3.bucket).toBe('mine')
    // Without REGISTRY_STORAGE=s3 the filesystem stays the store.
    expect(loadConfig(fly).storage.driver).toBe('filesystem')
  })

  it('reads a distribution-style file where the s3 section names the store', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enlil-config-'))
    try {
      const file = join(dir, 'config.yml')
      writeFileSync(file, 'version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: auto\n    regionendpoint: https://t3.storage.dev\n  delete:\n    enabled: true\n')
      const config = loadConfig({}, file)
      expect(config.storage.driver).toBe('s3')
      expect(config.storage.s3.bucket).toBe('b')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('says what is missing or wrong, one line each', () => {
    expect(problems({ REGISTRY_STORAGE: 's3' })).toEqual([expect.stringMatching(/^storage\.s3\.bucket: required .*REGISTRY_STORAGE_S3_BUCKET or BUCKET_NAME/)])
    const bad = problems({ REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_V4AUTH: 'false', REGISTRY_STORAGE_S3_CHUNKSIZE: '1MiB', REGISTRY_STORAGE_S3_ACCESSKEY: 'only-half' })
    expect(bad).toHaveLength(3)
    expect(bad.join('\n')).toMatch(/storage\.s3\.v4auth \(from REGISTRY_STORAGE_S3_V4AUTH\): only AWS Signature Version 4/)
    expect(bad.join('\n')).toMatch(/chunksize.*: must be at least 5 MiB/)
    expect(bad.join('\n')).toMatch(/secretkey.*: accesskey and secretkey go together/)
    expect(problems({ REGISTRY_STORAGE: 'azure' })[0]).toMatch(/^storage\.driver \(from REGISTRY_STORAGE\)/)
  })
})
