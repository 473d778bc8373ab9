/** @module Manifest media types and zod schemas; parses a copy, the stored bytes are never re-serialized. */
import { z } from 'zod'
import { RegistryError } from './errors.js'
import { type Digest, tryParseDigest } from './digest.js'

export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_MANIFEST_LIST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.list.v2+json'
const DOCKER_SCHEMA1_MEDIA_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
])

const IMAGE_MEDIA_TYPES = new Set([OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE])
const INDEX_MEDIA_TYPES = new Set([OCI_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_LIST_MEDIA_TYPE])
export const MANIFEST_MEDIA_TYPES: readonly string[] = [...IMAGE_MEDIA_TYPES, ...INDEX_MEDIA_TYPES]

/** Layers that live elsewhere (Windows base layers): their bytes are never pushed, so they are not checked. */
const FOREIGN_LAYER_MEDIA_TYPES = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
])

const digestString = z.string().refine((s) => tryParseDigest(s) !== undefined, { message: 'not a valid sha256/sha512 digest' })
const annotations = z.record(z.string(), z.string())

export const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: digestString,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: annotations.optional(),
  artifactType: z.string().optional(),
  platform: z.unknown().optional(),
})
export type Descriptor = z.infer<typeof descriptorSchema>

const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotations.optional(),
})

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotations.optional(),
})

/** What the registry needs to know about a manifest it stores. */
export interface ParsedManifest {
  mediaType: string
  kind: 'image' | 'index'
  /** Blobs that must exist in the repository (config and layers). */
  blobs: Digest[]
  /** Manifests that must exist in the repository (children of an index). */
  manifests: Digest[]
  subject?: Digest
  /** artifactType, or the config media type (spec: referrers fall back to it). */
  artifactType?: string
  annotations?: Record<string, string>
}

/**
 * Validates manifest bytes; `contentType` is the request's Content-Type (may be empty).
 * Throws MANIFEST_INVALID with a message that says what is wrong.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw invalid(`manifest is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid('manifest must be a JSON object')
  const body = json as Record<string, unknown>
  const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined
  const requested = normalizeContentType(contentType)

  if (body.schemaVersion === 1 || DOCKER_SCHEMA1_MEDIA_TYPES.has(requested ?? '') || DOCKER_SCHEMA1_MEDIA_TYPES.has(declared ?? '')) {
    throw invalid('Docker schema 1 manifests are not supported: push an OCI or Docker schema 2 manifest (docker, skopeo and podman do by default)')
  }
  if (declared && requested && declared !== requested && MANIFEST_MEDIA_TYPES.includes(requested)) {
    throw invalid(`Content-Type "${requested}" does not match the manifest's mediaType "${declared}"`)
  }
  const mediaType = declared ?? (requested && MANIFEST_MEDIA_TYPES.includes(requested) ? requested : sniff(body))
  if (!mediaType || !MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw invalid(`unsupported manifest media type "${mediaType ?? requested ?? ''}"; supported: ${MANIFEST_MEDIA_TYPES.join(', ')}`)
  }

  if (IMAGE_MEDIA_TYPES.has(mediaType)) {
    const m = validate(imageManifestSchema, body)
    const blobs = [m.config, ...m.layers]
      .filter((d) => !FOREIGN_LAYER_MEDIA_TYPES.has(d.mediaType) && !(d.urls && d.urls.length > 0))
      .map((d) => tryParseDigest(d.digest)!)
    return {
      mediaType, kind: 'image', blobs, manifests: [],
      subject: m.subject ? tryParseDigest(m.subject.digest) : undefined,
      artifactType: m.artifactType ?? m.config.mediaType,
      annotations: m.annotations,
    }
  }
  const ix = validate(indexSchema, body)
  return {
    mediaType, kind: 'index', blobs: [],
    manifests: ix.manifests.map((d) => tryParseDigest(d.digest)!),
    subject: ix.subject ? tryParseDigest(ix.subject.digest) : undefined,
    artifactType: ix.artifactType,
    annotations: ix.annotations,
  }
}

/** Media type of stored manifest bytes, for serving them (parses leniently; never throws). */
export function mediaTypeOf(bytes: Uint8Array): string {
  try {
    const body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Record<string, unknown>
    if (typeof body.mediaType === 'string') return body.mediaType
    return sniff(body) ?? OCI_MANIFEST_MEDIA_TYPE
  } catch {
    return OCI_MANIFEST_MEDIA_TYPE
  }
}

function sniff(body: Record<string, unknown>): string | undefined {
  if (body.schemaVersion !== 2) return undefined
  if (Array.isArray(body.manifests)) return OCI_INDEX_MEDIA_TYPE
  if (typeof body.config === 'object' && body.config !== null) return OCI_MANIFEST_MEDIA_TYPE
  return undefined
}

function normalizeContentType(contentType: string | undefined): string | undefined {
  const base = contentType?.split(';', 1)[0]?.trim().toLowerCase()
  return base ? base : undefined
}

function validate<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body)
  if (result.success) return result.data
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  throw invalid(`manifest does not match its schema: ${problems.slice(0, 5).join('; ')}`)
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message)
}
