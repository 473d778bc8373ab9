/** @module Manifest routes (spec: end-3 GET/HEAD, end-7 PUT, end-9 DELETE). */
import { Hono } from 'hono'
import { RegistryError } from '../../oci/errors.js'
import { lookupReference, parseReference } from '../../oci/names.js'
import type { AppEnv } from '../env.js'
import { readCapped } from '../body.js'
import { absolute, API_VERSION_HEADER, requireDeleteEnabled, type RouteDeps } from './deps.js'
import { endpointOf } from '../endpoint.js'
import { publishEvent } from '../events.js'

export function manifestRoutes(deps: RouteDeps) {
  const { manifests } = deps.registry
  return new Hono<AppEnv>()
    .get('/:name{.+}/manifests/:reference', async (c) => {
      const { name, reference } = endpointOf(c, 'manifest')
      const ref = lookupReference(reference, name)
      const manifest = await manifests.get(name, ref)
      if (!manifest) {
        const what = ref.kind === 'tag' ? `tag ${ref.tag}` : `manifest ${ref.digest.value}`
        throw new RegistryError('MANIFEST_UNKNOWN', `${what} is not in repository ${name}`, ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest.value })
      }
      const headers = {
        ...API_VERSION_HEADER,
        'Content-Type': manifest.mediaType,
        'Content-Length': String(manifest.bytes.length),
        'Docker-Content-Digest': manifest.digest.value,
        ETag: `"${manifest.digest.value}"`,
        ...(manifest.warning ? { Warning: manifest.warning } : {}),
      }
      if (c.req.method === 'HEAD') return c.body(null, 200, headers)
      publishEvent(c, deps, 'pull', 'manifests', {
        mediaType: manifest.mediaType, size: manifest.bytes.length, digest: manifest.digest.value, repository: name, ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
      })
      return c.body(new Uint8Array(manifest.bytes.buffer as ArrayBuffer, manifest.bytes.byteOffset, manifest.bytes.length), 200, headers)
    })
    .put('/:name{.+}/manifests/:reference', async (c) => {
      const { name, reference } = endpointOf(c, 'manifest')
      const ref = parseReference(reference)
      const bytes = await readCapped(c, deps.manifestMaxSize)
      const result = await manifests.put(name, ref, bytes, c.req.header('content-type'))
      publishEvent(c, deps, 'push', 'manifests', {
        mediaType: result.mediaType, size: bytes.length, digest: result.digest.value, repository: name, ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
      })
      return c.body(null, 201, {
        ...API_VERSION_HEADER,
        Location: absolute(c, deps, `/v2/${name}/manifests/${result.digest.value}`),
        'Docker-Content-Digest': result.digest.value,
        'Content-Length': '0',
        ...(result.subject ? { 'OCI-Subject': result.subject.value } : {}),
      })
    })
    .delete('/:name{.+}/manifests/:reference', async (c) => {
      requireDeleteEnabled(deps)
      const { name, reference } = endpointOf(c, 'manifest')
      const ref = lookupReference(reference, name)
      await manifests.delete(name, ref)
      publishEvent(c, deps, 'delete', 'manifests', { repository: name, ...(ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest.value }) })
      return c.body(null, 202, { ...API_VERSION_HEADER, 'Content-Length': '0' })
    })
}
