/** Images pushed and pulled the way clients do, for tests that compare what two registries serve. */
import { expect } from 'vitest'
import {
  getBytes, imageManifest, OCI_INDEX, OCI_MANIFEST, pushBlobChunked, putManifest, randomBlob, sha256, type Blob,
} from './oci-client.js'

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'

export interface Pushed {
  repo: string
  config: Blob
  layers: Blob[]
  manifests: { tag: string; digest: string; body: string; mediaType: string }[]
}

/** Pushes an OCI image, a Docker schema 2 image and an index over both, with tags. */
export async function pushImages(base: string, repo: string): Promise<Pushed> {
  const config = randomBlob(300)
  const layers = [randomBlob(200_000), randomBlob(70_000)]
  for (const blob of [config, ...layers]) await pushBlobChunked(base, repo, blob)
  const oci = imageManifest(config, layers)
  const docker = JSON.stringify({
    schemaVersion: 2, mediaType: DOCKER_MANIFEST,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: config.digest, size: config.bytes.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: l.digest, size: l.bytes.length })),
  }, null, 3)
  const ociDigest = await putManifest(base, repo, 'oci', oci, OCI_MANIFEST)
  const dockerDigest = await putManifest(base, repo, 'docker', docker, DOCKER_MANIFEST)
  const index = JSON.stringify({
    schemaVersion: 2, mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: ociDigest, size: Buffer.byteLength(oci), platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: DOCKER_MANIFEST, digest: dockerDigest, size: Buffer.byteLength(docker), platform: { architecture: 'arm64', os: 'linux' } },
    ],
  })
  const list = index.replace(OCI_INDEX, DOCKER_LIST).replace(OCI_MANIFEST, DOCKER_MANIFEST)
  const indexDigest = await putManifest(base, repo, 'index', index, OCI_INDEX)
  const listDigest = await putManifest(base, repo, 'list', list, DOCKER_LIST)
  return {
    repo, config, layers,
    manifests: [
      { tag: 'oci', digest: ociDigest, body: oci, mediaType: OCI_MANIFEST },
      { tag: 'docker', digest: dockerDigest, body: docker, mediaType: DOCKER_MANIFEST },
      { tag: 'index', digest: indexDigest, body: index, mediaType: OCI_INDEX },
      { tag: 'list', digest: listDigest, body: list, mediaType: DOCKER_LIST },
    ],
  }
}

/** Pulls everything back the way a client would and compares bytes, digests and media types. */
export async function expectServed(base: string, pushed: Pushed): Promise<void> {
  for (const m of pushed.manifests) {
    for (const ref of [m.tag, m.digest]) {
      const res = await getBytes(`${base}/v2/${pushed.repo}/manifests/${ref}`, { Accept: [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ') })
      expect(res.status, `GET manifest ${ref}`).toBe(200)
      expect(res.bytes.toString()).toBe(m.body)
      expect(res.headers.get('docker-content-digest')).toBe(m.digest)
      expect(res.headers.get('content-type')).toBe(m.mediaType)
      expect(sha256(res.bytes)).toBe(m.digest)
    }
  }
  for (const blob of [pushed.config, ...pushed.layers]) {
    const head = await fetch(`${base}/v2/${pushed.repo}/blobs/${blob.digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(blob.bytes.length))
    const res = await getBytes(`${base}/v2/${pushed.repo}/blobs/${blob.digest}`)
    expect(res.status).toBe(200)
    expect(sha256(res.bytes)).toBe(blob.digest)
  }
  const tags = (await (await fetch(`${base}/v2/${pushed.repo}/tags/list`)).json()) as { tags: string[] }
  expect([...tags.tags].sort()).toEqual(['docker', 'index', 'list', 'oci'])
  const catalog = (await (await fetch(`${base}/v2/_catalog`)).json()) as { repositories: string[] }
  expect(catalog.repositories).toContain(pushed.repo)
}

