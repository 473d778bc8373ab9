import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../config/load.js'
import { createRouter, type MirrorUpstream, retentionNamesRepository } from './routes.js'
import { parseChallenge, type UpstreamClient } from './upstream.js'

const client = (name: string) => ({ name }) as UpstreamClient
const upstream = (prefix: string, more: Partial<MirrorUpstream> = {}): MirrorUpstream => ({ prefix, client: client(prefix), ttlMs: 1000, timeoutMs: 1000, registryMirror: false, library: false, ...more })

describe('which upstream answers for a name', () => {
  const local = new Set(['team/app'])
  const router = createRouter([upstream('hub', { library: true, registryMirror: true }), upstream('ghcr')], async (n) => local.has(n))

  it('maps a prefix to the upstream, adding library/ to Docker Hub\'s single names', async () => {
    expect(await router.resolve('hub/alpine')).toMatchObject({ remote: 'library/alpine', store: 'hub/library/alpine' })
    expect(await router.resolve('hub/library/alpine')).toMatchObject({ remote: 'library/alpine', store: 'hub/library/alpine' })
    expect(await router.resolve('ghcr/owner/image')).toMatchObject({ remote: 'owner/image', store: 'ghcr/owner/image' })
    expect(await router.resolve('ghcr/single')).toMatchObject({ remote: 'single', store: 'ghcr/single' })
  })

  it('answers docker\'s registry-mirrors names from the marked upstream, unless pushed here', async () => {
    expect(await router.resolve('library/busybox')).toMatchObject({ remote: 'library/busybox', store: 'hub/library/busybox', fallback: true })
    expect(await router.resolve('hub/busybox')).toMatchObject({ fallback: false })
    expect(await router.resolve('team/app')).toBeUndefined()
    expect(router.mirroredBy('library/busybox')).toBeUndefined()
    expect(router.mirroredBy('hub/x')?.prefix).toBe('hub')
    expect(router.isCopy('hub/library/busybox')).toBe(true)
    expect(router.isCopy('team/app')).toBe(false)
  })

  it('makes everything a mirror in proxy mode (no prefix)', async () => {
    const whole = createRouter([upstream('', { library: true })], async () => true)
    expect(await whole.resolve('busybox')).toMatchObject({ remote: 'library/busybox', store: 'library/busybox' })
    expect(whole.mirroredBy('anything/at/all')?.prefix).toBe('')
  })
})

describe('retention and cached repositories', () => {
  it('leaves a copy to eviction unless a policy names its prefix; every policy applies to pushed repositories and in proxy mode', () => {
    const names = retentionNamesRepository([upstream('hub'), upstream('mirrors/ghcr')])
    for (const pattern of ['/.+/', '*/*', '*/library/*', '/(hub|x)\\/.*/']) expect(names(pattern, 'hub/library/busybox'), pattern).toBe(false)
    for (const pattern of ['hub/library/*', '/^hub\\/.+$/', '/hub/.*/']) expect(names(pattern, 'hub/library/busybox'), pattern).toBe(true)
    expect(names('mirrors/ghcr/*/*', 'mirrors/ghcr/owner/image')).toBe(true)
    expect(names('mirrors/*/*/*', 'mirrors/ghcr/owner/image')).toBe(false)
    expect(names('/.+/', 'team/app')).toBe(true)
    expect(retentionNamesRepository([upstream('')])('/.+/', 'library/busybox')).toBe(true)
  })
})

describe('mirror configuration', () => {
  it('takes distribution\'s REGISTRY_PROXY_* as proxy mode', () => {
    const config = loadConfig({ REGISTRY_PROXY_REMOTEURL: 'https://registry-1.docker.io', REGISTRY_PROXY_USERNAME: 'u', REGISTRY_PROXY_PASSWORD: 'p', REGISTRY_PROXY_TTL: '168h' })
    expect(config.proxy).toEqual({ remoteurl: 'https://registry-1.docker.io', username: 'u', password: 'p', ttl: 168 * 3600_000 })
  })

  it('reads an upstream\'s account from the variables usernameenv/passwordenv name, and says which one is missing without its value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enlil-mirror-config-'))
    const file = join(dir, 'config.yml')
    writeFileSync(file, 'mirror:\n  upstreams:\n    - { prefix: ghcr, url: https://ghcr.io, usernameenv: GHCR_USER, passwordenv: GHCR_TOKEN }\n')
    try {
      const config = loadConfig({ GHCR_USER: 'octocat', GHCR_TOKEN: 'ghp_secret' }, file)
      expect(config.mirror.upstreams[0]).toMatchObject({ username: 'octocat', password: 'ghp_secret' })
      const missing = (() => { try { loadConfig({ GHCR_USER: 'octocat', GHCR_TOKEN: '' }, file) } catch (err) { return (err as Error).message } })()
      expect(missing).toMatch(/mirror\.upstreams\.0\.passwordenv: the variable GHCR_TOKEN is not set/)
      expect(missing).not.toMatch(/octocat/)
      writeFileSync(file, 'mirror:\n  upstreams:\n    - { prefix: ghcr, url: https://ghcr.io, password: inline, passwordenv: GHCR_TOKEN }\n    - { prefix: quay, url: https://quay.io, usernameenv: "not a name" }\n')
      const refused = (() => { try { loadConfig({ GHCR_TOKEN: 't' }, file) } catch (err) { return (err as Error).message } })()
      expect(refused).toMatch(/mirror\.upstreams\.0\.passwordenv: give the password once/)
      expect(refused).toMatch(/mirror\.upstreams\.1\.usernameenv: expected the name of an environment variable/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses overlapping prefixes, two registry-mirrors upstreams, and proxy mode beside prefixes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enlil-mirror-config-'))
    const file = join(dir, 'config.yml')
    writeFileSync(file, [
      'mirror:',
      '  upstreams:',
      '    - { prefix: hub, url: https://docker.io, registrymirror: true }',
      '    - { prefix: hub/more, url: https://quay.io, registrymirror: true }',
      '',
    ].join('\n'))
    try {
      expect(() => loadConfig({}, file)).toThrow(/prefix hub overlaps the prefix hub\/more[\s\S]*only one upstream can answer docker's registry-mirrors/)
      expect(() => loadConfig({ REGISTRY_PROXY_REMOTEURL: 'https://quay.io' }, file)).toThrow(/proxy.remoteurl makes the whole registry a mirror/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('upstream challenges', () => {
  it('reads scheme and parameters, quoted or not', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
    })
    expect(parseChallenge('Basic realm=upstream')).toEqual({ scheme: 'basic', params: { realm: 'upstream' } })
    expect(parseChallenge(undefined)).toBeUndefined()
  })
})
