/**
 * Push: blob uploads (monolithic POST+PUT and single POST, streamed and chunked PATCH, upload
 * status, cancel), cross-repository mounts, and manifest uploads ("Push").
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { config, repository } from './lib/config.mjs'
import {
  ACCEPT_MANIFESTS, Content, MEDIA, NOT_REWRITTEN, artifactManifest, configBlob, dottedPaths, emptyBlob, expectEnvelope, expectError,
  expectWellFormedWarnings, imageIndex, imageManifest, newClient, operations, randomBlob, sha256, unknownDigest, withQuery,
} from './lib/oci.mjs'

const client = newClient()
const ops = operations(client)
const repo = repository('push')
const OCTETS = { 'Content-Type': MEDIA.octets }

/** Chunks are at least this long, or the registry's OCI-Chunk-Min-Length when that is more. */
let chunkSize = 32 * 1024
/** Pushed by beforeAll, for the manifests to refer to. */
const base = {}

/** POST for a new session: the reply and its Location as an absolute URL. */
async function startSession(name = repo) {
  const reply = await client.request('POST', `/v2/${name}/blobs/uploads/`)
  expect(reply.status, reply.info).toBe(202)
  expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
  return { reply, location: client.resolve(reply.header('location')) }
}

/** PATCH one chunk with Content-Range (and Content-Length, from the body). */
function patchChunk(location, bytes, start) {
  return client.request('PATCH', location, {
    headers: { ...OCTETS, 'Content-Range': `${start}-${start + bytes.length - 1}` },
    body: bytes,
  })
}

/** Asserts a 202 to a PATCH (Location and Range: 0-<end>) and returns the next Location. */
function expectChunkAccepted(reply, end) {
  expect(reply.status, reply.info).toBe(202)
  expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
  expect(reply.header('range'), reply.info).toBe(`0-${end}`)
  return client.resolve(reply.header('location'))
}

/** Closes a session with `?digest=` (and optionally a last chunk) and asserts 201 with Location. */
async function closeSession(location, blob, lastChunk) {
  const headers = lastChunk ? { ...OCTETS, 'Content-Range': `${lastChunk.start}-${blob.size - 1}` } : {}
  const reply = await client.request('PUT', withQuery(client, location, { digest: blob.digest }), {
    headers, body: lastChunk ? blob.bytes.subarray(lastChunk.start) : undefined,
  })
  expect(reply.status, reply.info).toBe(201)
  expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
  const digest = reply.header('docker-content-digest')
  if (digest) expect(digest, reply.info).toBe(blob.digest)
  return reply
}

/** Asserts that `url` (a blob Location, or the blob path in `name`) serves exactly the blob. */
async function expectBlobServed(blob, url = `/v2/${repo}/blobs/${blob.digest}`) {
  const reply = await client.request('GET', url)
  expect(reply.status, reply.info).toBe(200)
  expect(reply.body.length, reply.info).toBe(blob.size)
  expect(sha256(reply.body), reply.info).toBe(blob.digest)
}

