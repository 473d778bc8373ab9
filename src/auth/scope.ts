/** @module The access a request needs, from its method and path: pure, like distribution's appendAccessRecords. */
import type { Access } from './authorizer.js'

const REPOSITORY_ROUTE = /^\/v2\/(.+?)\/(?:blobs|manifests|tags|referrers)(?:\/|$)/

/**
 * GET/HEAD → pull; POST/PUT/PATCH → pull+push (a mount reads `from` too); DELETE → delete;
 * the catalog → registry:catalog:*; the base endpoint needs no access beyond authentication.
 */
export function accessFor(method: string, path: string, query: URLSearchParams): Access[] {
  if (path === '/v2/_catalog') return [{ type: 'registry', name: 'catalog', actions: ['*'] }]
  const m = REPOSITORY_ROUTE.exec(path)
  if (!m) return []
  const name = m[1]!
  switch (method) {
    case 'GET':
    case 'HEAD':
      return [{ type: 'repository', name, actions: ['pull'] }]
    case 'DELETE':
      return [{ type: 'repository', name, actions: ['delete'] }]
    default: {
      const access: Access[] = [{ type: 'repository', name, actions: ['pull', 'push'] }]
      const from = query.get('from')
      if (method === 'POST' && query.has('mount') && from && from !== name) access.push({ type: 'repository', name: from, actions: ['pull'] })
      return access
    }
  }
}
