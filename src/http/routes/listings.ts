/** @module Listings: tags (end-8a/8b), referrers (end-12a/12b), catalog. */
import { Hono } from 'hono'
import { parseDigest } from '../../oci/digest.js'
import { RegistryError } from '../../oci/errors.js'
import { OCI_INDEX_MEDIA_TYPE } from '../../oci/manifest.js'
import type { AppEnv } from '../env.js'
import { nextLink, parsePageSize } from '../headers.js'
import { API_VERSION_HEADER, type RouteDeps } from './deps.js'
import { endpointOf } from '../endpoint.js'

const JSON_TYPE = { 'Content-Type': 'application/json; charset=utf-8' }

export function listingRoutes(deps: RouteDeps) {
  const { manifests, catalog } = deps.registry
  return new Hono<AppEnv>()
    .get('/_catalog', async (c) => {
      const n = parsePageSize(c.req.query('n'))
      const last = c.req.query('last')
      // One extra name tells whether a next page exists.
      const names = await catalog.list({ n: n === undefined ? undefined : n + 1, last })
      const page = n === undefined ? names : names.slice(0, n)
      const headers: Record<string, string> = { ...API_VERSION_HEADER, ...JSON_TYPE }
      if (n !== undefined && names.length > n && page.length > 0) headers.Link = nextLink('/v2/_catalog', n, page[page.length - 1]!)
      return c.body(JSON.stringify({ repositories: page }), 200, headers)
    })
    .get('/:name{.+}/tags/list', async (c) => {
      const { name } = endpointOf(c, 'tags')
      const n = parsePageSize(c.req.query('n'))
      const last = c.req.query('last')
      const tags = await manifests.tags(name, { n: n === undefined ? undefined : n + 1, last })
      if (!tags) throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known to this registry`, { name })
      const page = n === undefined ? tags : tags.slice(0, n)
      const headers: Record<string, string> = { ...API_VERSION_HEADER, ...JSON_TYPE }
      if (n !== undefined && tags.length > n && page.length > 0) headers.Link = nextLink(`/v2/${name}/tags/list`, n, page[page.length - 1]!)
      return c.body(JSON.stringify({ name, tags: page }), 200, headers)
    })
    .get('/:name{.+}/referrers/:digest', async (c) => {
      const { name, digest } = endpointOf(c, 'referrers')
      const subject = parseDigest(digest)
      const artifactType = c.req.query('artifactType')
      const result = await manifests.referrers(name, subject, artifactType || undefined)
      const headers: Record<string, string> = { ...API_VERSION_HEADER, 'Content-Type': OCI_INDEX_MEDIA_TYPE }
      if (result.filtered) headers['OCI-Filters-Applied'] = 'artifactType'
      return c.body(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: result.descriptors }), 200, headers)
    })
}
