/**
 * The catalog index on both stores (a folder, and the Ceph RGW of the test run): a repository is
 * listed once it has content, whatever writes it; never once its content is gone; a store written
 * before the index is answered by a walk until the index is built; GC adds what the index lacks and
 * removes what is gone, and a removal never loses a repository a process wrote to meanwhile.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBucket, deleteBucket, requireS3 } from '../../test/support/s3.js'
import { parseDigest } from '../oci/digest.js'
import type { StorageDriver } from '../storage/driver.js'
import { createFilesystemDriver } from '../storage/filesystem.js'
import { createS3Driver } from '../storage/s3.js'
import { createCatalog } from './catalog.js'
import { createCatalogIndex, decodeName, encodeName, repositoryOfWrite, seekKey } from './catalog-index.js'
import { collectGarbage } from './gc.js'
import { createRegistry } from './index.js'
import { paths, REPOSITORIES } from './paths.js'

const DIGEST = parseDigest(`sha256:${'ab'.repeat(32)}`)

describe('index keys', () => {
  const names = ['a', 'a-b', 'a.b', 'a/0', 'a/b', 'a/b/c', 'a0', 'a_b', 'a__b', 'ab', 'b', 'a--b/x', 'z/y.x/w']
  it('sort as the names and decode to them', () => {
    const sorted = [...names].sort()
    expect([...names].map(encodeName).sort().map(decodeName)).toEqual(sorted)
    for (const name of names) expect(encodeName(name)).not.toContain('/')
  })

  it('a listing started at seekKey(last) holds every name after last, whatever last a client sends', () => {
    const keys = names.map(encodeName).sort()
    for (const last of [...names, '', 'a.', 'a.~', 'a.~~', 'a/', 'a~', 'a.\u00ff', 'a/\u{1F600}', 'zzz', '../a', 'A']) {
      const from = seekKey(last)
      const after = keys.filter((k) => k > from).map(decodeName)
      for (const name of names.filter((n) => n > last)) expect(after, `last=${JSON.stringify(last)}`).toContain(name)
    }
  })

  it('a write is a repository\'s content only in its marker folders', () => {
    expect(repositoryOfWrite(`${REPOSITORIES}/a/b/_layers/sha256/00/link`)).toBe('a/b')
    expect(repositoryOfWrite(`${REPOSITORIES}/a/_uploads/x/startedat`)).toBe('a')
    expect(repositoryOfWrite(`${REPOSITORIES}/a/_manifests/tags/v/current/link`)).toBe('a')
    expect(repositoryOfWrite(`${REPOSITORIES}/a/_referrers/sha256/00/x`)).toBeUndefined()
    expect(repositoryOfWrite(`${REPOSITORIES}/A/_layers/x`)).toBeUndefined()
    expect(repositoryOfWrite(`${paths.gcLastRun}`)).toBeUndefined()
  })
})

function describeIndex(store: string, makeDriver: (root: string) => StorageDriver) {
  describe(`catalog index on ${store}`, () => {
    const fresh = () => makeDriver(`idx-${randomBytes(4).toString('hex')}`)

    it('lists a repository from its first write (upload, link, manifest), in order, paged', async () => {
      const registry = createRegistry(fresh())
      await registry.catalog.list({ n: 1 }) // an empty store: its index is built at once
      await registry.catalog.buildIndex()
      expect(await registry.catalog.index.complete()).toBe(true)
      await registry.uploads.start('up/loading')
      await registry.blobs.link('linked', DIGEST, 3)
      await registry.manifests.put('b/index', { kind: 'tag', tag: 'v1' }, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] })), 'application/vnd.oci.image.index.v1+json')
      await registry.blobs.link('b', DIGEST, 3)
      await registry.blobs.link('b-c', DIGEST, 3)
      const expected = ['b', 'b-c', 'b/index', 'linked', 'up/loading']
      expect(await registry.catalog.list({})).toEqual(expected)
      expect(await registry.catalog.list({ n: 2 })).toEqual(expected.slice(0, 2))
      expect(await registry.catalog.list({ n: 2, last: 'b-c' })).toEqual(['b/index', 'linked'])
      expect(await registry.catalog.list({ n: 10, last: 'b/index' })).toEqual(['linked', 'up/loading'])
      expect(await registry.catalog.names()).toEqual(expected)
      // Another process sees the same, from the store alone.
      expect(await createCatalog(registry.driver).list({ n: 100 })).toEqual(expected)
    })

    it('never lists a repository whose content is gone, though its marker stays until GC', async () => {
      const driver = fresh()
      const registry = createRegistry(driver)
      await registry.catalog.buildIndex()
      await registry.blobs.link('kept', DIGEST, 3)
      await registry.blobs.link('evicted', DIGEST, 3)
      await Promise.all(['_manifests', '_layers', '_uploads'].map((part) => driver.delete(`${paths.repository('evicted')}/${part}`)))
      expect(await registry.catalog.list({ n: 1 })).toEqual(['kept'])
      expect(await registry.catalog.list({})).toEqual(['kept'])
      expect(await registry.catalog.existing(await registry.catalog.names())).toEqual(['kept'])
    })

    it('a store written before the index is walked, then indexed once', async () => {
      const driver = fresh()
      const old = ['lib/alpine', 'lib/busybox', 'z']
      await Promise.all(old.map((name) => driver.putContent(paths.tagCurrentLink(name, 'v1'), DIGEST.value)))
      let scans = 0
      let lists = 0
      const counted: StorageDriver = {
        ...driver,
        list: (path) => { lists++; return driver.list(path) },
        ...(driver.scan ? { scan: (path: string, after?: string) => { scans++; return driver.scan!(path, after) } } : {}),
      }
      const catalog = createCatalog(counted)
      expect(await catalog.list({ n: 2 })).toEqual(['lib/alpine', 'lib/busybox'])
      expect(await catalog.buildIndex()).toBe(3)
      expect(await catalog.index.complete()).toBe(true)
      scans = 0
      lists = 0
      expect(await catalog.list({ n: 2, last: 'lib/alpine' })).toEqual(['lib/busybox', 'z'])
      // From the index: one listing of it; then on S3 one flat listing of the repositories confirms
      // both names, on disk one check per name.
      if (driver.scan) expect([scans, lists]).toEqual([2, 0])
      else expect(lists).toBe(3)
    })

    it('GC indexes what the index lacks and removes markers of repositories gone', async () => {
      const driver = fresh()
      const registry = createRegistry(driver)
      await registry.catalog.buildIndex()
      await registry.blobs.link('stays', DIGEST, 3)
      await registry.uploads.start('abandoned')
      // Written by another registry (no marker), and a repository emptied without GC knowing.
      await driver.putContent(paths.tagCurrentLink('from/distribution', 'v1'), DIGEST.value)
      await driver.delete(paths.uploads('abandoned'))
      const clocks = { ttlMs: 50, settleMs: 50, clockSkewMs: 0, removeIdleMs: 0 }
      // A marker as old as the TTL plus a second: S3 keeps whole seconds.
      await new Promise((resolve) => setTimeout(resolve, 1_100))
      await collectGarbage(driver, { graceMs: 3_600_000, catalogIndex: clocks })
      const markers = (await driver.list(paths.catalogIndex)).map(decodeName).sort()
      // On disk an emptied repository keeps its folders, and the walk (and so the index) keeps it.
      const abandoned = (await driver.list(paths.repository('abandoned'))).includes('_uploads')
      expect(markers).toEqual(['from/distribution', ...(abandoned ? ['abandoned'] : []), 'stays'].sort())
      expect(await registry.catalog.list({})).toEqual(['from/distribution', ...(abandoned ? ['abandoned'] : []), 'stays'].sort())
    })

    it('a removal checked a TTL later gives back a repository a process wrote to while trusting its marker', async () => {
      const driver = fresh()
      const clocks = { ttlMs: 1_500, settleMs: 200, clockSkewMs: 0, removeIdleMs: 0 }
      const pusher = createRegistry(driver, { catalogIndex: clocks })
      await pusher.catalog.buildIndex()
      await pusher.uploads.start('racy') // the pusher trusts the marker from now on
      await driver.delete(paths.uploads('racy'))
      // GC's index takes the fresh marker for an old one (a store clock a minute behind): the
      // removal lands while the pusher trusts the marker.
      const gc = createCatalogIndex(driver, { ...clocks, clockSkewMs: -60_000 })
      const removal = gc.reconcile(new Set())
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect((await driver.list(paths.catalogIndex)).map(decodeName)).not.toContain('racy')
      // The pusher writes without putting its marker again (it trusts it still).
      await pusher.blobs.link('racy', DIGEST, 3)
      await removal
      expect(await createCatalog(driver).list({})).toEqual(['racy'])
    })
  })
}

const root = mkdtempSync(join(tmpdir(), 'enlil-catalog-index-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
describeIndex('the filesystem', (sub) => createFilesystemDriver(join(root, sub), { fsync: false }))

const s3 = requireS3()
const bucket = `catalog-index-${randomBytes(4).toString('hex')}`
describe.skipIf(!s3)('on S3', () => {
  beforeAll(() => createBucket(bucket))
  afterAll(() => deleteBucket(bucket))
  describeIndex('S3', (sub) => createS3Driver({
    bucket, region: s3!.region, endpoint: s3!.endpoint, forcePathStyle: true, accessKeyId: s3!.accessKey, secretAccessKey: s3!.secretKey, rootDirectory: sub,
  }))
})