async function putManifest(reference, manifest, { contentType = manifest.mediaType } = {}) {
  return client.request('PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'Content-Type': contentType }, body: manifest.bytes })
}

function expectManifestCreated(reply, manifest) {
  expect(reply.status, reply.info).toBe(201)
  expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
  const digest = reply.header('docker-content-digest')
  if (digest) expect(digest, reply.info).toBe(manifest.digest)
}

/** Asserts that a manifest reference in `repo`, or a full Location, serves exactly `manifest`. */
async function expectManifestServed(reference, manifest) {
  const url = /^(\/|https?:)/.test(reference) ? reference : `/v2/${repo}/manifests/${reference}`
  const reply = await client.request('GET', url, { headers: { Accept: ACCEPT_MANIFESTS } })
  expect(reply.status, reply.info).toBe(200)
  expect(reply.body.equals(manifest.bytes), reply.info).toBe(true)
}

/** A manifest padded (through an annotation) to exactly `size` bytes. */
function manifestOfSize(size) {
  const doc = {
    schemaVersion: 2, mediaType: MEDIA.manifest, config: base.config.descriptor(), layers: [base.layer.descriptor()],
    annotations: { 'org.example.conformance.padding': '' },
  }
  const empty = Buffer.byteLength(JSON.stringify(doc))
  doc.annotations['org.example.conformance.padding'] = 'p'.repeat(size - empty)
  const manifest = new Content(JSON.stringify(doc), MEDIA.manifest)
  expect(manifest.size).toBe(size)
  return manifest
}

describe('push', () => {
  beforeAll(async () => {
    const probe = await client.request('POST', `/v2/${repo}/blobs/uploads/`)
    const min = Number(probe.header('oci-chunk-min-length'))
    if (Number.isSafeInteger(min) && min > chunkSize) chunkSize = min
    if (probe.header('location')) await client.request('DELETE', probe.header('location'))
    base.config = configBlob()
    base.layer = randomBlob(4096)
    base.empty = emptyBlob()
    await ops.pushBlobs(repo, [base.config, base.layer, base.empty])
  })

  describe('blob upload', () => {
    it('end-4a: POST → 202 with a Location for a new session', async () => {
      const { reply } = await startSession()
      expect(reply.status, reply.info).toBe(202)
    })

    it('end-4a: two POSTs → two different session Locations', async () => {
      const a = await startSession()
      const b = await startSession()
      expect(a.location.href, `${a.reply.info}\n${b.reply.info}`).not.toBe(b.location.href)
    })

    it('end-4a: OCI-Chunk-Min-Length, when sent, is a positive integer', async () => {
      const { reply } = await startSession()
      const min = reply.header('oci-chunk-min-length')
      if (min !== null) expect(min, reply.info).toMatch(/^[1-9][0-9]*$/)
    })

    it('end-4a: POST to an invalid repository name → 400 or 404; a JSON body says NAME_INVALID (code-8)', async () => {
      const reply = await client.request('POST', `/v2/${config.namespace}/${config.runId}/Not_Valid--/blobs/uploads/`)
      expectError(reply, [400, 404], ['NAME_INVALID', 'NAME_UNKNOWN'])
      if (reply.status === 400 && reply.json() !== undefined) expect(expectEnvelope(reply), reply.info).toContain('NAME_INVALID')
    })

    it('end-6: POST then PUT <location>?digest= with the whole blob → 201, its Location serves the blob', async () => {
      const blob = randomBlob(20_000)
      const { location } = await startSession()
      const reply = await client.request('PUT', withQuery(client, location, { digest: blob.digest }), { headers: OCTETS, body: blob.bytes })
      expect(reply.status, reply.info).toBe(201)
      expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
      const digest = reply.header('docker-content-digest')
      if (digest) expect(digest, reply.info).toBe(blob.digest)
      await expectBlobServed(blob, reply.header('location'))
      await expectBlobServed(blob)
    })

    it('end-4b: POST ?digest= with the blob → 201 with Location (or 202, and the PUT then completes it)', async () => {
      const blob = randomBlob(10_000)
      const reply = await client.request('POST', `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { headers: OCTETS, body: blob.bytes })
      expect([201, 202], reply.info).toContain(reply.status)
      expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
      if (reply.status === 201) {
        const digest = reply.header('docker-content-digest')
        if (digest) expect(digest, reply.info).toBe(blob.digest)
        await expectBlobServed(blob, reply.header('location'))
      } else {
        await closeSession(client.resolve(reply.header('location')), blob, { start: 0 })
      }
      await expectBlobServed(blob)
    })

    it('end-4b: POST ?digest= with content of another digest → 400 DIGEST_INVALID (code-4)', async () => {
      const blob = randomBlob(1000)
      const wrong = unknownDigest()
      let reply = await client.request('POST', `/v2/${repo}/blobs/uploads/?digest=${wrong}`, { headers: OCTETS, body: blob.bytes })
      if (reply.status === 202) {
        // No single-POST support: the mismatch then shows when the session is closed.
        reply = await client.request('PUT', withQuery(client, reply.header('location'), { digest: wrong }), { headers: OCTETS, body: blob.bytes })
      }
      expectError(reply, 400, 'DIGEST_INVALID')
      expect((await client.request('HEAD', `/v2/${repo}/blobs/${wrong}`)).status).toBe(404)
    })

    it('end-5: streamed PATCH (chunked transfer encoding, no Content-Range) → 202 with Location and Range; PUT closes → 201', async () => {
      const blob = randomBlob(3 * chunkSize + 123)
      const { location } = await startSession()
      const pieces = [blob.bytes.subarray(0, chunkSize), blob.bytes.subarray(chunkSize, 2 * chunkSize + 7), blob.bytes.subarray(2 * chunkSize + 7)]
      const reply = await client.request('PATCH', location, {
        headers: OCTETS,
        body: () => (async function* () {
          for (const piece of pieces) {
            yield piece
            await sleep(5)
          }
        })(),
      })
      const next = expectChunkAccepted(reply, blob.size - 1)
      await closeSession(next, blob)
      await expectBlobServed(blob)
    })

    it('end-5: chunked PATCHes with Content-Range → 202 each with Location and Range 0-<end>; PUT closes → 201', async () => {
      const blob = randomBlob(2 * chunkSize + 500)
      let { location } = await startSession()
      for (let start = 0; start < blob.size; start += chunkSize) {
        const chunk = blob.bytes.subarray(start, start + chunkSize)
        location = expectChunkAccepted(await patchChunk(location, chunk, start), start + chunk.length - 1)
      }
      await closeSession(location, blob)
      await expectBlobServed(blob)
    })

    it('end-6: last chunk sent with the closing PUT (Content-Range) → 201', async () => {
      const blob = randomBlob(chunkSize + 777)
      let { location } = await startSession()
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(0, chunkSize), 0), chunkSize - 1)
      await closeSession(location, blob, { start: chunkSize })
      await expectBlobServed(blob)
    })

    it('end-5: PATCH whose first chunk does not start at 0 → 416', async () => {
      const blob = randomBlob(chunkSize)
      const { location } = await startSession()
      const reply = await patchChunk(location, blob.bytes.subarray(100), 100)
      expectError(reply, 416)
    })

    it('end-5: PATCH out of order chunk (a gap after the last byte) → 416; a Range header, if sent, shows the accepted bytes', async () => {
      const blob = randomBlob(3 * chunkSize)
      let { location } = await startSession()
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(0, chunkSize), 0), chunkSize - 1)
      const reply = await patchChunk(location, blob.bytes.subarray(2 * chunkSize), 2 * chunkSize)
      expectError(reply, 416)
      if (reply.header('range') !== null) expect(reply.header('range'), reply.info).toBe(`0-${chunkSize - 1}`)
    })

    it('end-5: PATCH retrying an already accepted chunk → 416; a Range header, if sent, shows the accepted bytes', async () => {
      const blob = randomBlob(2 * chunkSize)
      let { location } = await startSession()
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(0, chunkSize), 0), chunkSize - 1)
      const reply = await patchChunk(location, blob.bytes.subarray(0, chunkSize), 0)
      expectError(reply, 416)
      if (reply.header('range') !== null) expect(reply.header('range'), reply.info).toBe(`0-${chunkSize - 1}`)
    })

    it('end-13: GET upload status after a 416 → 204 with Location and Range of the accepted bytes; the upload resumes from there', async () => {
      const blob = randomBlob(3 * chunkSize + 99)
      let { location } = await startSession()
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(0, chunkSize), 0), chunkSize - 1)
      const refused = await patchChunk(location, blob.bytes.subarray(2 * chunkSize), 2 * chunkSize)
      expectError(refused, 416)
      const status = await client.request('GET', location)
      expect(status.status, status.info).toBe(204)
      expect(status.header('location'), `no Location\n${status.info}`).toBeTruthy()
      expect(status.header('range'), status.info).toBe(`0-${chunkSize - 1}`)
      location = client.resolve(status.header('location'))
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(chunkSize, 2 * chunkSize), chunkSize), 2 * chunkSize - 1)
      await closeSession(location, blob, { start: 2 * chunkSize })
      await expectBlobServed(blob)
    })

    it('end-13: GET status of a new session → 204 with Location', async () => {
      const { location } = await startSession()
      const status = await client.request('GET', location)
      expect(status.status, status.info).toBe(204)
      expect(status.header('location'), `no Location\n${status.info}`).toBeTruthy()
      const range = status.header('range')
      if (range !== null) expect(range, status.info).toMatch(/^0-[0-9]+$/)
    })

    it('end-13: GET status mid-upload → 204 with Range 0-<end> and a Location to continue from', async () => {
      const blob = randomBlob(2 * chunkSize + 5)
      let { location } = await startSession()
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(0, chunkSize), 0), chunkSize - 1)
      const status = await client.request('GET', location)
      expect(status.status, status.info).toBe(204)
      expect(status.header('range'), status.info).toBe(`0-${chunkSize - 1}`)
      expect(status.header('location'), `no Location\n${status.info}`).toBeTruthy()
      await closeSession(client.resolve(status.header('location')), blob, { start: chunkSize })
      await expectBlobServed(blob)
    })

    it('end-13: cancelled session (DELETE <location>) → then 404 BLOB_UPLOAD_UNKNOWN (code-3) to GET, PATCH and PUT', async () => {
      const blob = randomBlob(chunkSize)
      let { location } = await startSession()
      location = expectChunkAccepted(await patchChunk(location, blob.bytes.subarray(0, 1000), 0), 999)
      const cancel = await client.request('DELETE', location)
      expect([202, 204], cancel.info).toContain(cancel.status)
      expectError(await client.request('GET', location), 404, 'BLOB_UPLOAD_UNKNOWN')
      expectError(await patchChunk(location, blob.bytes.subarray(1000), 1000), 404, 'BLOB_UPLOAD_UNKNOWN')
      expectError(await client.request('PUT', withQuery(client, location, { digest: blob.digest }), {
        headers: { ...OCTETS, 'Content-Range': `1000-${blob.size - 1}` }, body: blob.bytes.subarray(1000),
      }), 404, 'BLOB_UPLOAD_UNKNOWN')
      expect((await client.request('HEAD', `/v2/${repo}/blobs/${blob.digest}`)).status).toBe(404)
    })

    it('end-13: session closed by its PUT → GET <location> 404 BLOB_UPLOAD_UNKNOWN (code-3)', async () => {
      const blob = randomBlob(2000)
      const { location } = await startSession()
      await closeSession(location, blob, { start: 0 })
      expectError(await client.request('GET', location), 404, 'BLOB_UPLOAD_UNKNOWN')
    })

    it('end-6: PUT ?digest= of other content → 400 DIGEST_INVALID (code-4), nothing stored under that digest', async () => {
      const blob = randomBlob(3000)
      const wrong = unknownDigest()
      const { location } = await startSession()
      const reply = await client.request('PUT', withQuery(client, location, { digest: wrong }), { headers: OCTETS, body: blob.bytes })
      expectError(reply, 400, 'DIGEST_INVALID')
      expect((await client.request('HEAD', `/v2/${repo}/blobs/${wrong}`)).status).toBe(404)
    })

    it('end-6: PUT with a malformed ?digest= → 400 DIGEST_INVALID (code-4)', async () => {
      const blob = randomBlob(300)
      const { location } = await startSession()
      const reply = await client.request('PUT', withQuery(client, location, { digest: 'sha256:not-a-digest' }), { headers: OCTETS, body: blob.bytes })
      expectError(reply, 400, 'DIGEST_INVALID')
    })

    it('end-6: PUT without ?digest= → 400 DIGEST_INVALID or BLOB_UPLOAD_INVALID', async () => {
      const blob = randomBlob(300)
      const { location } = await startSession()
      const reply = await client.request('PUT', location, { headers: OCTETS, body: blob.bytes })
      expectError(reply, 400, ['DIGEST_INVALID', 'BLOB_UPLOAD_INVALID'])
    })

    it('end-5: PATCH whose Content-Range disagrees with its Content-Length → 400 SIZE_INVALID (code-10) or BLOB_UPLOAD_INVALID, or 416', async () => {
      const blob = randomBlob(1000)
      const { location } = await startSession()
      const reply = await client.request('PATCH', location, { headers: { ...OCTETS, 'Content-Range': '0-1999' }, body: blob.bytes })
      if (reply.status === 416) return
      expectError(reply, 400, ['SIZE_INVALID', 'BLOB_UPLOAD_INVALID'])
    })
  })

  describe('cross-repository mount', () => {
    const target = (part) => repository(part, config.crossmountNamespace)

    it('end-11: POST ?mount=<digest>&from=<repo> → 201 with Location; the blob is served in the target', async () => {
      const blob = randomBlob(5000)
      await ops.pushBlob(repo, blob)
      const name = target('mount-from')
      const reply = await client.request('POST', `/v2/${name}/blobs/uploads/?mount=${blob.digest}&from=${repo}`)
      expect(reply.status, reply.info).toBe(201)
      expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
      const digest = reply.header('docker-content-digest')
      if (digest) expect(digest, reply.info).toBe(blob.digest)
      await expectBlobServed(blob, reply.header('location'))
      await expectBlobServed(blob, `/v2/${name}/blobs/${blob.digest}`)
    })

    it('end-11: POST ?mount=<digest> without from → 201 (mounted) or 202 with a usable session', async () => {
      const blob = randomBlob(5000)
      await ops.pushBlob(repo, blob)
      const name = target('mount-without-from')
      const reply = await client.request('POST', `/v2/${name}/blobs/uploads/?mount=${blob.digest}`)
      expect([201, 202], reply.info).toContain(reply.status)
      expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
      if (reply.status === 202) await closeSession(client.resolve(reply.header('location')), blob, { start: 0 })
      await expectBlobServed(blob, `/v2/${name}/blobs/${blob.digest}`)
    })

    it('end-11: POST ?mount=<digest> without from, the blob in a repository the client may pull → 201 (automatic content discovery)', async () => {
      // Optional in the spec ("MAY"); a registry that does it answers 201 and serves the blob.
      const blob = randomBlob(5000)
      await ops.pushBlob(repo, blob)
      const name = target('mount-discovered')
      const reply = await client.request('POST', `/v2/${name}/blobs/uploads/?mount=${blob.digest}`)
      expect(reply.status, reply.info).toBe(201)
      await expectBlobServed(blob, `/v2/${name}/blobs/${blob.digest}`)
    })

    it('end-11: POST ?mount=<digest> without from, the blob nowhere → 202 with a usable session', async () => {
      const blob = randomBlob(5000)
      const name = target('mount-undiscovered')
      const reply = await client.request('POST', `/v2/${name}/blobs/uploads/?mount=${blob.digest}`)
      expect(reply.status, reply.info).toBe(202)
      await closeSession(client.resolve(reply.header('location')), blob, { start: 0 })
    })

    it('end-11: POST ?mount= with from a repository lacking the blob → 202 with Location of a usable session', async () => {
      const blob = randomBlob(5000)
      const name = target('mount-from-lacking')
      const reply = await client.request('POST', `/v2/${name}/blobs/uploads/?mount=${blob.digest}&from=${repo}`)
      expect(reply.status, reply.info).toBe(202)
      expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
      await closeSession(client.resolve(reply.header('location')), blob, { start: 0 })
      await expectBlobServed(blob, `/v2/${name}/blobs/${blob.digest}`)
    })

    it('end-11: POST ?mount= with from a repository that does not exist → 202 with Location of a usable session', async () => {
      const blob = randomBlob(5000)
      const name = target('mount-from-nowhere')
      const reply = await client.request('POST', `/v2/${name}/blobs/uploads/?mount=${blob.digest}&from=${repository('no-such-repository')}`)
      expect(reply.status, reply.info).toBe(202)
      expect(reply.header('location'), `no Location\n${reply.info}`).toBeTruthy()
      await closeSession(client.resolve(reply.header('location')), blob, { start: 0 })
      await expectBlobServed(blob, `/v2/${name}/blobs/${blob.digest}`)
    })
  })

  describe('paths', () => {
    it('end-4a: POST through a "." or ".." segment, raw or percent-encoded, opens no session in another repository', async () => {
      for (const path of dottedPaths(repo, 'blobs/uploads/')) {
        const res = await client.verbatim('POST', path, { like: `/v2/${repo}/tags/list` })
        expect(NOT_REWRITTEN, res.info).toContain(res.status)
      }
    })

    it('end-7: PUT manifest through a "." or ".." segment, raw or percent-encoded, tags nothing in another repository', async () => {
      const manifest = imageManifest({ config: base.config, layers: [base.layer] })
      const paths = dottedPaths(repo, 'manifests/through-dots')
      for (const path of paths) {
        const res = await client.verbatim('PUT', path, { like: `/v2/${repo}/tags/list`, headers: { 'Content-Type': manifest.mediaType }, body: manifest.bytes })
        expect(NOT_REWRITTEN, res.info).toContain(res.status)
      }
      const after = await client.request('GET', `/v2/${repo}/manifests/through-dots`, { headers: { Accept: ACCEPT_MANIFESTS } })
      expectError(after, 404, 'MANIFEST_UNKNOWN')
    })
  })

  describe('manifest upload', () => {
    it('end-7: PUT image manifest by tag → 201 with Location and Docker-Content-Digest; Location serves it', async () => {
      const manifest = imageManifest({ config: base.config, layers: [base.layer] })
      const reply = await putManifest('tagged', manifest)
      expectManifestCreated(reply, manifest)
      await expectManifestServed(reply.header('location'), manifest)
      await expectManifestServed('tagged', manifest)
      await expectManifestServed(manifest.digest, manifest)
    })

    it('end-7: PUT image manifest by digest → 201 with Location', async () => {
      const manifest = imageManifest({ config: base.config, layers: [base.layer], annotations: { 'org.example.conformance': 'by-digest' } })
      const reply = await putManifest(manifest.digest, manifest)
      expectManifestCreated(reply, manifest)
      await expectManifestServed(manifest.digest, manifest)
    })

    it('end-7: manifest stored byte for byte (odd whitespace and key order)', async () => {
      const text = `{\n  "layers" : [ ${JSON.stringify(base.layer.descriptor())} ],\n\t"mediaType":"${MEDIA.manifest}",  "schemaVersion":2,\n  "config":${JSON.stringify(base.config.descriptor(), null, 5)}\n}\n\n`
      const manifest = new Content(text, MEDIA.manifest)
      expectManifestCreated(await putManifest('odd-bytes', manifest), manifest)
      await expectManifestServed('odd-bytes', manifest)
    })

    it('end-7: PUT manifest with no layers → 201', async () => {
      const manifest = imageManifest({ config: base.config, layers: [] })
      expectManifestCreated(await putManifest('no-layers', manifest), manifest)
      await expectManifestServed('no-layers', manifest)
    })

    it('end-7: PUT image index → 201', async () => {
      const a = imageManifest({ config: base.config, layers: [base.layer] })
      const b = imageManifest({ config: base.config, layers: [] })
      for (const m of [a, b]) expectManifestCreated(await putManifest(m.digest, m), m)
      const index = imageIndex({ manifests: [a, b] })
      expectManifestCreated(await putManifest('index', index), index)
      await expectManifestServed('index', index)
    })

    it('end-7: PUT artifact manifest (artifactType, empty config descriptor application/vnd.oci.empty.v1+json) → 201', async () => {
      const blob = randomBlob(700, 'application/vnd.example.conformance.data')
      await ops.pushBlob(repo, blob)
      const manifest = artifactManifest({ artifactType: 'application/vnd.example.conformance.artifact.v1', layers: [blob] })
      expectManifestCreated(await putManifest('artifact', manifest), manifest)
      await expectManifestServed('artifact', manifest)
      await expectBlobServed(base.empty)
      expect(base.empty.bytes.toString()).toBe('{}')
    })

    it('end-7: Content-Type with parameters → parameters ignored, 201', async () => {
      const manifest = imageManifest({ config: base.config, layers: [base.layer], annotations: { 'org.example.conformance': 'parameters' } })
      const reply = await putManifest('with-parameters', manifest, { contentType: `${MEDIA.manifest}; charset=utf-8` })
      expectManifestCreated(reply, manifest)
      await expectManifestServed('with-parameters', manifest)
    })

    it('end-7: tag of 128 characters (the longest allowed) → 201, pullable by it', async () => {
      const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-'
      let tag = '_'
      while (tag.length < 128) tag += alphabet[tag.length % alphabet.length]
      const manifest = imageManifest({ config: base.config, layers: [] })
      expectManifestCreated(await putManifest(tag, manifest), manifest)
      await expectManifestServed(tag, manifest)
    })

    it('end-7: manifest whose subject does not exist → 201', async () => {
      const absent = imageManifest({ config: base.config, layers: [base.layer], annotations: { 'org.example.conformance': 'never pushed' } })
      const artifact = artifactManifest({ artifactType: 'application/vnd.example.conformance.early.v1', subject: absent })
      expectManifestCreated(await putManifest(artifact.digest, artifact), artifact)
      await expectManifestServed(artifact.digest, artifact)
    })

    it('end-7: PUT manifest with subject → OCI-Subject header with the subject digest', async () => {
      const subject = imageManifest({ config: base.config, layers: [base.layer], annotations: { 'org.example.conformance': 'subject' } })
      expectManifestCreated(await putManifest(subject.digest, subject), subject)
      const artifact = artifactManifest({ artifactType: 'application/vnd.example.conformance.signature.v1', subject })
      const reply = await putManifest(artifact.digest, artifact)
      expectManifestCreated(reply, artifact)
      expect(reply.header('oci-subject'), reply.info).toBe(subject.digest)
    })

    it('end-7: manifest with an unknown layer → 201 or MANIFEST_BLOB_UNKNOWN (code-5)', async () => {
      const manifest = imageManifest({ config: base.config, layers: [randomBlob(100)] })
      const reply = await putManifest(manifest.digest, manifest)
      if (reply.status === 201) return
      expectError(reply, [400, 404], 'MANIFEST_BLOB_UNKNOWN')
      expect(expectEnvelope(reply), reply.info).toContain('MANIFEST_BLOB_UNKNOWN')
    })

    it('end-7: manifest with an unknown config → 201 or MANIFEST_BLOB_UNKNOWN (code-5)', async () => {
      const manifest = imageManifest({ config: configBlob(), layers: [base.layer] })
      const reply = await putManifest(manifest.digest, manifest)
      if (reply.status === 201) return
      expectError(reply, [400, 404], 'MANIFEST_BLOB_UNKNOWN')
      expect(expectEnvelope(reply), reply.info).toContain('MANIFEST_BLOB_UNKNOWN')
    })

    it('end-7: index with an unknown manifest → 201 or MANIFEST_BLOB_UNKNOWN (code-5)', async () => {
      const index = imageIndex({ manifests: [imageManifest({ config: configBlob(), layers: [] })] })
      const reply = await putManifest(index.digest, index)
      if (reply.status === 201) return
      expectError(reply, [400, 404], 'MANIFEST_BLOB_UNKNOWN')
      expect(expectEnvelope(reply), reply.info).toContain('MANIFEST_BLOB_UNKNOWN')
    })

    it('end-7: PUT to a digest the body does not have → 400 DIGEST_INVALID (code-4)', async () => {
      const manifest = imageManifest({ config: base.config, layers: [base.layer], annotations: { 'org.example.conformance': 'mismatch' } })
      const wrong = unknownDigest()
      const reply = await putManifest(wrong, manifest)
      expectError(reply, 400, 'DIGEST_INVALID')
      const after = await client.request('HEAD', `/v2/${repo}/manifests/${wrong}`, { headers: { Accept: ACCEPT_MANIFESTS } })
      expect(after.status, after.info).toBe(404)
    })

    it('end-7: malformed manifest JSON → 400 MANIFEST_INVALID (code-6)', async () => {
      const broken = new Content(`{"schemaVersion":2,"mediaType":"${MEDIA.manifest}","config":${JSON.stringify(base.config.descriptor())},"layers":[`, MEDIA.manifest)
      const reply = await putManifest('broken', broken)
      expectError(reply, 400, 'MANIFEST_INVALID')
    })

    it('end-7: manifest of 4 MiB → 201 (pushes of at least 4 megabytes are expected to work)', async () => {
      const manifest = manifestOfSize(4 * 1024 * 1024)
      expectManifestCreated(await putManifest('four-mib', manifest), manifest)
      await expectManifestServed('four-mib', manifest)
    })

    it('end-7: manifest over 4 MiB → 413', async () => {
      const manifest = manifestOfSize(4 * 1024 * 1024 + 1)
      const reply = await putManifest('over-four-mib', manifest)
      expect(reply.status, reply.info).toBe(413)
      const after = await client.request('HEAD', `/v2/${repo}/manifests/over-four-mib`, { headers: { Accept: ACCEPT_MANIFESTS } })
      expect(after.status, after.info).toBe(404)
    })
  })

  it('warnings: any Warning header is 299 - "<text>" without a date, at most 4096 bytes per response', () => {
    expectWellFormedWarnings(client)
  })
})
