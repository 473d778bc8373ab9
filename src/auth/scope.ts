/** @module The access a request needs, from its method and endpoint: pure, like distribution's appendAccessRecords. */
import type { Endpoint } from '../oci/endpoints.js'
import type { Access } from './authorizer.js'

/**
 * GET/HEAD → pull; POST/PUT/PATCH → pull+push (a mount reads `from` too); DELETE → delete;
 * the catalog → registry:catalog:*; the base endpoint needs no access beyond authentication.
 * The endpoint is the one parsed from the raw path (oci/endpoints.ts): the name decided here is
 * the name the route serves.
 */
export function accessFor(method: string, endpoint: Endpoint): Access[] {
  if (endpoint.kind === 'catalog') return [{ type: 'registry', name: 'catalog', actions: ['*'] }]
  if (endpoint.kind === 'base' || endpoint.kind === 'other') return []
  const name = endpoint.name
  switch (method) {
    case 'GET':
    case 'HEAD':
      return [{ type: 'repository', name, actions: ['pull'] }]
    case 'DELETE':
      return [{ type: 'repository', name, actions: ['delete'] }]
    default: {
      const access: Access[] = [{ type: 'repository', name, actions: ['pull', 'push'] }]
      if (method === 'POST' && endpoint.kind === 'upload' && endpoint.mount !== undefined && endpoint.from !== undefined && endpoint.from !== name) {
        access.push({ type: 'repository', name: endpoint.from, actions: ['pull'] })
      }
      return access
    }
  }
}
