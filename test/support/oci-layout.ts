/** Writes a small OCI image layout on disk (index.json, blobs/sha256/…), as skopeo and umoci read it. */
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

export interface LayoutImage {
  dir: string
  tag: string
  manifestDigest: string
  blobs: { digest: string; bytes: Buffer }[]
}

function put(dir: string, bytes: Buffer): string {
  const hex = createHash('sha256').update(bytes).digest('hex')
  writeFileSync(join(dir, 'blobs/sha256', hex), bytes)
  return `sha256:${hex}`
}

/** An image with `layers` gzip layers of about `layerSize` random bytes each. */
export function writeOciLayout(dir: string, tag: string, layers: number, layerSize: number): LayoutImage {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const contents = Array.from({ length: layers }, () => randomBytes(layerSize))
  const layerBlobs = contents.map((c) => gzipSync(c, { level: 1 }))
  const layerDigests = layerBlobs.map((b) => put(dir, b))
  // diff_ids name the uncompressed layers.
  const diffIds = contents.map((c) => `sha256:${createHash('sha256').update(c).digest('hex')}`)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }))
  const configDigest = put(dir, config)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layerBlobs.map((b, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigests[i], size: b.length })),
  }))
  const manifestDigest = put(dir, manifest)
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }))
  return {
    dir, tag, manifestDigest,
    blobs: [{ digest: configDigest, bytes: config }, ...layerBlobs.map((bytes, i) => ({ digest: layerDigests[i]!, bytes }))],
  }
}
