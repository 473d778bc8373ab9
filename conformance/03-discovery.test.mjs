/** Content discovery: listing tags (with n, last and Link) and listing referrers ("Content Discovery"). */
import { beforeAll, describe, expect, it } from 'vitest'
import { repository } from './lib/config.mjs'
import {
  MEDIA, artifactManifest, configBlob, emptyBlob, expectError, expectWellFormedWarnings, imageIndex, imageManifest, newClient,
  nextLink, operations, randomBlob, unknownDigest,
} from './lib/oci.mjs'

const client = newClient()
const ops = operations(client)
const repo = repository('discovery')
const otherRepo = repository('discovery-other')

/**
 * Pushed in this (unsorted) order. All lower case, so byte order and case-insensitive order
 * agree; b10/b2 and v10/v2 tell lexical order from "natural" number order.
 */
const TAGS = ['zeta', 'latest', 'v2', 'b10', 'alpha', '9', 'v10', 'b2', '0', 'v2-rc1', 'beta', 'a', 'v1']
const SORTED = [...TAGS].sort()

const SBOM = 'application/vnd.example.conformance.sbom.v1'
const SIGNATURE = 'application/vnd.example.conformance.signature.v1'
const BUNDLE = 'application/vnd.example.conformance.bundle.v1'
const CUSTOM_CONFIG = 'application/vnd.example.conformance.config.v1+json'

/** Set up by beforeAll. */
const s = {}

/** GET the referrers of `digest`, following Link pages; returns the first reply and all descriptors. */
async function listReferrers(digest, artifactType) {
  let url = client.resolve(`/v2/${repo}/referrers/${digest}${artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''}`)
  const replies = []
  const manifests = []
  for (let page = 0; url && page < 20; page++) {
    const reply = await client.request('GET', url)
    replies.push(reply)
    if (reply.status !== 200) break
    const index = reply.json()
    expect(Array.isArray(index?.manifests), `no "manifests" array\n${reply.info}`).toBe(true)
    manifests.push(...index.manifests)
    const next = nextLink(reply)
    url = next ? new URL(next, reply.url) : undefined
  }
  return { reply: replies[0], replies, manifests }
}

/** GET tags/list with a query; returns the reply and its tags (after checking the body's shape). */
async function listTags(query = '', url = `/v2/${repo}/tags/list${query}`) {
  const reply = await client.request('GET', url)
  expect(reply.status, reply.info).toBe(200)
  const body = reply.json()
  expect(body?.name, `body has not the repository's name\n${reply.info}`).toBe(repo)
  const tags = body.tags ?? []
  expect(Array.isArray(tags), `"tags" is not a list\n${reply.info}`).toBe(true)
  return { reply, tags }
}

