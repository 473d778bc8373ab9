// What the web UI tests and the screenshot script put into a registry: a multi-platform image (an
// OCI layout pushed with skopeo) whose config and annotations hold hostile strings, a signature and
// an SBOM attached with @sigstore/oci, a model artifact, and many repositories or tags written
// straight into distribution's layout (the way a registry:2 folder would hold them).
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'

const run = promisify(execFile)

export const CHROMIUM = '/usr/bin/chromium'
export const XSS_LABEL = '<script>document.title="pwned-label"</script>'
export const XSS_ANNOTATION = '"><img src=x onerror="document.title=\'pwned-annotation\'">'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
export const SBOM = 'application/spdx+json'

export const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`

function put(dir, bytes) {
  const digest = sha256(bytes)
  writeFileSync(join(dir, 'blobs/sha256', digest.slice(7)), bytes)
  return digest
}

/**
 * An OCI layout holding one tag: an index over linux/amd64 and linux/arm64 images, each with two
 * gzip layers and a config with entrypoint, env, labels, ports and history.
 */
export function writeAppLayout(dir, tag, { labels = {}, annotations = {}, seed = 'app' } = {}) {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const children = ['amd64', 'arm64'].map((architecture, a) => {
    const contents = [randomBytes(180_000 + a * 20_000), Buffer.from(`${seed} ${architecture} application files\n`.repeat(2000))]
    const layers = contents.map((c) => gzipSync(c, { level: 1 }))
    const config = Buffer.from(JSON.stringify({
      architecture, os: 'linux', created: new Date(Date.now() - 3 * 86400_000).toISOString(),
      config: {
        Entrypoint: ['/usr/bin/app'], Cmd: ['--listen', ':8080'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'APP_MODE=production'],
        ExposedPorts: { '8080/tcp': {} }, WorkingDir: '/srv', User: 'app',
        Labels: { 'org.opencontainers.image.source': 'https://example.com/acme/app', 'org.opencontainers.image.version': tag, ...labels },
      },
      rootfs: { type: 'layers', diff_ids: contents.map(sha256) },
      history: [
        { created: '2026-11-01T10:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:base.tar in / ' },
        { created: '2026-11-01T10:00:05Z', created_by: 'COPY ./dist /srv # buildkit' },
        { created: '2026-11-01T10:00:06Z', created_by: 'ENTRYPOINT ["/usr/bin/app"]', empty_layer: true },
      ],
    }))
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(dir, config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(dir, l), size: l.length })),
      annotations: { 'org.opencontainers.image.created': '2026-11-01T10:00:06Z', ...annotations },
    }))
    return { mediaType: OCI_MANIFEST, digest: put(dir, manifest), size: manifest.length, platform: { architecture, os: 'linux' } }
  })
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children, annotations: { 'org.opencontainers.image.description': 'The acme app', ...annotations } }))
  const indexDigest = put(dir, index)
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: OCI_INDEX, digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }))
  return { dir, tag, digest: indexDigest, children: children.map((c) => c.digest) }
}

/** A model file pushed as an OCI artifact (artifactType, an empty config, a titled layer). */
export function writeArtifactLayout(dir, tag) {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true })
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const empty = Buffer.from('{}')
  const weights = randomBytes(300_000)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.model.v1',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: put(dir, empty), size: empty.length },
    layers: [{ mediaType: 'application/vnd.example.model.weights.v1', digest: put(dir, weights), size: weights.length, annotations: { 'org.opencontainers.image.title': 'model.safetensors' } }],
  }))
  const digest = put(dir, manifest)
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] }))
  return { dir, tag, digest }
}

/** skopeo copy of an OCI layout into the registry (`creds` "user:password" or undefined). */
export async function skopeoCopy(layout, host, ref, creds, home) {
  const args = ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', ...(creds ? ['--dest-creds', creds] : []), `oci:${layout.dir}:${layout.tag}`, `docker://${host}/${ref}`]
  await run('skopeo', args, { env: { ...process.env, HOME: home, REGISTRY_AUTH_FILE: join(home, 'auth.json') }, timeout: 120_000 })
}

