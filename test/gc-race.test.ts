/**
 * GC against four pushers that re-use old layers (test/support/gc-race.ts): on the filesystem with
 * two workers behind one port, and on S3 (the Ceph RGW of the test run) with two instances on one
 * bucket. Nothing acknowledged may be lost.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { gcAgainstPushers } from './support/gc-race.js'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()

describe('GC against pushers re-using old layers: filesystem, two workers', () => {
  const root = tempDir('gc-race')
  const dir = tempDir('gc-race-config')
  let enlil: Running
  const env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_DELETE_ENABLED: 'true' }
  beforeAll(async () => { enlil = await startEnlil(root, { ...env, ENLIL_WORKERS: '2' }) })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(root)
    removeDir(dir)
  })
  it('0 of the acknowledged images lost; every layer a client was told exists stays', { timeout: 180_000 }, async () => {
    await gcAgainstPushers({ urls: [enlil.url], env, dir, logs: () => enlil.output() })
  })
})

describe.skipIf(!s3)('GC against pushers re-using old layers: S3, two instances on one bucket', () => {
  const bucket = `gc-race-${randomBytes(4).toString('hex')}`
  const dir = tempDir('gc-race-s3-config')
  let env: Record<string, string>
  const instances: Running[] = []
  beforeAll(async () => {
    await createBucket(bucket)
    env = { ...enlilS3Environment(bucket), REGISTRY_STORAGE_DELETE_ENABLED: 'true' }
    for (let i = 0; i < 2; i++) instances.push(await startEnlil('/nonexistent-fs-root', env))
  })
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()))
    await deleteBucket(bucket)
    removeDir(dir)
  })
  it('0 of the acknowledged images lost; every layer a client was told exists stays', { timeout: 240_000 }, async () => {
    await gcAgainstPushers({ urls: instances.map((i) => i.url), env, dir, logs: () => instances.map((i) => i.output()).join('\n') })
  })
})
