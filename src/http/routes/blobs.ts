/** @module Blob routes (spec: end-2 GET/HEAD, end-10 DELETE). */
import { Hono } from 'hono'
import { parseDigest } from '../../oci/digest.js'
import { RegistryError } from '../../oci/errors.js'
import type { AppEnv } from '../env.js'
import { sendBytes } from '../body.js'
import { parseRangeHeader } from '../headers.js'
import { API_VERSION_HEADER, requireDeleteEnabled, type RouteDeps } from './deps.js'
import { endpointOf } from '../endpoint.js'
import { BLOB_MEDIA_TYPE, publishEvent } from '../events.js'

export function blobRoutes(deps: RouteDeps) {
  const { blobs } = deps.registry
  return new Hono<AppEnv>()
    .get('/:name{.+}/blobs/:digest', async (c) => {
      const { name, digest: reference } = endpointOf(c, 'blob')
      const digest = parseDigest(reference)
      // A HEAD asks whether to push the blob: a yes keeps it from garbage collection.
      const found = await (c.req.method === 'HEAD' ? blobs.statForReuse(name, digest) : blobs.stat(name, digest))
      if (!found) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest.value} is not in repository ${name}`, { digest: digest.value })
      const headers: Record<string, string> = {
        ...API_VERSION_HEADER,
        'Docker-Content-Digest': digest.value,
        'Content-Type': 'application/octet-stream',
        'Accept-Ranges': 'bytes',
        'Cache-Control': 'max-age=31536000',
        ETag: `"${digest.value}"`,
      }
      // Hono routes HEAD here: answer it before any bytes are opened.
      if (c.req.method === 'HEAD') return c.body(null, 200, { ...headers, 'Content-Length': String(found.size) })

      const range = parseRangeHeader(c.req.header('range'), found.size)
      const body = await blobs.open(digest, range)
      publishEvent(c, deps, 'pull', 'blobs', { mediaType: BLOB_MEDIA_TYPE, size: found.size, digest: digest.value, repository: name })
      if (body.kind === 'redirect') return c.body(null, 307, { ...API_VERSION_HEADER, Location: body.url, 'Docker-Content-Digest': digest.value })
      if (range) {
        headers['Content-Range'] = `bytes ${range.start}-${range.end}/${found.size}`
        headers['Content-Length'] = String(range.end - range.start + 1)
        return sendBytes(c, 206, headers, body)
      }
      headers['Content-Length'] = String(found.size)
      return sendBytes(c, 200, headers, body)
    })
    .delete('/:name{.+}/blobs/:digest', async (c) => {
      requireDeleteEnabled(deps)
      const { name, digest: reference } = endpointOf(c, 'blob')
      const digest = parseDigest(reference)
      const size = deps.registry.quotas ? (await blobs.stat(name, digest))?.size : undefined
      if (!(await blobs.unlink(name, digest))) {
        throw new RegistryError('BLOB_UNKNOWN', `blob ${digest.value} is not in repository ${name}`, { digest: digest.value })
      }
      if (size !== undefined) deps.registry.quotas?.released(name, size)
      publishEvent(c, deps, 'delete', 'blobs', { digest: digest.value, repository: name })
      return c.body(null, 202, { ...API_VERSION_HEADER, 'Content-Length': '0' })
    })
}
