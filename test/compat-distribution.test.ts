/**
 * The filesystem layout is distribution's: a folder Debian's docker-registry (distribution 2.8) filled
 * is served by enlil unchanged, and the other way round.
 */
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  getBytes, imageManifest, OCI_INDEX, OCI_MANIFEST, pushBlobChunked, putManifest, randomBlob, sha256, type Blob,
} from './support/oci-client.js'
import { DOCKER_REGISTRY, removeDir, requirePart, type Running, startDistribution, startEnlil, tempDir } from './support/processes.js'

const available = requirePart(existsSync(DOCKER_REGISTRY), 'docker-registry (distribution 2.8)', 'apt-get install docker-registry')

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'

interface Pushed {
  repo: string
  config: Blob
  layers: Blob[]
  manifests: { tag: string; digest: string; body: string; mediaType: string }[]
}

/** Pushes an OCI image, a Docker schema 2 image and an index over both, with tags. */
async function pushImages(base: string, repo: string): Promise<Pushed> {
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
async function expectServed(base: string, pushed: Pushed): Promise<void> {
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

describe.skipIf(!available)('storage layout compatible with distribution 2.8', () => {
  const dirs: string[] = []
  const running: Running[] = []
  let configDir: string
  beforeAll(() => {
    configDir = tempDir('compat-config')
    dirs.push(configDir)
  })
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()))
    dirs.forEach(removeDir)
  })
  const track = (r: Running) => (running.push(r), r)

  it('enlil serves a folder that docker-registry filled', async () => {
    const root = tempDir('compat-a')
    dirs.push(root)
    const distribution = track(await startDistribution(root, configDir))
    const pushed = await pushImages(distribution.url, 'compat/from-distribution')
    await distribution.stop()

    const enlil = track(await startEnlil(root))
    await expectServed(enlil.url, pushed)
    // And keeps working on it: a new tag on the same content, a delete by tag.
    await putManifest(enlil.url, pushed.repo, 'again', pushed.manifests[0]!.body, OCI_MANIFEST)
    expect((await fetch(`${enlil.url}/v2/${pushed.repo}/manifests/again`, { method: 'DELETE' })).status).toBe(202)
    await enlil.stop()
  })

  it('docker-registry serves a folder that enlil filled', async () => {
    const root = tempDir('compat-b')
    dirs.push(root)
    const enlil = track(await startEnlil(root))
    const pushed = await pushImages(enlil.url, 'compat/from-enlil')
    // A cross-repository mount is a link too.
    const mount = await fetch(`${enlil.url}/v2/compat/mounted/blobs/uploads/?mount=${pushed.layers[0]!.digest}&from=${pushed.repo}`, { method: 'POST' })
    expect(mount.status).toBe(201)
    await enlil.stop()

    const distribution = track(await startDistribution(root, configDir))
    await expectServed(distribution.url, pushed)
    const mounted = await fetch(`${distribution.url}/v2/compat/mounted/blobs/${pushed.layers[0]!.digest}`, { method: 'HEAD' })
    expect(mounted.status).toBe(200)
    await distribution.stop()
  })
})
