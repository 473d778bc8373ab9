import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { digestOf } from '../oci/digest.js'
import type { StorageDriver } from '../storage/driver.js'
import { createFilesystemDriver } from '../storage/filesystem.js'
import { createBlobStore } from './blobs.js'
import { paths } from './paths.js'

const root = mkdtempSync(join(tmpdir(), 'enlil-blobs-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** The folder driver, counting the lookups that would be round trips on S3. */
function countingDriver(): { driver: StorageDriver; lookups: () => number } {
  const inner = createFilesystemDriver(root)
  let lookups = 0
  const driver: StorageDriver = { ...inner, stat: (path, kind) => { lookups++; return inner.stat(path, kind) } }
  return { driver, lookups: () => lookups }
}

async function storedBlob(driver: StorageDriver, text: string) {
  const bytes = Buffer.from(text)
  const digest = digestOf(bytes)
  await driver.putContent(paths.blobData(digest), bytes)
  return { digest, size: bytes.length }
}

describe('push checks trust recent links', () => {
  it('a blob linked moments ago passes a push check without a lookup; HEAD and GET still look', async () => {
    const { driver, lookups } = countingDriver()
    const blobs = createBlobStore(driver)
    const { digest, size } = await storedBlob(driver, 'layer one')
    await blobs.link('app', digest, size)
    const before = lookups()
    expect(await blobs.statForPush('app', digest)).toEqual({ digest, size })
    expect(lookups()).toBe(before)
    expect(await blobs.stat('app', digest)).toEqual({ digest, size })
    expect(lookups()).toBeGreaterThan(before)
    expect(await blobs.statForPush('other', digest)).toBeUndefined()
  })

  it('a mount links the target, so a manifest pushed there next needs no lookup either', async () => {
    const { driver, lookups } = countingDriver()
    const blobs = createBlobStore(driver)
    const { digest, size } = await storedBlob(driver, 'layer two')
    await blobs.link('base', digest, size)
    expect(await blobs.mount('base', 'derived', digest)).toEqual({ digest, size })
    const before = lookups()
    expect(await blobs.statForPush('derived', digest)).toEqual({ digest, size })
    expect(lookups()).toBe(before)
  })

  it('an unlink on this process counts at once; one on another instance once the window has passed', async () => {
    const { driver } = countingDriver()
    const here = createBlobStore(driver, { recentLinkMs: 200 })
    const elsewhere = createBlobStore(driver)
    const { digest, size } = await storedBlob(driver, 'layer three')
    await here.link('app', digest, size)
    expect(await here.unlink('app', digest)).toBe(true)
    expect(await here.statForPush('app', digest)).toBeUndefined()

    await here.link('app', digest, size)
    expect(await elsewhere.unlink('app', digest)).toBe(true)
    // Inside the window only the push check may miss it; a pull sees the unlink at once.
    expect(await here.stat('app', digest)).toBeUndefined()
    expect(await here.statForPush('app', digest)).toEqual({ digest, size })
    await new Promise((resolve) => setTimeout(resolve, 250))
    expect(await here.statForPush('app', digest)).toBeUndefined()
  })

  it('a blob found by a push check is trusted afterwards; a missing one is asked again every time', async () => {
    const { driver, lookups } = countingDriver()
    const blobs = createBlobStore(driver)
    const { digest, size } = await storedBlob(driver, 'layer four')
    // Linked by another instance: the first check asks the store.
    await driver.putOnce(paths.layerLink('app', digest), digest.value)
    const first = lookups()
    expect(await blobs.statForPush('app', digest)).toEqual({ digest, size })
    expect(lookups()).toBeGreaterThan(first)
    const second = lookups()
    expect(await blobs.statForPush('app', digest)).toEqual({ digest, size })
    expect(lookups()).toBe(second)
    const missing = digestOf(Buffer.from('never pushed'))
    expect(await blobs.statForPush('app', missing)).toBeUndefined()
    const third = lookups()
    expect(await blobs.statForPush('app', missing)).toBeUndefined()
    expect(lookups()).toBeGreaterThan(third)
  })
})
