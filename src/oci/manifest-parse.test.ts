import { describe, expect, it } from 'vitest'
import { RegistryError } from './errors.js'
import { DOCKER_MANIFEST_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, mediaTypeOf, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, parseManifest } from './manifest.js'

const d = (c: string) => `sha256:${c.repeat(64)}`
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v))
const image = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('1'), size: 2 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('2'), size: 3 }],
  ...extra,
})

describe('parseManifest', () => {
  it('lists the blobs an image manifest needs, and its subject and artifact type', () => {
    const m = parseManifest(bytes(image({ subject: { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: d('9'), size: 5 } })), OCI_MANIFEST_MEDIA_TYPE)
    expect(m.kind).toBe('image')
    expect(m.blobs.map((b) => b.value)).toEqual([d('1'), d('2')])
    expect(m.subject?.value).toBe(d('9'))
    expect(m.artifactType).toBe('application/vnd.oci.image.config.v1+json')
  })

  it('skips foreign layers, which are never pushed', () => {
    const m = parseManifest(bytes(image({
      mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('3'), size: 1, urls: ['https://example.com/x'] }],
    })), DOCKER_MANIFEST_MEDIA_TYPE)
    expect(m.blobs.map((b) => b.value)).toEqual([d('1')])
  })

  it('lists the children of indexes and manifest lists', () => {
    for (const mediaType of [OCI_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_LIST_MEDIA_TYPE]) {
      const m = parseManifest(bytes({ schemaVersion: 2, mediaType, manifests: [{ mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: d('4'), size: 9 }] }), mediaType)
      expect(m.kind).toBe('index')
      expect(m.manifests.map((x) => x.value)).toEqual([d('4')])
    }
  })

  it('takes the media type from Content-Type when the body has none', () => {
    const body = image()
    delete (body as Record<string, unknown>).mediaType
    expect(parseManifest(bytes(body), `${OCI_MANIFEST_MEDIA_TYPE}; charset=utf-8`).mediaType).toBe(OCI_MANIFEST_MEDIA_TYPE)
    expect(mediaTypeOf(bytes(body))).toBe(OCI_MANIFEST_MEDIA_TYPE)
  })

  it('refuses what it cannot store, saying why', () => {
    const cases: [unknown, string | undefined, RegExp][] = [
      ['not json', OCI_MANIFEST_MEDIA_TYPE, /not valid JSON/],
      [[1, 2], OCI_MANIFEST_MEDIA_TYPE, /JSON object/],
      [{ schemaVersion: 1, fsLayers: [] }, undefined, /schema 1/],
      [image(), OCI_INDEX_MEDIA_TYPE, /does not match/],
      [image({ layers: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }] }), OCI_MANIFEST_MEDIA_TYPE, /layers\.0\.digest/],
      [image({ config: undefined }), OCI_MANIFEST_MEDIA_TYPE, /config/],
      [{ schemaVersion: 2, mediaType: 'application/x-other' }, 'application/x-other', /unsupported manifest media type/],
    ]
    for (const [body, type, message] of cases) {
      const raw = typeof body === 'string' ? Buffer.from(body) : bytes(body)
      expect(() => parseManifest(raw, type)).toThrow(RegistryError)
      expect(() => parseManifest(raw, type)).toThrow(message)
    }
  })
})
