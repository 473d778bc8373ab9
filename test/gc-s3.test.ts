/** `enlil gc` on the S3 store (the Ceph RGW the test run starts), beside a serving enlil on the same bucket. */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe } from 'vitest'
import { gcScenarios, type GcTarget } from './support/gc-scenarios.js'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()

describe.skipIf(!s3)('enlil gc on the S3 store', () => {
  const bucket = `gc-${randomBytes(4).toString('hex')}`
  let env: Record<string, string>
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    await createBucket(bucket)
    env = enlilS3Environment(bucket)
    dir = tempDir('gc-s3-config')
    enlil = await startEnlil('/nonexistent-fs-root', env)
  })
  afterAll(async () => {
    await enlil?.stop()
    await deleteBucket(bucket)
    removeDir(dir)
  })
  gcScenarios((): GcTarget => ({ url: enlil.url, dir, env }))
})
