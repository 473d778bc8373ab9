/**
 * Test content (blobs, configs, image manifests, indexes, artifacts) made fresh for every run, and
 * the few registry operations the set-up steps share.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { expect } from 'vitest'
import { Client } from './client.mjs'
import { config } from './config.mjs'

export const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  empty: 'application/vnd.oci.empty.v1+json',
  octets: 'application/octet-stream',
}

/** Every manifest type the suite pushes, for Accept headers. */
export const ACCEPT_MANIFESTS = [MEDIA.manifest, MEDIA.index].join(', ')

/** The error codes of the spec's table (code-1 … code-14). */
export const ERROR_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
]

export function sha256(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** A digest of content that exists nowhere. */
export function unknownDigest() {
  return sha256(randomBytes(32))
}

/** Content addressed by its digest. `bytes` is exactly what is sent and expected back. */
export class Content {
  constructor(bytes, mediaType) {
    this.bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)
    this.mediaType = mediaType
    this.digest = sha256(this.bytes)
    this.size = this.bytes.length
  }

  descriptor(extra = {}) {
    return { mediaType: this.mediaType, digest: this.digest, size: this.size, ...extra }
  }
}

export function randomBlob(size, mediaType = MEDIA.layer) {
  return new Content(randomBytes(size), mediaType)
}

/** The empty descriptor's content: the two bytes `{}`. */
export function emptyBlob() {
  return new Content('{}', MEDIA.empty)
}

/** An image config, unique to this call. */
export function configBlob(mediaType = MEDIA.config) {
  return new Content(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: { 'org.example.conformance.nonce': randomUUID() } },
    rootfs: { type: 'layers', diff_ids: [] },
  }), mediaType)
}

/**
 * An image manifest. `indent` formats the JSON so that the bytes differ from a compact
 * re-serialisation, to catch registries that do not store what they were given.
 */
export function imageManifest({ config: cfg, layers = [], subject, artifactType, annotations, indent } = {}) {
  const doc = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    ...(artifactType ? { artifactType } : {}),
    config: cfg.descriptor(),
    layers: layers.map((l) => l.descriptor()),
    ...(subject ? { subject: subject.descriptor() } : {}),
    ...(annotations ? { annotations } : {}),
  }
  return new Content(JSON.stringify(doc, null, indent), MEDIA.manifest)
}

/** An artifact: an image manifest with an artifactType, the empty config and (by default) one empty layer. */
export function artifactManifest({ artifactType, subject, layers, annotations }) {
  return imageManifest({ config: emptyBlob(), layers: layers ?? [emptyBlob()], subject, artifactType, annotations })
}

/** An image index over `manifests` (Content values). */
export function imageIndex({ manifests, subject, artifactType, annotations, indent } = {}) {
  const doc = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    ...(artifactType ? { artifactType } : {}),
    manifests: manifests.map((m, i) => m.descriptor({ platform: { architecture: i % 2 ? 'arm64' : 'amd64', os: 'linux' } })),
    ...(subject ? { subject: subject.descriptor() } : {}),
    ...(annotations ? { annotations } : {}),
  }
  return new Content(JSON.stringify(doc, null, indent), MEDIA.index)
}

/** A client for the registry under test, one per test file. */
export function newClient() {
  return new Client({ url: config.url, username: config.username, password: config.password, debug: config.debug })
}

/** Helpers for set-up steps: each throws with the whole exchange when the registry refuses. */
export function operations(client) {
  const ensure = (reply, statuses, what) => {
    if (!statuses.includes(reply.status)) throw new Error(`${what} failed: expected ${statuses.join(' or ')}\n${reply.info}`)
    return reply
  }
  return {
    /** POST then PUT with the whole blob. */
    async pushBlob(repo, blob) {
      const start = ensure(await client.request('POST', `/v2/${repo}/blobs/uploads/`), [202], `upload of ${blob.digest} to ${repo}`)
      const url = client.resolve(start.header('location'))
      url.searchParams.set('digest', blob.digest)
      return ensure(await client.request('PUT', url, {
        headers: { 'Content-Type': MEDIA.octets }, body: blob.bytes,
      }), [201], `upload of ${blob.digest} to ${repo}`)
    },
    async pushBlobs(repo, blobs) {
      for (const blob of blobs) await this.pushBlob(repo, blob)
    },
    async pushManifest(repo, reference, manifest) {
      return ensure(await client.request('PUT', `/v2/${repo}/manifests/${reference}`, {
        headers: { 'Content-Type': manifest.mediaType }, body: manifest.bytes,
      }), [201], `PUT manifest ${reference} to ${repo}`)
    },
    /** A new upload session; returns its Location as an absolute URL. */
    async startUpload(repo) {
      const reply = ensure(await client.request('POST', `/v2/${repo}/blobs/uploads/`), [202], `POST upload to ${repo}`)
      if (!reply.header('location')) throw new Error(`POST upload gave no Location\n${reply.info}`)
      return client.resolve(reply.header('location'))
    },
    /** Pushes a config, a layer and an image manifest tagged with each of `tags`. */
    async pushImage(repo, tags = [], { layerSize = 2048 } = {}) {
      const cfg = configBlob()
      const layer = randomBlob(layerSize)
      await this.pushBlobs(repo, [cfg, layer])
      const manifest = imageManifest({ config: cfg, layers: [layer] })
      await this.pushManifest(repo, manifest.digest, manifest)
      for (const tag of tags) await this.pushManifest(repo, tag, manifest)
      return { config: cfg, layer, manifest }
    },
  }
}

