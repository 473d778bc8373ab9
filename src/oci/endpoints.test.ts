import { describe, expect, it } from 'vitest'
import { parseEndpoint } from './endpoints.js'
import { isRegistryError } from './errors.js'

const codeOf = (f: () => unknown) => {
  try {
    f()
    return 'none'
  } catch (err) {
    return isRegistryError(err) ? err.code : 'not a RegistryError'
  }
}

describe('parseEndpoint', () => {
  it('reads every endpoint of the spec, names with slashes and route words inside them', () => {
    expect(parseEndpoint('/v2/')).toEqual({ kind: 'base' })
    expect(parseEndpoint('/v2')).toEqual({ kind: 'base' })
    expect(parseEndpoint('/v2/_catalog')).toEqual({ kind: 'catalog' })
    expect(parseEndpoint('/v2/a/b/manifests/latest')).toEqual({ kind: 'manifest', name: 'a/b', reference: 'latest' })
    expect(parseEndpoint('/v2/a/manifests/b/manifests/v1')).toEqual({ kind: 'manifest', name: 'a/manifests/b', reference: 'v1' })
    expect(parseEndpoint('/v2/x/blobs/sha256%3Aab')).toEqual({ kind: 'blob', name: 'x', digest: 'sha256:ab' })
    expect(parseEndpoint('/v2/x/blobs/uploads/')).toEqual({ kind: 'upload', name: 'x', session: '' })
    expect(parseEndpoint('/v2/x/blobs/uploads/abc')).toEqual({ kind: 'upload', name: 'x', session: 'abc' })
    expect(parseEndpoint('/v2/x/blobs/uploads/', 'mount=sha256:1&from=a%2Fb')).toEqual({ kind: 'upload', name: 'x', session: '', mount: 'sha256:1', from: 'a/b' })
    expect(parseEndpoint('/v2/blobs/tags/list')).toEqual({ kind: 'tags', name: 'blobs' })
    expect(parseEndpoint('/v2/r/referrers/sha256:1')).toEqual({ kind: 'referrers', name: 'r', digest: 'sha256:1' })
    expect(parseEndpoint('/healthz')).toEqual({ kind: 'other' })
    expect(parseEndpoint('/v2/a/b')).toEqual({ kind: 'other' })
  })

  it('refuses percent-encoded names and route words instead of decoding them into another name', () => {
    for (const path of [
      '/v2/public/secret%2fx/manifests/latest', '/v2/alice/a%2Fdeep/blobs/uploads/', '/v2/public/%70/manifests/v1',
      '/v2/a/%6danifests/v1', '/v2/a/tags/%6cist', '/v2/%5Fcatalog', '/v2/a/%74ags/list', '/v2/a%2fb/referrers/sha256:1',
    ]) expect(codeOf(() => parseEndpoint(path)), path).toBe('NAME_INVALID')
  })

  it('refuses dot segments, raw or encoded, and backslashes, wherever they are', () => {
    for (const path of [
      '/v2/bad/./victim/tags/list', '/v2/bad/%2e/victim/tags/list', '/v2/bad/x/../victim/tags/list', '/v2/bad/x/%2e%2E/victim/tags/list',
      '/v2/bad/x/.%2e/victim/tags/list', '/v2/../v2/bad/victim/tags/list', '/auth/../v2/x/tags/list', '/v2/a/manifests/..', '/v2/a/manifests/%2e%2e',
      '/v2/bad\\victim/tags/list',
    ]) expect(codeOf(() => parseEndpoint(path)), path).toBe('NAME_INVALID')
  })

  it('refuses a mount source outside the grammar', () => {
    expect(codeOf(() => parseEndpoint('/v2/x/blobs/uploads/', 'mount=sha256:1&from=A/B'))).toBe('NAME_INVALID')
    expect(codeOf(() => parseEndpoint('/v2/x/blobs/uploads/', 'mount=sha256:1&from=a/../b'))).toBe('NAME_INVALID')
  })
})