/** A signature bundle and an SBOM attached to `digest` with @sigstore/oci, as cosign-style tools do. */
export async function attachSignature(host, repo, digest, credentials) {
  const { attachArtifactToImage } = await import('@sigstore/oci')
  const signature = await attachArtifactToImage({
    imageName: `${host}/${repo}`, imageDigest: digest, credentials,
    artifact: Buffer.from(JSON.stringify({ mediaType: BUNDLE, verificationMaterial: {}, messageSignature: { signature: 'c2lnbmF0dXJl' } })),
    mediaType: BUNDLE, annotations: { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' },
  })
  const sbom = await attachArtifactToImage({
    imageName: `${host}/${repo}`, imageDigest: digest, credentials,
    artifact: Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: repo })), mediaType: SBOM,
  })
  return { signature: signature.digest, sbom: sbom.digest }
}

const V2 = 'docker/registry/v2'

/**
 * Writes `names` as repositories into a filesystem root, straight into distribution's layout:
 * each links the blobs of one small image and tags it `tags` times (tag i pushed i minutes ago).
 * With `indexed`, also their catalog index markers (src/registry/catalog-index.ts), as enlil
 * writes them: without, the store is one written before the index (walked, then indexed).
 * Returns the image's manifest digest.
 */
export function seedRepositories(root, names, tags = ['latest'], { indexed = false } = {}) {
  const blob = (bytes) => {
    const digest = sha256(bytes)
    const dir = join(root, V2, 'blobs/sha256', digest.slice(7, 9), digest.slice(7))
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'data'), bytes)
    return digest
  }
  const layer = Buffer.from(gzipSync(Buffer.from('seeded layer\n'.repeat(5000))))
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } }))
  const configDigest = blob(config)
  const layerDigest = blob(layer)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
  }))
  const manifestDigest = blob(manifest)
  const link = (path, digest) => {
    mkdirSync(path, { recursive: true })
    writeFileSync(join(path, 'link'), digest)
  }
  const now = Date.now() / 1000
  for (const name of names) {
    const repo = join(root, V2, 'repositories', name)
    // The layer's link only (not the config's): the fewest files that make a sized repository.
    link(join(repo, '_layers/sha256', layerDigest.slice(7)), layerDigest)
    link(join(repo, '_manifests/revisions/sha256', manifestDigest.slice(7)), manifestDigest)
    tags.forEach((tag, i) => {
      const current = join(repo, '_manifests/tags', tag, 'current')
      link(current, manifestDigest)
      if (i > 0) utimesSync(join(current, 'link'), now - i * 60, now - i * 60)
    })
  }
  if (indexed) {
    mkdirSync(join(root, V2, '_enlil/catalog'), { recursive: true })
    for (const name of names) writeFileSync(join(root, V2, '_enlil/catalog', name.replaceAll('/', '.~')), '')
    writeFileSync(join(root, V2, '_enlil/catalog-built'), '{}')
  }
  return manifestDigest
}

/** A scratch folder for many small files: memory-backed when the machine has /dev/shm (10,000 repositories are ~80,000 files and folders). */
export function scratchDir(prefix) {
  return mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `enlil-${prefix}-`))
}

export const chromiumInstalled = () => existsSync(CHROMIUM)

/** One headless Chromium for a whole test file or script; nothing is downloaded. */
export async function launchBrowser(userDataDir) {
  const puppeteer = (await import('puppeteer-core')).default
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  })
}

/** The `dur` of each Server-Timing metric, by name. */
export function serverTiming(header) {
  return Object.fromEntries((header ?? '').split(',').map((part) => {
    const [name, ...params] = part.trim().split(';')
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith('dur='))
    return [name, dur ? Number(dur.slice(4)) : NaN]
  }))
}
