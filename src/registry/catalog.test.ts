/**
 * The catalog on both stores: a walk of folders on disk, a flat scan of keys on S3 (the Ceph RGW of
 * the test run). Each repository once, whatever its depth, its siblings' names, or how many keys it
 * holds; a folder with no marker is no repository; on S3 the pages asked for grow with the keys, not
 * with the repositories.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBucket, deleteBucket, requireS3 } from '../../test/support/s3.js'
import type { StorageDriver } from '../storage/driver.js'
import { createFilesystemDriver } from '../storage/filesystem.js'
import { createS3Driver } from '../storage/s3.js'
import { createCatalog } from './catalog.js'
import { REPOSITORIES } from './paths.js'

const s3 = requireS3()
const bucket = `catalog-${randomBytes(4).toString('hex')}`

/** Names chosen to sort awkwardly: digits and `-` before `/` and `_`, nested repositories. */
const NAMES = ['a', 'a/b', 'a/0digit', 'a-c', 'a.d/e', 'lib/x/y/z', 'z9']

async function fill(driver: StorageDriver, small: number): Promise<string[]> {
  const put = (path: string) => driver.putContent(`${REPOSITORIES}/${path}`, 'sha256:00')
  await Promise.all(NAMES.map((name, i) => put(`${name}/${['_layers', '_manifests', '_uploads'][i % 3]}/sha256/00/link`)))
  // Not a repository: only referrers, and a folder holding only other folders.
  await put('lonely/_referrers/sha256/00/sha256-00')
  // Many keys in one repository: a page ends inside it.
  await Promise.all(Array.from({ length: 1_100 }, (_, i) => put(`big/_layers/sha256/${String(i).padStart(4, '0')}/link`)))
  await put('big/_manifests/tags/v1/current/link')
  const smalls = Array.from({ length: small }, (_, i) => `many/r${String(i).padStart(3, '0')}`)
  await Promise.all(smalls.map((name) => put(`${name}/_manifests/revisions/sha256/00/link`)))
  return [...NAMES, 'big', ...smalls].sort()
}

function describeCatalog(name: string, makeDriver: () => StorageDriver, scans: boolean) {
  describe(`catalog on ${name}`, () => {
    let expected: string[]
    let driver: StorageDriver
    let pages = 0
    beforeAll(async () => {
      const inner = makeDriver()
      driver = inner.scan ? { ...inner, scan: (path, after) => { pages++; return inner.scan!(path, after) } } : inner
      expected = await fill(inner, 300)
    })

      it('walks every repository once, nested or not, and no folder without a marker', async () => {
      pages = 0
      const seen: string[] = []
      for await (const repo of createCatalog(driver).walk()) seen.push(repo)
      expect([...seen].sort()).toEqual(expected)
      expect(new Set(seen).size).toBe(seen.length)
      // About 1,500 keys: two pages in order, then a flat listing per top-level folder (two for
      // `big`, one more after the jump past its layers; two for `many`'s 300 repositories).
      if (scans) expect(pages).toBeLessThanOrEqual(2 + NAMES.length + 2 + 2)
    })

    it('lists names in lexical order, paged by n and last', async () => {
      const catalog = createCatalog(driver)
      expect(await catalog.list({ n: 3 })).toEqual(expected.slice(0, 3))
      expect(await catalog.list({ n: 4, last: 'a/b' })).toEqual(expected.slice(expected.indexOf('a/b') + 1, expected.indexOf('a/b') + 5))
    })
  })
}

const root = mkdtempSync(join(tmpdir(), 'enlil-catalog-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
describeCatalog('the filesystem', () => createFilesystemDriver(root, { fsync: false }), false)

describe.skipIf(!s3)('on S3', () => {
  beforeAll(() => createBucket(bucket))
  afterAll(() => deleteBucket(bucket))
  const driver = (rootDirectory?: string) => createS3Driver({
    bucket, region: s3!.region, endpoint: s3!.endpoint, forcePathStyle: true, accessKeyId: s3!.accessKey, secretAccessKey: s3!.secretKey, rootDirectory,
  })
  describeCatalog('S3', () => driver(), true)

  it('a small catalog is listed in one request', async () => {
    const small = driver('small-catalog')
    await Promise.all(['one', 'two/deep', 'z'].map((name) => small.putContent(`${REPOSITORIES}/${name}/_manifests/tags/v1/current/link`, 'sha256:00')))
    let requests = 0
    const counted: StorageDriver = { ...small, scan: (path, after) => { requests++; return small.scan!(path, after) } }
    const seen: string[] = []
    for await (const name of createCatalog(counted).walk()) seen.push(name)
    expect(seen.sort()).toEqual(['one', 'two/deep', 'z'])
    expect(requests).toBe(1)
  })
})
