/**
 * Pull: what every registry MUST support ("Pulling manifests", "Pulling blobs", "Checking if
 * content exists in the registry", "Determining Support").
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { repository } from './lib/config.mjs'
import {
  ACCEPT_MANIFESTS, MEDIA, NOT_REWRITTEN, configBlob, dottedPaths, expectEnvelope, expectError, expectWellFormedWarnings,
  imageIndex, imageManifest, newClient, operations, randomBlob, sha256, unknownDigest,
} from './lib/oci.mjs'

const client = newClient()
const ops = operations(client)
const repo = repository('pull')

/** Pushed by beforeAll. */
const content = {}

describe('pull', () => {
  beforeAll(async () => {
    content.config = configBlob()
    content.layer = randomBlob(48 * 1024)
    content.layer2 = randomBlob(3000)
    await ops.pushBlobs(repo, [content.config, content.layer, content.layer2])
    // Unusual formatting: the registry must hand back these bytes, not a re-serialisation.
    content.manifest = imageManifest({ config: content.config, layers: [content.layer, content.layer2], indent: 3 })
    content.manifest2 = imageManifest({ config: content.config, layers: [content.layer2], annotations: { 'org.example.conformance': 'second' } })
    await ops.pushManifest(repo, 'v1', content.manifest)
    await ops.pushManifest(repo, content.manifest2.digest, content.manifest2)
    content.index = imageIndex({ manifests: [content.manifest, content.manifest2], indent: '\t' })
    await ops.pushManifest(repo, 'multi', content.index)
  })

  const blobUrl = (digest = content.layer.digest, name = repo) => `/v2/${name}/blobs/${digest}`
  const manifestUrl = (reference, name = repo) => `/v2/${name}/manifests/${reference}`
  const getManifest = (reference, method = 'GET', name = repo) => client.request(method, manifestUrl(reference, name), { headers: { Accept: ACCEPT_MANIFESTS } })

  it('end-1: GET /v2/ → 200', async () => {
    const res = await client.request('GET', '/v2/')
    expect(res.status, res.info).toBe(200)
  })

  it('end-1: GET /v2/ without credentials → 200, or 401 with a WWW-Authenticate challenge and UNAUTHORIZED (code-11)', async () => {
    const res = await client.request('GET', '/v2/', { auth: false })
    expect([200, 401], res.info).toContain(res.status)
    if (res.status === 401) {
      expect(res.header('www-authenticate'), res.info).toMatch(/^\s*(Basic|Bearer)\b/i)
      expectError(res, 401, 'UNAUTHORIZED')
    }
  })

  it('end-2: GET blob → 200 with the exact bytes', async () => {
    const res = await client.request('GET', blobUrl())
    expect(res.status, res.info).toBe(200)
    expect(res.body.length, res.info).toBe(content.layer.size)
    expect(sha256(res.body), res.info).toBe(content.layer.digest)
  })

  it('end-2: GET blob → Docker-Content-Digest header matching the body', async () => {
    // A registry may redirect blob GETs to its store (307): then the header is on the redirect.
    const first = await client.request('GET', blobUrl(), { redirect: 'manual' })
    const res = first.status >= 300 && first.status < 400 ? await client.request('GET', blobUrl()) : first
    expect(res.status, res.info).toBe(200)
    expect(first.header('docker-content-digest'), first.info).toBe(sha256(res.body))
  })

  it('end-2: HEAD blob → 200 with Content-Length and Docker-Content-Digest', async () => {
    const res = await client.request('HEAD', blobUrl())
    expect(res.status, res.info).toBe(200)
    expect(res.header('content-length'), res.info).toBe(String(content.layer.size))
    expect(res.header('docker-content-digest'), res.info).toBe(content.layer.digest)
  })

  it('end-2: HEAD blob → no body after the headers', async () => {
    const res = await client.raw('HEAD', blobUrl())
    expect(res.status, res.head).toBe(200)
    expect(res.rest.length, `${res.rest.length} bytes followed the headers of a HEAD response:\n${res.head}`).toBe(0)
  })

  it('end-2: GET unknown blob → 404 BLOB_UNKNOWN (code-1)', async () => {
    const res = await client.request('GET', blobUrl(unknownDigest()))
    expectError(res, 404, 'BLOB_UNKNOWN')
  })

  it('end-2: HEAD unknown blob → 404 without body', async () => {
    const res = await client.raw('HEAD', blobUrl(unknownDigest()))
    expect(res.status, res.head).toBe(404)
    expect(res.rest.length, `${res.rest.length} bytes followed the headers of a HEAD response:\n${res.head}`).toBe(0)
  })

  it('end-2: GET blob in a repository that does not exist → 404 BLOB_UNKNOWN or NAME_UNKNOWN', async () => {
    const res = await client.request('GET', blobUrl(content.layer.digest, repository('nothing-here')))
    expectError(res, 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN'])
  })

  it('end-2: GET blob with Range: bytes=a-b → 206 with Content-Range and those bytes', async () => {
    const res = await client.request('GET', blobUrl(), { headers: { Range: 'bytes=1000-8191' } })
    expect(res.status, res.info).toBe(206)
    expect(res.header('content-range'), res.info).toBe(`bytes 1000-8191/${content.layer.size}`)
    expect(res.body.equals(content.layer.bytes.subarray(1000, 8192)), res.info).toBe(true)
  })

  it('end-2: GET blob with open-ended (bytes=a-) and suffix (bytes=-n) Ranges → 206 with the tail', async () => {
    const size = content.layer.size
    const open = await client.request('GET', blobUrl(), { headers: { Range: `bytes=${size - 100}-` } })
    expect(open.status, open.info).toBe(206)
    expect(open.header('content-range'), open.info).toBe(`bytes ${size - 100}-${size - 1}/${size}`)
    expect(open.body.equals(content.layer.bytes.subarray(size - 100)), open.info).toBe(true)
    const suffix = await client.request('GET', blobUrl(), { headers: { Range: 'bytes=-64' } })
    expect(suffix.status, suffix.info).toBe(206)
    expect(suffix.header('content-range'), suffix.info).toBe(`bytes ${size - 64}-${size - 1}/${size}`)
    expect(suffix.body.equals(content.layer.bytes.subarray(size - 64)), suffix.info).toBe(true)
  })

  it('end-2: GET blob with an unsatisfiable Range → 416 with Content-Range: bytes */<size>', async () => {
    const res = await client.request('GET', blobUrl(), { headers: { Range: `bytes=${content.layer.size}-` } })
    expect(res.status, res.info).toBe(416)
    expect(res.header('content-range'), res.info).toBe(`bytes */${content.layer.size}`)
  })

  it('end-3: GET manifest by tag → 200 with the exact bytes pushed', async () => {
    const res = await getManifest('v1')
    expect(res.status, res.info).toBe(200)
    expect(res.body.equals(content.manifest.bytes), res.info).toBe(true)
  })

  it('end-3: GET manifest by digest → 200 with the exact bytes pushed', async () => {
    for (const m of [content.manifest, content.manifest2]) {
      const res = await getManifest(m.digest)
      expect(res.status, res.info).toBe(200)
      expect(res.body.equals(m.bytes), res.info).toBe(true)
    }
  })

  it('end-3: GET manifest → Content-Type is the pushed media type, without parameters', async () => {
    for (const [reference, mediaType] of [['v1', MEDIA.manifest], ['multi', MEDIA.index], [content.manifest2.digest, MEDIA.manifest]]) {
      const res = await getManifest(reference)
      expect(res.status, res.info).toBe(200)
      expect(res.header('content-type'), res.info).toBe(mediaType)
    }
  })

  it('end-3: GET manifest → Docker-Content-Digest header matching the body', async () => {
    for (const [reference, m] of [['v1', content.manifest], [content.manifest2.digest, content.manifest2]]) {
      const res = await getManifest(reference)
      expect(res.status, res.info).toBe(200)
      expect(res.header('docker-content-digest'), res.info).toBe(m.digest)
    }
  })

  it('end-3: GET image index by tag and by digest → 200 with the exact bytes', async () => {
    for (const reference of ['multi', content.index.digest]) {
      const res = await getManifest(reference)
      expect(res.status, res.info).toBe(200)
      expect(res.body.equals(content.index.bytes), res.info).toBe(true)
      expect(res.header('docker-content-digest'), res.info).toBe(content.index.digest)
    }
  })

  it('end-3: HEAD manifest by tag → 200 with Content-Length and Docker-Content-Digest', async () => {
    const res = await getManifest('v1', 'HEAD')
    expect(res.status, res.info).toBe(200)
    expect(res.header('content-length'), res.info).toBe(String(content.manifest.size))
    expect(res.header('docker-content-digest'), res.info).toBe(content.manifest.digest)
  })

  it('end-3: HEAD manifest by digest → 200 with Content-Length and Docker-Content-Digest', async () => {
    const res = await getManifest(content.manifest2.digest, 'HEAD')
    expect(res.status, res.info).toBe(200)
    expect(res.header('content-length'), res.info).toBe(String(content.manifest2.size))
    expect(res.header('docker-content-digest'), res.info).toBe(content.manifest2.digest)
  })

  it('end-3: HEAD manifest → no body after the headers', async () => {
    const res = await client.raw('HEAD', manifestUrl('v1'), { Accept: ACCEPT_MANIFESTS })
    expect(res.status, res.head).toBe(200)
    expect(res.rest.length, `${res.rest.length} bytes followed the headers of a HEAD response:\n${res.head}`).toBe(0)
  })

  it('end-3: GET unknown tag → 404 MANIFEST_UNKNOWN (code-7)', async () => {
    const res = await getManifest('no-such-tag')
    expectError(res, 404, 'MANIFEST_UNKNOWN')
  })

  it('end-3: GET unknown digest → 404 MANIFEST_UNKNOWN (code-7)', async () => {
    const res = await getManifest(unknownDigest())
    expectError(res, 404, 'MANIFEST_UNKNOWN')
  })

  it('end-3: GET and HEAD of a reference outside the tag grammar (.INVALID_MANIFEST_NAME) → 404 MANIFEST_UNKNOWN (code-7)', async () => {
    // The official conformance suite asks exactly this; a manifest that can't exist can't be found.
    expectError(await getManifest('.INVALID_MANIFEST_NAME'), 404, 'MANIFEST_UNKNOWN')
    const head = await getManifest('.INVALID_MANIFEST_NAME', 'HEAD')
    expect(head.status, head.info).toBe(404)
  })

  it('end-8a: tags/list through a "." or ".." segment, raw or percent-encoded, is not served as another repository\'s', async () => {
    for (const path of dottedPaths(repo, 'tags/list')) {
      const res = await client.verbatim('GET', path, { like: `/v2/${repo}/tags/list` })
      expect(NOT_REWRITTEN, res.info).toContain(res.status)
      expect(res.rest.toString('latin1'), res.info).not.toContain('"v1"')
    }
  })

  it('end-3: a manifest through a "." or ".." segment, raw or percent-encoded, is not served', async () => {
    for (const path of dottedPaths(repo, 'manifests/v1')) {
      const res = await client.verbatim('GET', path, { like: manifestUrl('v1'), headers: { Accept: ACCEPT_MANIFESTS } })
      expect(NOT_REWRITTEN, res.info).toContain(res.status)
      expect(res.head, res.info).not.toMatch(new RegExp(`docker-content-digest: ${content.manifest.digest}`, 'i'))
    }
  })

  it('end-2: a blob through a "." or ".." segment, raw or percent-encoded, is not served', async () => {
    for (const path of dottedPaths(repo, `blobs/${content.layer2.digest}`)) {
      const res = await client.verbatim('GET', path, { like: blobUrl(content.layer2.digest) })
      expect(NOT_REWRITTEN, res.info).toContain(res.status)
      expect(res.rest.length === content.layer2.size && res.rest.equals(content.layer2.bytes), res.info).toBe(false)
    }
  })

  it('end-3: HEAD unknown manifest → 404 without body', async () => {
    const res = await client.raw('HEAD', manifestUrl('no-such-tag'), { Accept: ACCEPT_MANIFESTS })
    expect(res.status, res.head).toBe(404)
    expect(res.rest.length, `${res.rest.length} bytes followed the headers of a HEAD response:\n${res.head}`).toBe(0)
  })

  it('end-3: GET manifest in a repository that does not exist → 404 NAME_UNKNOWN or MANIFEST_UNKNOWN (code-9)', async () => {
    const res = await getManifest('v1', 'GET', repository('nothing-here'))
    expectError(res, 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'])
  })

  it('end-3: GET manifest with a malformed digest as reference → 400 or 404, not a server error', async () => {
    const res = await getManifest('sha256:not-hex')
    expectError(res, [400, 404], ['DIGEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_INVALID', 'NAME_UNKNOWN'])
  })

  it('errors: every 4xx JSON body is {"errors":[{"code","message",…}]} with a code from the table', async () => {
    // One of each kind of failed pull, whatever their statuses; the envelope is what is checked.
    for (const res of [
      await client.request('GET', blobUrl(unknownDigest())),
      await getManifest('no-such-tag'),
      await getManifest(unknownDigest(), 'GET', repository('nothing-here')),
    ]) {
      expect(res.status, res.info).toBeGreaterThanOrEqual(400)
      expect(res.status, res.info).toBeLessThan(500)
      if (res.json() !== undefined) expectEnvelope(res)
    }
  })

  it('warnings: any Warning header is 299 - "<text>" without a date, at most 4096 bytes per response', () => {
    expectWellFormedWarnings(client)
  })
})

