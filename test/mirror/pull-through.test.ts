/**
 * The pull-through cache against real upstreams the test starts: Debian's docker-registry with
 * htpasswd (behind a proxy that counts what is fetched and fails on demand) and an enlil with token
 * auth, both filled with skopeo from an OCI layout built offline. Clients pull through enlil the way
 * users do: skopeo and podman by prefix, a real dockerd by `registry-mirrors`, ctr by hosts.toml.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxAvailable, fileLayer, type Fixtures, writeFixtures } from '../e2e/images.js'
import { DOCKERD, type Dockerd, startDockerd } from '../support/dockerd.js'
import { sha256 } from '../support/oci-client.js'
import { DOCKER_REGISTRY, removeDir, requirePart, ROOT, type Running, startEnlil, tempDir } from '../support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from '../support/s3.js'
import { type CountingProxy, startCountingProxy, startHtpasswdDistribution } from './upstreams.js'

const run = promisify(execFile)
const USER = 'mirror'
const PASSWORD = 'upstream password'
const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'

const available = requirePart(existsSync(DOCKER_REGISTRY), 'Debian\'s docker-registry (an upstream)', 'apt-get install docker-registry')
  && requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')
  && requirePart(busyboxAvailable(), 'a static busybox (the test image)', 'apt-get install busybox-static')
const dockerAvailable = existsSync(DOCKERD) && existsSync('/usr/bin/ctr')
const podmanAvailable = existsSync('/usr/bin/podman')
const s3 = available ? requireS3() : undefined

describe.skipIf(!available)('pull-through cache', () => {
  let work: string
  let fixtures: Fixtures
  let distribution: Running
  let tokenUpstream: Running
  let proxy: CountingProxy
  let mirror: Running
  let mirrorConfig: string
  const mirrorEnv = { TOK_USER: USER, TOK_PASSWORD: PASSWORD }
  /** Extra images with layers of their own (nothing else shares their blobs). */
  const own = ['cut', 'corrupt', 'down', 'evict-a', 'evict-b', 'evict-c', 'wide', 'on-s3']

  const skopeo = (args: string[]) => run('skopeo', args, { env: { ...process.env, HOME: work }, timeout: 120_000, maxBuffer: 16 << 20 }).then((r) => r.stdout)
  const src = (tag: string) => `oci:${fixtures.layout.dir}:${tag}`
  const host = (r: Running) => new URL(r.url).host
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${mirror.url}${path}`, { headers: { Accept: ACCEPT, ...headers } })
  /** What a layout image is: its manifest digest and blob digests. */
  const manifestOf = async (path: string) => {
    const res = await get(path)
    expect(res.status, `${path}: ${res.status}`).toBe(200)
    const bytes = Buffer.from(await res.arrayBuffer())
    const body = JSON.parse(bytes.toString()) as { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] }
    return { digest: `sha256:${sha256(bytes).replace(/^sha256:/, '')}`, blobs: [body.config?.digest, ...(body.layers ?? []).map((l) => l.digest)].filter((d): d is string => Boolean(d)), res }
  }
  const storedBlob = (root: string, digest: string) => existsSync(join(root, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data'))

  beforeAll(async () => {
    work = tempDir('mirror')
    fixtures = await writeFixtures(work)
    for (const tag of own) fixtures.layout.tag(fixtures.layout.image([fileLayer(fixtures.layout, work, tag, randomBytes(300_000))]), tag)
    // Past the 400KiB repository quota of the mirror's config.
    fixtures.layout.tag(fixtures.layout.image([fileLayer(fixtures.layout, work, 'big', randomBytes(600_000))]), 'big')

    mkdirSync(join(work, 'distribution'))
    distribution = await startHtpasswdDistribution(join(work, 'distribution'), USER, PASSWORD)
    const creds = `${USER}:${PASSWORD}`
    const fill = async (target: Running, repos: [string, string][]) => {
      for (const [tag, repo] of repos) await skopeo(['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds, src(tag), `docker://${host(target)}/${repo}`])
    }
    await fill(distribution, [['busybox', 'library/busybox:latest'], ['multi', 'library/multi:1'], ['layers', 'team/layers:1'], ...own.map((t): [string, string] => [t, `own/${t}:1`]), ['big', 'own/big:1']])

    mkdirSync(join(work, 'token'))
    writeFileSync(join(work, 'token/users'), `${USER}:${bcrypt.hashSync(PASSWORD, 8)}\n`)
    tokenUpstream = await startEnlil(join(work, 'token/data'), { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(work, 'token/users'), ENLIL_WORKERS: '1' })
    await fill(tokenUpstream, [['busybox', 'library/busybox:latest'], ['multi', 'library/multi:1']])

    proxy = await startCountingProxy(distribution.url)
    mirrorConfig = join(work, 'mirror.yml')
    const upstream = (prefix: string, url: string, more: string) => `    - { prefix: ${prefix}, url: "${url}", username: ${USER}, password: "${PASSWORD}", library: true, timeout: 10s, ${more} }`
    writeFileSync(mirrorConfig, [
      'mirror:',
      '  upstreams:',
      upstream('hub', proxy.url, 'registrymirror: true, ttl: 1h'),
      upstream('short', proxy.url, 'ttl: 1s'),
      // This one's account comes from the environment (mirrorEnv), as a secret store would give it.
      `    - { prefix: tok, url: "${tokenUpstream.url}", usernameenv: TOK_USER, passwordenv: TOK_PASSWORD, library: true, timeout: 10s, ttl: 1h }`,
      '  maxsize: 400KiB',
      // A catch-all repository quota and retention policy, written for pushed repositories.
      'quotas: { repositories: [{ match: "/.+/", limit: 400KiB }] }',
      'retention:',
      '  - { repositories: "*/*/*", tags: "1", keeplast: 0 }',
      'metrics: { public: true }',
      '',
    ].join('\n'))
    mirror = await startEnlil(join(work, 'mirror'), { ...mirrorEnv, REGISTRY_CONFIG: mirrorConfig, ENLIL_WORKERS: '1', ENLIL_GC_GRACE: '0s' })
  }, 180_000)

  afterAll(async () => {
    if (process.env.MIRROR_DEBUG) console.log(mirror?.output())
    await mirror?.stop()
    await tokenUpstream?.stop()
    await proxy?.close()
    await distribution?.stop()
    if (work) removeDir(work)
  })

  it('skopeo pulls through a prefix (htpasswd upstream, library/ added), then from the store', async () => {
    proxy.reset()
    const out = join(work, 'pulled')
    await skopeo(['copy', '--src-tls-verify=false', `docker://${host(mirror)}/hub/busybox:latest`, `oci:${out}:busybox`])
    const upstreamDigest = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${host(distribution)}/library/busybox:latest`])) as { Digest: string }
    const pulled = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${host(mirror)}/hub/library/busybox:latest`])) as { Digest: string }
    expect(pulled.Digest).toBe(upstreamDigest.Digest)
    expect([...proxy.manifestGets.values()].reduce((a, b) => a + b, 0)).toBe(1)
    const fetched = proxy.blobGets.size
    expect(fetched).toBeGreaterThanOrEqual(2)
    await skopeo(['copy', '--src-tls-verify=false', `docker://${host(mirror)}/hub/busybox:latest`, `oci:${out}:again`])
    expect(proxy.blobGets.size).toBe(fetched)
    expect([...proxy.blobGets.values()].every((n) => n === 1)).toBe(true)
  })

  it.skipIf(!podmanAvailable)('podman pulls a multi-platform index through a token-auth upstream, and docker.io names through registries.conf', async () => {
    const podman = (...args: string[]) => run('podman', ['--root', join(work, 'podman/root'), '--runroot', join(work, 'podman/runroot'), '--storage-driver', 'vfs', ...args], {
      env: { ...process.env, HOME: work, XDG_RUNTIME_DIR: join(work, 'podman/xdg') }, timeout: 120_000,
    }).then((r) => r.stdout)
    mkdirSync(join(work, 'podman/xdg'), { recursive: true })
    try {
      await podman('pull', '--tls-verify=false', `${host(mirror)}/tok/library/multi:1`)
      const index = await manifestOf('/v2/tok/library/multi/manifests/1')
      expect(index.res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json')
      expect(await podman('images', '--format', '{{.Repository}}:{{.Tag}}')).toContain(`${host(mirror)}/tok/library/multi:1`)
      // registries.conf: docker.io names from the mirror's hub/ prefix (no internet here: only enlil can answer).
      writeFileSync(join(work, 'podman/registries.conf'), `[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${host(mirror)}/hub"\ninsecure = true\n`)
      await run('podman', ['--root', join(work, 'podman/root'), '--runroot', join(work, 'podman/runroot'), '--storage-driver', 'vfs', 'pull', 'docker.io/library/busybox:latest'], {
        env: { ...process.env, HOME: work, XDG_RUNTIME_DIR: join(work, 'podman/xdg'), CONTAINERS_REGISTRIES_CONF: join(work, 'podman/registries.conf') }, timeout: 120_000,
      })
      expect(await podman('images', '--format', '{{.Repository}}:{{.Tag}}')).toContain('docker.io/library/busybox:latest')
    } finally {
      await podman('system', 'reset', '--force').catch(() => {})
    }
  })

  it('distribution\'s proxy mode (REGISTRY_PROXY_*): the whole registry mirrors one upstream, and refuses pushes', async () => {
    const instance = await startEnlil(join(work, 'proxy-mode'), {
      REGISTRY_PROXY_REMOTEURL: proxy.url, REGISTRY_PROXY_USERNAME: USER, REGISTRY_PROXY_PASSWORD: PASSWORD, ENLIL_WORKERS: '1',
    })
    try {
      await skopeo(['copy', '--src-tls-verify=false', `docker://${host(instance)}/library/busybox:latest`, `oci:${join(work, 'proxy-mode-pulled')}:busybox`])
      const push = await fetch(`${instance.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
      expect(push.status).toBe(405)
      expect(JSON.stringify(await push.json())).toMatch(/UNSUPPORTED.*this registry mirrors/)
    } finally {
      await instance.stop()
    }
  })

  it('local ACLs decide who pulls through which prefix: anonymous pulls of hub/, nothing of other/', async () => {
    const dir = join(work, 'acl')
    mkdirSync(dir)
    writeFileSync(join(dir, 'htpasswd'), `dev:${bcrypt.hashSync('dev password', 8)}\n`)
    const upstream = (prefix: string) => `{ prefix: ${prefix}, url: "${proxy.url}", username: ${USER}, password: "${PASSWORD}", library: true }`
    writeFileSync(join(dir, 'config.yml'), [
      `mirror: { upstreams: [${upstream('hub')}, ${upstream('other')}] }`,
      `auth: { htpasswd: { realm: enlil, path: ${join(dir, 'htpasswd')} }, acl: [`,
      '  { match: { account: "", name: "hub/*" }, actions: [pull] },',
      '  { match: { account: "", name: "hub/*/*" }, actions: [pull] },',
      '  { match: { account: dev }, actions: ["*"] } ]',
      '}',
      '',
    ].join('\n'))
    const instance = await startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml'), ENLIL_WORKERS: '1' })
    try {
      proxy.reset()
      await skopeo(['copy', '--src-tls-verify=false', '--src-no-creds', `docker://${host(instance)}/hub/busybox:latest`, `oci:${join(dir, 'pulled')}:busybox`])
      const denied = await fetch(`${instance.url}/v2/other/library/busybox/manifests/latest`, { headers: { Accept: ACCEPT } })
      expect(denied.status).toBe(401)
      // Refused before anything was asked upstream for other/.
      expect([...proxy.manifestGets.keys()]).toEqual(['library/busybox:latest'])
      const dev = `Basic ${Buffer.from('dev:dev password').toString('base64')}`
      expect((await fetch(`${instance.url}/v2/other/library/busybox/manifests/latest`, { headers: { Accept: ACCEPT, Authorization: dev } })).status).toBe(200)
    } finally {
      await instance.stop()
    }
  })

  it('refuses pushes into a mirrored prefix with 405 UNSUPPORTED, and takes them elsewhere', async () => {
    const res = await fetch(`${mirror.url}/v2/hub/library/busybox/blobs/uploads/`, { method: 'POST' })
    expect(res.status).toBe(405)
    expect(JSON.stringify(await res.json())).toMatch(/UNSUPPORTED.*pushes to hub\/library\/busybox are refused/)
    const put = await fetch(`${mirror.url}/v2/tok/x/manifests/1`, { method: 'PUT', body: '{}', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })
    expect(put.status).toBe(405)
    await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', src('evict-a'), `docker://${host(mirror)}/local/app:1`])
  })

  it('a mount from a mirrored name (from=hub/busybox) links the stored copy (hub/library/busybox) into a pushed repository', async () => {
    const busybox = await manifestOf('/v2/hub/busybox/manifests/latest')
    const config = busybox.blobs[0]!
    const res = await fetch(`${mirror.url}/v2/local/app/blobs/uploads/?mount=${config}&from=hub/busybox`, { method: 'POST' })
    expect(res.status).toBe(201)
    expect(res.headers.get('docker-content-digest')).toBe(config)
    expect((await get(`/v2/local/app/blobs/${config}`)).status).toBe(200)
  })

  it('a repository quota holds pushes but never refuses a pull-through, however large the copy', async () => {
    await skopeo(['copy', '--src-tls-verify=false', `docker://${host(mirror)}/hub/own/big:1`, `oci:${join(work, 'big')}:big`])
    const big = await manifestOf('/v2/hub/own/big/manifests/1')
    expect(big.blobs.every((d) => storedBlob(join(work, 'mirror'), d))).toBe(true)
    // The same layer pushed to a repository of this registry is held to the quota.
    const layer = big.blobs[1]!
    const push = await fetch(`${mirror.url}/v2/local/big/blobs/uploads/?digest=${layer}`, { method: 'POST', body: readFileSync(join(fixtures.layout.dir, 'blobs/sha256', layer.slice(7))), headers: { 'Content-Type': 'application/octet-stream' } })
    expect(push.status).toBe(507)
    expect(JSON.stringify(await push.json())).toMatch(/DENIED.*quota exceeded: repository local\/big/)
  })

  it('quotas.total counts what is pushed, not what the cache holds (mirror.maxsize bounds that)', async () => {
    const root = join(work, 'total')
    const config = join(work, 'total.yml')
    writeFileSync(config, `mirror: { upstreams: [{ prefix: hub, url: "${proxy.url}", username: ${USER}, password: "${PASSWORD}", library: true }] }\nquotas: { total: 1MiB }\n`)
    const instance = await startEnlil(root, { REGISTRY_CONFIG: config, ENLIL_WORKERS: '1' })
    try {
      // The cache fills past the total: a pull through is never held by a quota.
      for (const image of ['own/big', 'library/busybox']) {
        await skopeo(['copy', '--src-tls-verify=false', `docker://${host(instance)}/hub/${image}:${image === 'own/big' ? '1' : 'latest'}`, `oci:${join(work, 'total-pulled')}:${image.replace('/', '-')}`])
      }
      const blobsUnder = (dir: string): number => readdirSync(dir, { withFileTypes: true })
        .reduce((n, e) => n + (e.isDirectory() ? blobsUnder(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0)
      for (let i = 0; i < 50 && blobsUnder(join(root, 'docker/registry/v2/blobs')) <= 1 << 20; i++) await new Promise((r) => setTimeout(r, 100))
      expect(blobsUnder(join(root, 'docker/registry/v2/blobs'))).toBeGreaterThan(1 << 20)
      const push = (size: number) => {
        const bytes = randomBytes(size)
        return fetch(`${instance.url}/v2/local/quota/blobs/uploads/?digest=sha256:${sha256(bytes).replace(/^sha256:/, '')}`, { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } })
      }
      expect((await push(500_000)).status).toBe(201)
      const over = await push(700_000)
      expect(over.status).toBe(507)
      expect(JSON.stringify(await over.json())).toMatch(/DENIED.*quota exceeded: the registry \(total quota\)/)
    } finally {
      await instance.stop()
    }
  })

  it('8 clients pulling one cold image at once cause one manifest fetch and one fetch per blob', async () => {
    proxy.reset()
    await Promise.all(Array.from({ length: 8 }, (_, i) => skopeo(['copy', '--src-tls-verify=false', `docker://${host(mirror)}/hub/team/layers:1`, `oci:${join(work, `eight-${i}`)}:layers`])))
    expect(proxy.manifestGets).toEqual(new Map([['team/layers:1', 1]]))
    expect(proxy.blobGets.size).toBe(13)
    expect([...proxy.blobGets.values()].every((n) => n === 1)).toBe(true)
  })

  it('two instances on one store: one manifest fetch and one fetch per blob for 8 clients', async () => {
    proxy.reset()
    const root = join(work, 'shared')
    const a = await startEnlil(root, { ...mirrorEnv, REGISTRY_CONFIG: mirrorConfig, ENLIL_WORKERS: '1' })
    const b = await startEnlil(root, { ...mirrorEnv, REGISTRY_CONFIG: mirrorConfig, ENLIL_WORKERS: '1' })
    try {
      await Promise.all(Array.from({ length: 8 }, (_, i) => skopeo(['copy', '--src-tls-verify=false', `docker://${host(i % 2 ? a : b)}/hub/own/wide:1`, `oci:${join(work, `two-${i}`)}:wide`])))
      expect(proxy.manifestGets).toEqual(new Map([['own/wide:1', 1]]))
      expect(proxy.blobGets.size).toBe(2)
      expect([...proxy.blobGets.values()]).toEqual([1, 1])
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('the upload purge removes temporary fetches a crashed process left, and spares one another instance is writing', async () => {
    const root = join(work, 'crashed')
    const v2 = join(root, 'docker/registry/v2')
    const fetching = join(v2, '_enlil/mirror/fetching')
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000)
    const plant = (folder: string, file: string) => {
      mkdirSync(join(fetching, folder), { recursive: true })
      writeFileSync(join(fetching, folder, file), randomBytes(1000))
      utimesSync(join(fetching, folder, file), hoursAgo, hoursAgo)
      utimesSync(join(fetching, folder), hoursAgo, hoursAgo)
    }
    // What kill -9 leaves: a fetch written whole, and one cut mid-write (the file system's hidden temporary file).
    plant(`sha256-${'a'.repeat(64)}-1`, 'data')
    plant(`sha256-${'b'.repeat(64)}-2`, 'data.tmp-0123456789ab')
    // A long transfer of another instance: started hours ago, its blob's lease renewed just now.
    const live = `sha256-${'c'.repeat(64)}-3`
    plant(live, 'data.tmp-ba9876543210')
    mkdirSync(join(v2, `_enlil/mirror/leases/sha256-${'c'.repeat(64)}`), { recursive: true })
    writeFileSync(join(v2, `_enlil/mirror/leases/sha256-${'c'.repeat(64)}/0`), JSON.stringify({ owner: 'elsewhere/1', expiresAt: new Date(Date.now() + 60_000).toISOString() }))
    const instance = await startEnlil(root, { ...mirrorEnv, REGISTRY_CONFIG: mirrorConfig, ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'info', REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: '1s' })
    try {
      for (let i = 0; i < 100 && readdirSync(fetching).length > 1; i++) await new Promise((r) => setTimeout(r, 100))
      expect(readdirSync(fetching)).toEqual([live])
      expect(instance.output()).toMatch(/purged temporary fetches of the pull-through cache/)
    } finally {
      await instance.stop()
    }
  })

  it.skipIf(!s3)('on S3 (Ceph RGW): two instances share one fetch per blob through leases there, then serve the copy by redirect', async () => {
    proxy.reset()
    const bucket = `mirror-${randomBytes(4).toString('hex')}`
    await createBucket(bucket)
    const env = { ...mirrorEnv, ...enlilS3Environment(bucket), REGISTRY_CONFIG: mirrorConfig, ENLIL_WORKERS: '1' }
    const a = await startEnlil(join(work, 'unused-a'), env)
    const b = await startEnlil(join(work, 'unused-b'), env)
    try {
      await Promise.all(Array.from({ length: 4 }, (_, i) => skopeo(['copy', '--src-tls-verify=false', `docker://${host(i % 2 ? a : b)}/hub/own/on-s3:1`, `oci:${join(work, `s3-${i}`)}:on-s3`])))
      expect(proxy.manifestGets).toEqual(new Map([['own/on-s3:1', 1]]))
      expect(proxy.blobGets.size).toBe(2)
      expect([...proxy.blobGets.values()]).toEqual([1, 1])
      // Stored and verified on S3: a blob GET now answers with a presigned URL of the bucket.
      const fetched = [...proxy.blobGets.keys()]
      proxy.mode = 'down'
      for (const digest of fetched) {
        const res = await fetch(`${a.url}/v2/hub/own/on-s3/blobs/${digest}`, { redirect: 'manual' })
        expect(res.status).toBe(307)
        const location = res.headers.get('location')!
        expect(location.startsWith(s3!.endpoint)).toBe(true)
        const bytes = Buffer.from(await (await fetch(location)).arrayBuffer())
        expect(`sha256:${sha256(bytes).replace(/^sha256:/, '')}`).toBe(digest)
      }
      await skopeo(['copy', '--src-tls-verify=false', `docker://${host(b)}/hub/own/on-s3:1`, `oci:${join(work, 's3-again')}:on-s3`])
      expect(proxy.blobGets.size).toBe(2)
    } finally {
      proxy.mode = 'pass'
      await Promise.all([a.stop(), b.stop()])
      await deleteBucket(bucket)
    }
  })

  it('serves what is cached when the upstream is down (a tag past its TTL with a Warning); 503 for the rest', async () => {
    const cached = await manifestOf('/v2/short/library/busybox/manifests/latest')
    for (const blob of cached.blobs) expect((await get(`/v2/short/library/busybox/blobs/${blob}`)).status).toBe(200)
    await new Promise((r) => setTimeout(r, 1_200))
    proxy.mode = 'down'
    try {
      const stale = await manifestOf('/v2/short/library/busybox/manifests/latest')
      expect(stale.res.headers.get('warning')).toMatch(/^110 - "Response is Stale/)
      for (const blob of stale.blobs) expect((await get(`/v2/short/library/busybox/blobs/${blob}`)).status).toBe(200)
      await skopeo(['copy', '--src-tls-verify=false', `docker://${host(mirror)}/hub/busybox:latest`, `oci:${join(work, 'down')}:busybox`])
      // A blob HEAD under a registry-mirrors name is how docker starts a push of a new repository:
      // answered from the store (404: push it), not 503 for want of the upstream.
      expect((await fetch(`${mirror.url}/v2/brand-new/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' })).status).toBe(404)
      const missing = await get('/v2/hub/own/down/manifests/1')
      expect(missing.status).toBe(503)
      expect(missing.headers.get('retry-after')).toBeTruthy()
      expect(JSON.stringify(await missing.json())).toMatch(/UNAVAILABLE/)
      proxy.mode = 'ratelimit'
      const limited = await get('/v2/hub/own/down/manifests/1')
      expect(limited.status).toBe(429)
      expect(limited.headers.get('retry-after')).toBe('17')
    } finally {
      proxy.mode = 'pass'
    }
  })

  it('a blob cut off mid-transfer fails the client retryably and stores nothing; wrong bytes are refused', async () => {
    for (const mode of ['cut', 'corrupt'] as const) {
      const image = await manifestOf(`/v2/hub/own/${mode}/manifests/1`)
      const layer = image.blobs[1]!
      proxy.mode = mode
      try {
        const res = await get(`/v2/hub/own/${mode}/blobs/${layer}`)
        // The head went out (200, the length); the body ends short of it: an error to the client.
        await expect(res.arrayBuffer()).rejects.toThrow()
      } finally {
        proxy.mode = 'pass'
      }
      // The failed transfer removes its temporary object once its client is gone (bounded wait).
      const fetching = join(work, 'mirror/docker/registry/v2/_enlil/mirror/fetching')
      const left = () => (existsSync(fetching) ? readdirSync(fetching) : [])
      for (let i = 0; i < 50 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 100))
      expect(left()).toEqual([])
      expect(storedBlob(join(work, 'mirror'), layer)).toBe(false)
      // The client retries, as docker does: a 503 with Retry-After while the failed transfer is let go.
      let again = await get(`/v2/hub/own/${mode}/blobs/${layer}`)
      for (let i = 0; i < 10 && again.status === 503; i++) {
        await again.arrayBuffer()
        await new Promise((r) => setTimeout(r, 200))
        again = await get(`/v2/hub/own/${mode}/blobs/${layer}`)
      }
      expect(again.status).toBe(200)
      expect(`sha256:${sha256(Buffer.from(await again.arrayBuffer())).replace(/^sha256:/, '')}`).toBe(layer)
      // The store finishes after the client's response did.
      for (let i = 0; i < 50 && !storedBlob(join(work, 'mirror'), layer); i++) await new Promise((r) => setTimeout(r, 100))
      expect(storedBlob(join(work, 'mirror'), layer)).toBe(true)
    }
    const metrics = await (await fetch(`${mirror.url}/metrics`)).text()
    expect(metrics).toMatch(/enlil_mirror_upstream_errors_total\{upstream="hub",kind="digest"\} [1-9]/)
    expect(metrics).toMatch(/enlil_mirror_upstream_errors_total\{upstream="hub",kind="cut"\} [1-9]/)
    expect(metrics).toMatch(/enlil_mirror_pulls_total\{upstream="hub",kind="blob",result="hit"\} [1-9]/)
    expect(metrics).toMatch(/enlil_mirror_upstream_bytes_total\{upstream="hub"\} [1-9]/)
  })

  describe.skipIf(!dockerAvailable)('docker and containerd', () => {
    let engine: Dockerd
    beforeAll(async () => {
      engine = await startDockerd(join(work, 'engine'), [`--registry-mirror=${mirror.url}`])
    }, 60_000)
    afterAll(() => engine?.stop())

    it('a dockerd with registry-mirrors pulls library/busybox through enlil and runs it', async () => {
      await engine.docker(['pull', 'busybox:latest'])
      expect((await engine.docker(['run', '--rm', '--network', 'none', 'busybox:latest'])).stdout).toBe(`${fixtures.greeting}\n`)
    })

    it('with the upstream down, docker pushes a new repository without prefix (registry-mirrors names) and pulls it back', async () => {
      const image = `${host(mirror)}/newapp:1`
      // A small image of its own (the config's catch-all repository quota is 400KiB).
      mkdirSync(join(work, 'newapp'))
      writeFileSync(join(work, 'newapp/hello'), randomBytes(50_000))
      await run('tar', ['-cf', join(work, 'newapp.tar'), '-C', join(work, 'newapp'), 'hello'])
      await engine.docker(['import', join(work, 'newapp.tar'), image])
      proxy.reset()
      proxy.mode = 'down'
      try {
        // docker's first question is a HEAD of each blob in newapp: from the store, never upstream.
        await engine.docker(['push', image])
        await engine.docker(['rmi', image])
        await engine.docker(['pull', image])
      } finally {
        proxy.mode = 'pass'
      }
      expect(proxy.blobGets.size + proxy.manifestGets.size).toBe(0)
      // The pushed repository is local from now on: a pull of newapp never goes upstream.
      expect((await manifestOf('/v2/newapp/manifests/1')).res.status).toBe(200)
    })

    it('ctr pulls docker.io names through hosts.toml', async () => {
      const hosts = join(work, 'certs.d/docker.io')
      mkdirSync(hosts, { recursive: true })
      writeFileSync(join(hosts, 'hosts.toml'), `server = "https://registry-1.docker.io"\n\n[host."${mirror.url}/v2/hub"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n`)
      const out = await run('ctr', ['-a', join(work, 'engine/exec/containerd/containerd.sock'), '-n', 'mirror', 'images', 'pull', '--hosts-dir', join(work, 'certs.d'), 'docker.io/library/multi:1'], { timeout: 120_000 })
      expect(out.stdout).toMatch(/done|elapsed/)
    })
  })

  it('referrers: through the upstream\'s referrers API, and the sha256-<hex> tag where it has none', async () => {
    // The token upstream (enlil) has the API: an artifact pushed there is listed through the mirror.
    const image = await manifestOf('/v2/tok/library/busybox/manifests/latest')
    const token = (await (await fetch(`${tokenUpstream.url}/auth/token?service=enlil&scope=repository:library/busybox:pull,push`, { headers: { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` } })).json() as { token: string }).token
    const artifact = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.digest, size: Number(image.res.headers.get('content-length')) },
    })
    const auth = { Authorization: `Bearer ${token}` }
    expect((await fetch(`${tokenUpstream.url}/v2/library/busybox/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a`, { method: 'POST', body: '{}', headers: { ...auth, 'Content-Type': 'application/octet-stream' } })).status).toBe(201)
    expect((await fetch(`${tokenUpstream.url}/v2/library/busybox/manifests/sig`, { method: 'PUT', body: artifact, headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(201)
    const listed = await get(`/v2/tok/library/busybox/referrers/${image.digest}`)
    expect(listed.status).toBe(200)
    const descriptors = ((await listed.json()) as { manifests: { digest: string; artifactType: string }[] }).manifests
    expect(descriptors.map((d) => d.artifactType)).toEqual(['application/vnd.example.signature'])
    expect((await get(`/v2/tok/library/busybox/manifests/${descriptors[0]!.digest}`)).status).toBe(200)

    // distribution 2.8 has no referrers API: enlil says 404 too, and the fallback tag pulls through.
    const hub = await manifestOf('/v2/hub/library/busybox/manifests/latest')
    const basic = { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` }
    // distribution 2.8 has no monolithic POST: a session, then the PUT.
    const session = await fetch(`${distribution.url}/v2/library/busybox/blobs/uploads/`, { method: 'POST', headers: basic })
    expect(session.status).toBe(202)
    const location = new URL(session.headers.get('location')!, distribution.url)
    location.searchParams.set('digest', 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a')
    expect((await fetch(location, { method: 'PUT', body: '{}', headers: { ...basic, 'Content-Type': 'application/octet-stream' } })).status).toBe(201)
    const tag = hub.digest.replace(':', '-')
    const fallback = artifact.replace(image.digest, hub.digest)
    expect((await fetch(`${distribution.url}/v2/library/busybox/manifests/${tag}`, { method: 'PUT', body: fallback, headers: { ...basic, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(201)
    expect((await get(`/v2/hub/library/busybox/referrers/${hub.digest}`)).status).toBe(404)
    const viaTag = await get(`/v2/hub/library/busybox/manifests/${tag}`)
    expect(viaTag.status).toBe(200)
    expect(Buffer.from(await viaTag.arrayBuffer()).toString()).toBe(fallback)
    // Both accounts (from the file, and from the environment for tok/) were used and never logged.
    expect(mirror.output()).not.toContain(PASSWORD)
  })

  it('GC evicts the least recently pulled mirrored repositories under mirror.maxsize and keeps pushed ones', async () => {
    for (const name of ['evict-a', 'evict-b', 'evict-c']) {
      const image = await manifestOf(`/v2/hub/own/${name}/manifests/1`)
      for (const blob of image.blobs) expect((await get(`/v2/hub/own/${name}/blobs/${blob}`)).status).toBe(200)
      await new Promise((r) => setTimeout(r, 50))
    }
    const a = await manifestOf('/v2/hub/own/evict-a/manifests/1')
    await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', src('evict-b'), `docker://${host(mirror)}/local/keep/app:1`])
    const gc = await run(process.execPath, [join(ROOT, 'dist/main.js'), 'gc', mirrorConfig, '--grace', '0s'], {
      env: { ...process.env, ...mirrorEnv, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(work, 'mirror') }, timeout: 120_000,
    })
    expect(gc.stdout).toContain('mirrored repository hub/own/evict-a (evicted from the cache)')
    expect(gc.stdout).not.toContain('hub/own/evict-c (evicted')
    expect(gc.stdout).not.toMatch(/local\/app \(evicted/)
    // Retention: the policy for */*/* takes the pushed tag and leaves the cached ones (hub/own/evict-c:1, served below) to eviction.
    expect(gc.stdout).toMatch(/deleting tag local\/keep\/app:1 /)
    expect(gc.stdout).not.toMatch(/deleting tag (hub|short|tok)\//)
    proxy.mode = 'down'
    try {
      // The most recent copy is still served without the upstream; the evicted one is gone.
      const c = await manifestOf('/v2/hub/own/evict-c/manifests/1')
      for (const blob of c.blobs) expect((await get(`/v2/hub/own/evict-c/blobs/${blob}`)).status).toBe(200)
      expect((await get('/v2/hub/own/evict-a/manifests/1')).status).toBe(503)
      expect(storedBlob(join(work, 'mirror'), a.blobs[1]!)).toBe(true) // local/app shares evict-a's layer: kept
      await skopeo(['copy', '--src-tls-verify=false', `docker://${host(mirror)}/local/app:1`, `oci:${join(work, 'local')}:app`])
    } finally {
      proxy.mode = 'pass'
    }
  })
})
