/**
 * A real client against enlil on S3: skopeo pushes an image, then pulls it back through enlil's
 * presigned redirects (the blob bytes come from the store, not through enlil), digests preserved.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeOciLayout } from './support/oci-layout.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const run = promisify(execFile)
const s3 = requireS3()
const skopeo = requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')

describe.skipIf(!s3 || !skopeo)('skopeo against enlil on S3', () => {
  const bucket = `skopeo-${randomBytes(4).toString('hex')}`
  let enlil: Running
  let work: string
  beforeAll(async () => {
    work = tempDir('skopeo')
    await createBucket(bucket)
    enlil = await startEnlil('/nonexistent', { ...enlilS3Environment(bucket), REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(work)
    await deleteBucket(bucket)
  })

  it('pushes an image and pulls it back byte for byte, the blobs through presigned redirects', async () => {
    const image = writeOciLayout(join(work, 'src'), 'v1', 3, 6 * 1024 * 1024)
    const host = new URL(enlil.url).host
    const env = { ...process.env, HOME: work }
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${host}/skopeo/app:v1`], { env, timeout: 120_000 })
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/skopeo/app:v1`], { env })
    expect(JSON.parse(stdout).layers).toHaveLength(3)
    await run('skopeo', ['copy', '--src-tls-verify=false', '--preserve-digests', `docker://${host}/skopeo/app:v1`, `oci:${join(work, 'dst')}:v1`], { env, timeout: 120_000 })
    for (const blob of image.blobs) {
      const pulled = readFileSync(join(work, 'dst/blobs/sha256', blob.digest.slice(7)))
      expect(pulled.equals(blob.bytes), blob.digest).toBe(true)
    }
    // enlil answered the blob GETs with 307s to the store.
    const redirects = enlil.output().split('\n').filter((l) => l.includes('"method":"GET"') && l.includes('/blobs/sha256:') && l.includes('"status":307'))
    expect(redirects.length).toBeGreaterThanOrEqual(image.blobs.length)
  })
})