/** `<location>` with `?digest=` (and any other parameters) added to its own query. */
export function withQuery(client, location, params) {
  const url = client.resolve(location)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  return url
}

/** Asserts the error envelope of the "Error Codes" section on a JSON error body. */
export function expectEnvelope(reply) {
  const json = reply.json()
  expect(json, `error body is not JSON\n${reply.info}`).toBeTypeOf('object')
  expect(Array.isArray(json?.errors), `error body has no "errors" array\n${reply.info}`).toBe(true)
  expect(json.errors.length, `"errors" is empty\n${reply.info}`).toBeGreaterThan(0)
  for (const e of json.errors) {
    expect(e?.code, `an error has no code\n${reply.info}`).toBeTypeOf('string')
    expect(e.code, `code has characters other than A-Z and _\n${reply.info}`).toMatch(/^[A-Z_]+$/)
    expect(ERROR_CODES, `code ${e.code} is not one of the spec's codes\n${reply.info}`).toContain(e.code)
    if (e.message !== undefined) expect(e.message, `message is not a string\n${reply.info}`).toBeTypeOf('string')
  }
  return json.errors.map((e) => e.code)
}

/** Whether a 4xx body has to follow the envelope: the spec lets it be any format unless it is JSON. */
function claimsJson(reply) {
  if (reply.method === 'HEAD' || reply.body.length === 0) return false
  return /json/i.test(reply.header('content-type') ?? '') || reply.json() !== undefined
}

/**
 * Asserts an error response: one of `statuses`, and when the body is JSON, the envelope with one
 * of `codes` among its errors (HEAD responses carry no body to check).
 */
export function expectError(reply, statuses, codes) {
  statuses = [statuses].flat()
  expect(statuses, `expected status ${statuses.join(' or ')}\n${reply.info}`).toContain(reply.status)
  if (!claimsJson(reply)) return
  const found = expectEnvelope(reply)
  if (codes) {
    codes = [codes].flat()
    expect(found.some((c) => codes.includes(c)), `expected error code ${codes.join(' or ')}, got ${found.join(', ')}\n${reply.info}`).toBe(true)
  }
}

/** Parses `<url>; rel="next"` (RFC 5988) from a Link header; undefined when there is no next link. */
export function nextLink(reply) {
  const header = reply.header('link')
  if (!header) return undefined
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/s.exec(part)
    if (!m) continue
    for (const param of m[2].split(';').slice(1)) {
      const p = /^\s*rel\s*=\s*(?:"([^"]*)"|(\S+))\s*$/i.exec(param)
      if (p && (p[1] ?? p[2]).toLowerCase().split(/\s+/).includes('next')) return m[1]
    }
  }
  return undefined
}

/**
 * Checks the Warning headers collected by a client: code 299, agent "-", a quoted text, no date,
 * and at most 4096 bytes of them in one response ("Warnings").
 */
export function expectWellFormedWarnings(client) {
  for (const value of client.warnings) {
    // fetch joins a response's Warning headers with ", ".
    for (const w of value.split(/,(?=\s*\d{3}\s)/)) {
      expect(w.trim(), `malformed Warning header: ${value}`).toMatch(/^299 - "(?:[^"\\]|\\.)*"$/)
    }
    expect(Buffer.byteLength(value), `more than 4096 bytes of Warning headers in one response: ${value.slice(0, 200)}…`).toBeLessThanOrEqual(4096)
  }
}

/**
 * Paths that a URL parser would rewrite into `name`: a `.` or `..` segment, raw or
 * percent-encoded, just before its last component. A registry must refuse them (or redirect),
 * never serve `name` through them: an ACL decided on the path as sent would be bypassed.
 */
export function dottedPaths(name, rest) {
  const i = name.lastIndexOf('/')
  const parent = name.slice(0, i)
  const leaf = name.slice(i + 1)
  return [
    `/v2/${parent}/./${leaf}/${rest}`, `/v2/${parent}/%2e/${leaf}/${rest}`, `/v2/${parent}/x/../${leaf}/${rest}`,
    `/v2/${parent}/x/%2e%2e/${leaf}/${rest}`, `/v2/${parent}/x/.%2E/${leaf}/${rest}`, `/v2/../v2/${name}/${rest}`,
  ]
}

/** Statuses that serve nothing under the rewritten name: refused, unknown, or redirected to the real path. */
export const NOT_REWRITTEN = [301, 308, 400, 404]
