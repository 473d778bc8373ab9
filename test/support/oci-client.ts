/** A tiny OCI client for tests: pushes and pulls blobs and manifests over HTTP, checking statuses. */
import { createHash, randomBytes } from 'node:crypto'

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar'

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export interface Blob { digest: string; bytes: Buffer }

export function randomBlob(size: number): Blob {
  const bytes = randomBytes(size)
  return { digest: sha256(bytes), bytes }
}

async function expectStatus(res: Response, status: number, what: string): Promise<Response> {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${await res.text()}`)
  return res
}

/** POST + PATCH (in two chunks with Content-Range) + PUT, following Location each time. */
export async function pushBlobChunked(base: string, repo: string, blob: Blob): Promise<void> {
  let res = await expectStatus(await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), 202, 'POST upload')
  let location = new URL(res.headers.get('location')!, base).toString()
  const half = Math.floor(blob.bytes.length / 2)
  for (const [start, end] of [[0, half], [half, blob.bytes.length]] as const) {
    if (end === start) continue
    res = await expectStatus(await fetch(location, {
      method: 'PATCH', body: blob.bytes.subarray(start, end),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${end - 1}` },
    }), 202, 'PATCH chunk')
    location = new URL(res.headers.get('location')!, base).toString()
  }
  const sep = location.includes('?') ? '&' : '?'
  await expectStatus(await fetch(`${location}${sep}digest=${encodeURIComponent(blob.digest)}`, { method: 'PUT' }), 201, 'PUT upload')
}

export async function putManifest(base: string, repo: string, ref: string, body: string, mediaType: string): Promise<string> {
  const res = await expectStatus(await fetch(`${base}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT', body, headers: { 'Content-Type': mediaType },
  }), 201, `PUT manifest ${repo}:${ref}`)
  return res.headers.get('docker-content-digest')!
}

export async function getBytes(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(url, { headers })
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
}

/** An OCI image manifest over a config and layers, with deliberately unusual whitespace. */
export function imageManifest(config: Blob, layers: Blob[]): string {
  return `{ "schemaVersion": 2,\n  "mediaType": "${OCI_MANIFEST}",\n  "config": {"mediaType": "${OCI_CONFIG}", "digest": "${config.digest}", "size": ${config.bytes.length}},\n  "layers": [${layers.map((l) => `{"mediaType": "${OCI_LAYER}", "digest": "${l.digest}", "size": ${l.bytes.length}}`).join(', ')}]\n}\n`
}
