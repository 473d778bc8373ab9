/** @module Upload routes (spec: end-4a/4b POST, end-5 PATCH, end-6 PUT, end-11 mount, end-13 status, DELETE cancel). */
import { type Context, Hono } from 'hono'
import { type Digest, parseDigest } from '../../oci/digest.js'
import { RegistryError } from '../../oci/errors.js'
import { type UploadSession, uploadRange } from '../../registry/uploads.js'
import type { BlobInfo } from '../../registry/blobs.js'
import type { AppEnv } from '../env.js'
import { hasBody, requestBody } from '../body.js'
import { parseContentRange } from '../headers.js'
import { absolute, API_VERSION_HEADER, type RouteDeps, streamingUpload } from './deps.js'
import { endpointOf } from '../endpoint.js'
import { BLOB_MEDIA_TYPE, publishEvent } from '../events.js'
import { OWNER_PARAM } from '../forwarding.js'

export function uploadRoutes(deps: RouteDeps) {
  const { uploads, blobs } = deps.registry

  /** Names the process holding the upload's live digest, so the next request can be relayed there. */
  const ownerQuery = (c: Context<AppEnv>) => {
    const owner = deps.uploadOwner?.(c)
    return owner ? `?${OWNER_PARAM}=${owner}` : ''
  }

  const sessionHeaders = (c: Context<AppEnv>, s: UploadSession) => ({
    ...API_VERSION_HEADER,
    Location: absolute(c, deps, `/v2/${s.repo}/blobs/uploads/${s.id}${ownerQuery(c)}`),
    Range: uploadRange(s.size),
    'Docker-Upload-UUID': s.id,
    'Content-Length': '0',
  })

  const created = (c: Context<AppEnv>, name: string, blob: BlobInfo, from?: string) => {
    publishEvent(c, deps, from === undefined ? 'push' : 'mount', 'blobs', {
      mediaType: BLOB_MEDIA_TYPE, size: blob.size, digest: blob.digest.value, repository: name, ...(from !== undefined ? { fromRepository: from } : {}),
    })
    return c.body(null, 201, {
      ...API_VERSION_HEADER,
      Location: absolute(c, deps, `/v2/${name}/blobs/${blob.digest.value}`),
      'Docker-Content-Digest': blob.digest.value,
      'Content-Length': '0',
    })
  }

  /** `?digest=` of a PUT or monolithic POST; required on PUT. */
  const digestParam = (c: Context<AppEnv>): Digest | undefined => {
    const value = c.req.query('digest')
    return value === undefined ? undefined : parseDigest(value)
  }

  /** Content-Range of a chunk; its length must match Content-Length when both are given. */
  const chunkStart = (c: Context<AppEnv>): number | undefined => {
    const range = parseContentRange(c.req.header('content-range'))
    if (!range) return undefined
    const length = c.req.header('content-length')
    if (length !== undefined && Number(length) !== range.end - range.start + 1) {
      throw new RegistryError('SIZE_INVALID', `Content-Range ${range.start}-${range.end} is ${range.end - range.start + 1} bytes but Content-Length is ${length}`)
    }
    return range.start
  }

  /** Content-Length, when the client sent one (a chunked body has none). */
  const announcedLength = (c: Context<AppEnv>): number | undefined => {
    const value = c.req.header('content-length')
    return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined
  }

  const session = (c: Context<AppEnv>) => {
    const { name, session: id } = endpointOf(c, 'upload')
    return uploads.get(name, id)
  }

  return new Hono<AppEnv>()
    .post('/:name{.+}/blobs/uploads/', async (c) => {
      const { name, mount, from } = endpointOf(c, 'upload')
      if (mount !== undefined) {
        // spec end-11: mount from `from`, or (automatic content discovery) from a repository the
        // caller may pull, when one has the blob; otherwise fall through to a new session.
        const digest = parseDigest(mount)
        const grant = c.var.grant
        const mounted = await deps.registry.mounts.mount({ to: name, digest, from, mayPull: grant && ((repo) => grant.mayPull?.(repo) ?? false) })
        if (mounted) return created(c, name, mounted.blob, mounted.from)
      }
      const digest = mount === undefined ? digestParam(c) : undefined
      if (digest) {
        const declared = c.req.header('content-length')
        const blob = await streamingUpload(() => uploads.putMonolithic(name, digest, requestBody(c), declared === undefined ? undefined : Number(declared)))
        c.set('bytesIn', blob.size)
        return created(c, name, blob)
      }
      const s = await uploads.start(name)
      return c.body(null, 202, sessionHeaders(c, s))
    })
    .get('/:name{.+}/blobs/uploads/:uuid', async (c) => {
      return c.body(null, 204, sessionHeaders(c, await session(c)))
    })
    .patch('/:name{.+}/blobs/uploads/:uuid', async (c) => {
      const start = chunkStart(c)
      const before = await session(c)
      const s = await streamingUpload(() => uploads.append(before, requestBody(c), start, announcedLength(c)))
      c.set('bytesIn', s.size - before.size)
      return c.body(null, 202, sessionHeaders(c, s))
    })
    .put('/:name{.+}/blobs/uploads/:uuid', async (c) => {
      const digest = digestParam(c)
      if (!digest) throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to finish an upload (PUT ...?digest=sha256:...)')
      const s = await session(c)
      const last = hasBody(c) ? { start: chunkStart(c), body: requestBody(c) } : undefined
      const blob = await (last ? streamingUpload(() => uploads.complete(s, digest, last.body, last.start, announcedLength(c))) : uploads.complete(s, digest))
      if (last) c.set('bytesIn', blob.size - s.size)
      return created(c, s.repo, blob)
    })
    .delete('/:name{.+}/blobs/uploads/:uuid', async (c) => {
      await uploads.cancel(await session(c))
      return c.body(null, 204, { ...API_VERSION_HEADER })
    })
}
