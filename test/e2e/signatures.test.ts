/**
 * Signatures and attachments the way cosign-style tools attach them, in every cell of the matrix:
 * npm's @sigstore/oci attaches artifacts with a `subject` to an image; they are listed back through
 * `GET /v2/<name>/referrers/<digest>`, with and without the `artifactType` filter. Through a proxy
 * that hides the referrers API, the same library falls back to the `sha256-<hex>` tag schema, and
 * enlil serves that index too.
 */
import { createHash } from 'node:crypto'
import { createServer, request, type Server } from 'node:http'
import { attachArtifactToImage, type Credentials } from '@sigstore/oci'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistryClient, scopes } from './client.js'
import { type Registry, runnableCells, startRegistry } from './registry.js'

const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
const SBOM = 'application/spdx+json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

interface Index { mediaType: string; manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[] }

/** Pushes a one-layer image and returns its manifest digest. */
async function pushImage(client: RegistryClient, repo: string, tag: string): Promise<string> {
  const scope = scopes(repo).push
  const blobs = [Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), Buffer.from(`layer of ${repo}:${tag}`)]
  for (const blob of blobs) {
    const res = await client.fetch(`/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', scope, body: blob, headers: { 'Content-Type': 'application/octet-stream' } })
    expect(res.status).toBe(201)
  }
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(blobs[0]!), size: blobs[0]!.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(blobs[1]!), size: blobs[1]!.length }],
  })
  const res = await client.fetch(`/v2/${repo}/manifests/${tag}`, { method: 'PUT', scope, body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })
  expect(res.status).toBe(201)
  return res.headers.get('docker-content-digest')!
}

/** A reverse proxy to enlil that answers 404 for the referrers API, as a registry without it does. */
async function proxyWithoutReferrers(target: string): Promise<{ host: string; server: Server }> {
  const upstream = new URL(target)
  const server = createServer((req, res) => {
    if (/^\/v2\/.+\/referrers\//.test(req.url ?? '')) {
      res.writeHead(404, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no referrers API here' }] }))
      return
    }
    // The Host header is kept, so enlil's Locations and token realm point back at the proxy.
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, server }
}

describe('signatures and attachments (@sigstore/oci)', () => {
  describe.each(runnableCells())('$store, auth $auth', (cell) => {
    let registry: Registry
    let client: RegistryClient
    let credentials: Credentials
    beforeAll(async () => {
      registry = await startRegistry(cell, 'e2e-sig')
      client = new RegistryClient(registry.url, registry.credentials)
      // Without auth the library must not sign in (it would find no challenge): no credentials.
      credentials = (registry.credentials ? { username: registry.credentials.user, password: registry.credentials.password } : undefined) as Credentials
    })
    afterAll(() => registry?.stop())

    const referrers = async (repo: string, digest: string, query = '') => {
      const res = await client.fetch(`/v2/${repo}/referrers/${digest}${query}`, { scope: scopes(repo).pull })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe(OCI_INDEX)
      return { index: (await res.json()) as Index, filtered: res.headers.get('oci-filters-applied') }
    }

    it('attaches a signature and an SBOM through the referrers API and lists them back', async () => {
      const image = await pushImage(client, 'signed/app', 'v1')
      const signature = await attachArtifactToImage({
        imageName: `${registry.host}/signed/app`, imageDigest: image, credentials,
        artifact: Buffer.from(JSON.stringify({ mediaType: BUNDLE, verificationMaterial: {}, messageSignature: { signature: 'c2ln' } })),
        mediaType: BUNDLE, annotations: { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' },
      })
      const sbom = await attachArtifactToImage({
        imageName: `${registry.host}/signed/app`, imageDigest: image, credentials,
        artifact: Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'app' })), mediaType: SBOM,
      })
      const all = await referrers('signed/app', image)
      expect(all.index.manifests.map((m) => m.digest).sort()).toEqual([signature.digest, sbom.digest].sort())
      const bundle = all.index.manifests.find((m) => m.digest === signature.digest)!
      expect(bundle.artifactType).toBe(BUNDLE)
      expect(bundle.annotations?.['dev.sigstore.bundle.predicateType']).toBe('https://slsa.dev/provenance/v1')
      const onlySbom = await referrers('signed/app', image, `?artifactType=${encodeURIComponent(SBOM)}`)
      expect(onlySbom.index.manifests.map((m) => m.digest)).toEqual([sbom.digest])
      expect(onlySbom.filtered).toBe('artifactType')
      // The registry supports referrers, so no fallback tag was made.
      const tags = await client.fetch('/v2/signed/app/tags/list', { scope: scopes('signed/app').pull })
      expect(((await tags.json()) as { tags: string[] }).tags).toEqual(['v1'])
      // The signature manifest itself is served with its subject.
      const manifest = await client.fetch(`/v2/signed/app/manifests/${signature.digest}`, { scope: scopes('signed/app').pull, headers: { Accept: OCI_MANIFEST } })
      expect(((await manifest.json()) as { subject: { digest: string } }).subject.digest).toBe(image)
    })

    it('falls back to the sha256-<hex> tag when the referrers API is hidden, and enlil serves that index', async () => {
      const image = await pushImage(client, 'signed/legacy', 'v1')
      const proxy = await proxyWithoutReferrers(registry.url)
      try {
        const first = await attachArtifactToImage({
          imageName: `${proxy.host}/signed/legacy`, imageDigest: image, credentials,
          artifact: Buffer.from('{"signature":"one"}'), mediaType: BUNDLE,
        })
        const second = await attachArtifactToImage({
          imageName: `${proxy.host}/signed/legacy`, imageDigest: image, credentials,
          artifact: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), mediaType: SBOM,
        })
        const tag = image.replace(':', '-')
        const tags = await client.fetch('/v2/signed/legacy/tags/list', { scope: scopes('signed/legacy').pull })
        expect(((await tags.json()) as { tags: string[] }).tags.sort()).toEqual([tag, 'v1'].sort())
        const res = await client.fetch(`/v2/signed/legacy/manifests/${tag}`, { scope: scopes('signed/legacy').pull, headers: { Accept: OCI_INDEX } })
        expect(res.headers.get('content-type')).toBe(OCI_INDEX)
        const index = (await res.json()) as Index
        expect(index.manifests.map((m) => [m.digest, m.artifactType])).toEqual([[first.digest, BUNDLE], [second.digest, SBOM]])
        // The artifacts carry a subject, so the referrers API lists them as well.
        const listed = await referrers('signed/legacy', image)
        expect(listed.index.manifests.map((m) => m.digest).sort()).toEqual([first.digest, second.digest].sort())
      } finally {
        proxy.server.close()
      }
    })
  })
})