describe('content discovery', () => {
  beforeAll(async () => {
    s.config = configBlob()
    s.layer = randomBlob(2048)
    s.customConfig = configBlob(CUSTOM_CONFIG)
    const empty = emptyBlob()
    await ops.pushBlobs(repo, [s.config, s.layer, empty, s.customConfig])
    await ops.pushBlobs(otherRepo, [empty])

    s.image = imageManifest({ config: s.config, layers: [s.layer] })
    s.other = imageManifest({ config: s.config, layers: [] })
    const created = '2024-01-02T03:04:05Z'
    s.sbom = artifactManifest({ artifactType: SBOM, subject: s.image, annotations: { 'org.opencontainers.image.created': created, 'org.example.conformance.kind': 'sbom' } })
    s.sbom2 = artifactManifest({ artifactType: SBOM, subject: s.image, annotations: { 'org.example.conformance.kind': 'sbom, second' } })
    s.signature = artifactManifest({ artifactType: SIGNATURE, subject: s.image, annotations: { 'org.example.conformance.kind': 'signature' } })
    s.plainImage = imageManifest({ config: s.customConfig, layers: [s.layer], subject: s.image, annotations: { 'org.example.conformance.kind': 'image without artifactType' } })
    s.plainIndex = imageIndex({ manifests: [s.other], subject: s.image, annotations: { 'org.example.conformance.kind': 'index without artifactType' } })
    s.typedIndex = imageIndex({ manifests: [s.other], subject: s.image, artifactType: BUNDLE, annotations: { 'org.example.conformance.kind': 'index with artifactType' } })
    s.elsewhere = artifactManifest({ artifactType: SBOM, subject: s.image, annotations: { 'org.example.conformance.kind': 'other repository' } })
    s.otherSubject = artifactManifest({ artifactType: SBOM, subject: s.other, annotations: { 'org.example.conformance.kind': 'other subject' } })

    // A referrer first, before its subject exists: registries must accept that order.
    await ops.pushManifest(repo, s.sbom.digest, s.sbom)
    await ops.pushManifest(repo, s.image.digest, s.image)
    await ops.pushManifest(repo, s.other.digest, s.other)
    for (const m of [s.sbom2, s.signature, s.plainImage, s.plainIndex, s.typedIndex, s.otherSubject]) await ops.pushManifest(repo, m.digest, m)
    await ops.pushManifest(otherRepo, s.elsewhere.digest, s.elsewhere)
    for (const tag of TAGS) await ops.pushManifest(repo, tag, s.image)

    s.referrers = [s.sbom, s.sbom2, s.signature, s.plainImage, s.plainIndex, s.typedIndex]
  })

  describe('tags', () => {
    it('end-8a: GET tags/list → 200 with {"name","tags"} listing every tag', async () => {
      const { tags } = await listTags()
      expect([...tags].sort()).toEqual(SORTED)
    })

    it('end-8a: tags listed in lexical order', async () => {
      const { tags } = await listTags()
      expect(tags).toEqual(SORTED)
    })

    it('end-8a: GET tags/list of a repository that does not exist → 404 NAME_UNKNOWN (code-9)', async () => {
      const reply = await client.request('GET', `/v2/${repository('no-such-repository')}/tags/list`)
      expectError(reply, 404, 'NAME_UNKNOWN')
    })

    it('end-8b: ?n=<k> → the first k tags in order (fewer only with a Link header)', async () => {
      const { reply, tags } = await listTags('?n=4')
      if (tags.length < 4) expect(nextLink(reply), `fewer than n tags and no Link: rel="next"\n${reply.info}`).toBeTruthy()
      expect(tags, reply.info).toEqual(SORTED.slice(0, tags.length))
      expect(tags.length, reply.info).toBeGreaterThan(0)
    })

    it('end-8b: ?n=<k> → exactly k tags when more exist', async () => {
      const { reply, tags } = await listTags('?n=4')
      expect(tags, reply.info).toEqual(SORTED.slice(0, 4))
    })

    it('end-8b: Link header, when sent, is <url>; rel="next" and following it walks the rest of the list', async (ctx) => {
      const first = await listTags('?n=5')
      if (!first.reply.header('link')) ctx.skip('the registry sends no Link header (allowed: it is optional)')
      const all = [...first.tags]
      let link = nextLink(first.reply)
      expect(link, `Link header without rel="next"\n${first.reply.info}`).toBeTruthy()
      let url = first.reply.url
      for (let page = 0; link && page < 20; page++) {
        url = new URL(link, url).href
        const next = await listTags('', url)
        all.push(...next.tags)
        link = nextLink(next.reply)
      }
      expect(all).toEqual(SORTED)
    })

    it('end-8b: ?n=0 → an empty list and no Link header', async () => {
      const { reply, tags } = await listTags('?n=0')
      expect(tags, reply.info).toEqual([])
      expect(reply.header('link'), reply.info).toBeNull()
    })

    it('end-8b: ?n= larger than the number of tags → every tag', async () => {
      const { reply, tags } = await listTags(`?n=${TAGS.length + 10}`)
      expect([...tags].sort(), reply.info).toEqual(SORTED)
    })

    it('end-8b: ?last=<tag> → only the tags after it, in order', async () => {
      const { reply, tags } = await listTags(`?last=${SORTED[5]}`)
      expect(tags, reply.info).toEqual(SORTED.slice(6))
    })

    it('end-8b: ?n=<k>&last=<tag> → the k tags after it', async () => {
      const { reply, tags } = await listTags(`?n=3&last=${SORTED[2]}`)
      expect(tags, reply.info).toEqual(SORTED.slice(3, 6))
    })

    it('end-8b: ?last= a tag that sorts between existing ones → the tags after that point', async () => {
      const { reply, tags } = await listTags('?n=2&last=b3')
      expect(tags, reply.info).toEqual(SORTED.filter((t) => t > 'b3').slice(0, 2))
    })

    it('end-8b: ?last=<the final tag> → an empty list', async () => {
      const { reply, tags } = await listTags(`?n=5&last=${SORTED.at(-1)}`)
      expect(tags, reply.info).toEqual([])
    })

    it('end-8b: paging with n and last walks the whole list', async () => {
      const all = []
      let last
      for (let page = 0; page < 20; page++) {
        const { tags } = await listTags(`?n=3${last ? `&last=${last}` : ''}`)
        if (tags.length === 0) break
        all.push(...tags)
        last = tags.at(-1)
      }
      expect(all).toEqual(SORTED)
    })
  })

  describe('referrers', () => {
    it('end-12a: GET referrers → 200 image index (Content-Type application/vnd.oci.image.index.v1+json) listing every referrer', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      expect(reply.header('content-type'), reply.info).toBe(MEDIA.index)
      const index = reply.json()
      expect(index.schemaVersion, reply.info).toBe(2)
      expect(index.mediaType, reply.info).toBe(MEDIA.index)
      expect(manifests.map((d) => d.digest).sort(), reply.info).toEqual(s.referrers.map((m) => m.digest).sort())
    })

    it('end-12a: a referrer pushed before its subject is listed', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      expect(manifests.map((d) => d.digest), reply.info).toContain(s.sbom.digest)
    })

    it('end-12a: descriptors carry the mediaType, digest and size of each referrer', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      for (const m of s.referrers) {
        const d = manifests.find((x) => x.digest === m.digest)
        expect(d, `${m.digest} is not listed\n${reply.info}`).toBeTruthy()
        expect(d.mediaType, reply.info).toBe(m.mediaType)
        expect(d.size, reply.info).toBe(m.size)
      }
    })

    it('end-12a: artifactType is the manifest\'s artifactType', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      for (const [m, type] of [[s.sbom, SBOM], [s.sbom2, SBOM], [s.signature, SIGNATURE], [s.typedIndex, BUNDLE]]) {
        expect(manifests.find((x) => x.digest === m.digest)?.artifactType, reply.info).toBe(type)
      }
    })

    it('end-12a: image manifest without artifactType → artifactType is its config mediaType', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      expect(manifests.find((x) => x.digest === s.plainImage.digest)?.artifactType, reply.info).toBe(CUSTOM_CONFIG)
    })

    it('end-12a: index without artifactType → artifactType omitted', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      const d = manifests.find((x) => x.digest === s.plainIndex.digest)
      expect(d, reply.info).toBeTruthy()
      expect('artifactType' in d, reply.info).toBe(false)
    })

    it('end-12a: descriptors carry the referrer\'s annotations', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      for (const m of s.referrers) {
        const expected = JSON.parse(m.bytes.toString()).annotations
        expect(manifests.find((x) => x.digest === m.digest)?.annotations, reply.info).toEqual(expected)
      }
    })

    it('end-12a: referrers in other repositories or of other subjects are not listed', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest)
      expect(reply.status, reply.info).toBe(200)
      const digests = manifests.map((d) => d.digest)
      expect(digests, reply.info).not.toContain(s.elsewhere.digest)
      expect(digests, reply.info).not.toContain(s.otherSubject.digest)
    })

    it('end-12a: digest without referrers → 200 with an empty list, not 404', async () => {
      const { reply, manifests } = await listReferrers(unknownDigest())
      expect(reply.status, reply.info).toBe(200)
      expect(reply.header('content-type'), reply.info).toBe(MEDIA.index)
      expect(manifests, reply.info).toEqual([])
    })

    it('end-12a: malformed digest → 400', async () => {
      const reply = await client.request('GET', `/v2/${repo}/referrers/sha256:not-a-digest`)
      expectError(reply, 400)
    })

    it('end-12b: ?artifactType= → only the matching referrers, with OCI-Filters-Applied: artifactType', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest, SBOM)
      expect(reply.status, reply.info).toBe(200)
      expect(reply.header('oci-filters-applied'), reply.info).toBe('artifactType')
      expect(manifests.map((d) => d.digest).sort(), reply.info).toEqual([s.sbom.digest, s.sbom2.digest].sort())
    })

    it('end-12b: ?artifactType= matching no referrer → 200 with an empty list', async () => {
      const { reply, manifests } = await listReferrers(s.image.digest, 'application/vnd.example.conformance.nothing')
      expect(reply.status, reply.info).toBe(200)
      expect(manifests, reply.info).toEqual([])
    })
  })

  it('warnings: any Warning header is 299 - "<text>" without a date, at most 4096 bytes per response', () => {
    expectWellFormedWarnings(client)
  })
})
