/**
 * The bucket layout is distribution's s3 driver's: a bucket docker-registry 2.8 filled is served by
 * enlil unchanged, and the other way round (zero-copy migration from distribution on Tigris).
 */
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OCI_MANIFEST, putManifest } from './support/oci-client.js'
import { expectServed, pushImages } from './support/images.js'
import { DOCKER_REGISTRY, removeDir, requirePart, type Running, startDistribution, startEnlil, tempDir } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()
const distributionInstalled = requirePart(existsSync(DOCKER_REGISTRY), 'docker-registry (distribution 2.8)', 'apt-get install docker-registry')

describe.skipIf(!s3 || !distributionInstalled)('bucket layout compatible with distribution 2.8', () => {
  const bucket = `compat-${randomBytes(4).toString('hex')}`
  const running: Running[] = []
  let configDir: string
  beforeAll(async () => {
    configDir = tempDir('s3-compat')
    await createBucket(bucket)
  })
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()))
    removeDir(configDir)
    await deleteBucket(bucket)
  })
  const distribution = (rootDirectory: string) => startDistribution('', configDir, {
    endpoint: s3!.endpoint, region: s3!.region, bucket, accessKey: s3!.accessKey, secretKey: s3!.secretKey, rootDirectory,
  }).then((r) => (running.push(r), r))
  const enlil = (rootDirectory: string) => startEnlil('/nonexistent', {
    ...enlilS3Environment(bucket), REGISTRY_STORAGE_S3_ROOTDIRECTORY: rootDirectory, REGISTRY_STORAGE_REDIRECT_DISABLE: 'true',
  }).then((r) => (running.push(r), r))

  it('enlil serves what docker-registry pushed into the bucket', async () => {
    const dist = await distribution('/from-distribution')
    const pushed = await pushImages(dist.url, 's3compat/from-distribution')
    await dist.stop()
    const e = await enlil('/from-distribution')
    await expectServed(e.url, pushed)
    await putManifest(e.url, pushed.repo, 'again', pushed.manifests[0]!.body, OCI_MANIFEST)
    await e.stop()
  })

  it('docker-registry serves what enlil pushed into the bucket', async () => {
    const e = await enlil('/from-enlil')
    const pushed = await pushImages(e.url, 's3compat/from-enlil')
    const mount = await fetch(`${e.url}/v2/s3compat/mounted/blobs/uploads/?mount=${pushed.layers[0]!.digest}&from=${pushed.repo}`, { method: 'POST' })
    expect(mount.status).toBe(201)
    await e.stop()
    const dist = await distribution('/from-enlil')
    await expectServed(dist.url, pushed)
    expect((await fetch(`${dist.url}/v2/s3compat/mounted/blobs/${pushed.layers[0]!.digest}`, { method: 'HEAD' })).status).toBe(200)
    await dist.stop()
  })
})
