import { describe, expect, it } from 'vitest'
import { parseEndpoint } from '../oci/endpoints.js'
import { accessFor } from './scope.js'

const at = (path: string, query = '') => parseEndpoint(path, query)

describe('accessFor', () => {
  it('maps methods to actions, as distribution does', () => {
    expect(accessFor('GET', at('/v2/'))).toEqual([])
    expect(accessFor('HEAD', at('/v2/a/b/blobs/sha256:x'))).toEqual([{ type: 'repository', name: 'a/b', actions: ['pull'] }])
    expect(accessFor('PATCH', at('/v2/a/blobs/uploads/u'))).toEqual([{ type: 'repository', name: 'a', actions: ['pull', 'push'] }])
    expect(accessFor('DELETE', at('/v2/a/manifests/t'))).toEqual([{ type: 'repository', name: 'a', actions: ['delete'] }])
    expect(accessFor('GET', at('/v2/_catalog'))).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }])
  })

  it('asks pull on the source of a mount, decoded once as clients send it (docker encodes its slashes)', () => {
    for (const query of ['mount=sha256:x&from=src/repo', 'mount=sha256%3Ax&from=src%2Frepo']) {
      expect(accessFor('POST', at('/v2/dst/blobs/uploads/', query))).toEqual([
        { type: 'repository', name: 'dst', actions: ['pull', 'push'] },
        { type: 'repository', name: 'src/repo', actions: ['pull'] },
      ])
    }
  })

  it('asks only for the target of a mount without from', () => {
    expect(accessFor('POST', at('/v2/dst/blobs/uploads/', 'mount=sha256:x'))).toEqual([{ type: 'repository', name: 'dst', actions: ['pull', 'push'] }])
  })
})
