/**
 * The name that is authorised is the name that is served: percent-encoded names and `.`/`..`
 * segments, raw or encoded, sent byte for byte on every route kind, with htpasswd and with token
 * auth and a docker_auth-style ACL. Each attack is refused with the spec's error, and the
 * repository it aimed at is unchanged.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Blob, imageManifest, OCI_MANIFEST, randomBlob, sha256 } from '../support/oci-client.js'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'
import { claimsOf, codeOf, raw, tokenFor } from './raw.js'

const SERVICE = 'security'
const PASSWORDS = { admin: 'admin pw', alice: 'alice pw' } as const
type Who = keyof typeof PASSWORDS | ''
const basic = (user: keyof typeof PASSWORDS) => `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}`

// docker_auth's shape: the closed public/p comes before the broader public/* allows.
const ACL = [
  { match: { account: 'admin' }, actions: ['*'] },
  { match: { name: 'public/p' }, actions: [] },
  { match: { account: '', name: 'public/*' }, actions: ['pull'] },
  { match: { account: '/.+/', name: 'public/*' }, actions: ['pull'] },
  { match: { account: '/.+/', name: '${account}/*' }, actions: ['*'] },
]

interface Image { config: Blob; layer: Blob; manifest: string; digest: string }

describe.each(['htpasswd', 'token'] as const)('names at the edge, %s auth', (mode) => {
  let dir: string
  let enlil: Running
  const images: Record<string, Image> = {}
  let onlyInQ: Blob

  /** What `who` sends to be `who` for `scopes` (repository:name:actions): Basic, or a token from the realm. */
  const auth = async (who: Who, scopes: string[]): Promise<Record<string, string>> => {
    if (mode === 'htpasswd') return who ? { Authorization: basic(who) } : {}
    return { Authorization: await tokenFor(enlil.url, SERVICE, scopes, who ? basic(who) : undefined) }
  }

  async function pushBlob(repo: string, blob: Blob): Promise<void> {
    const headers = await auth('admin', [`repository:${repo}:pull,push`])
    const res = await fetch(`${enlil.url}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: blob.bytes })
    expect(res.status, await res.text()).toBe(201)
  }

  async function pushImage(repo: string): Promise<Image> {
    const config = randomBlob(100)
    const layer = randomBlob(3_000)
    for (const blob of [config, layer]) await pushBlob(repo, blob)
    const manifest = imageManifest(config, [layer])
    const headers = await auth('admin', [`repository:${repo}:pull,push`])
    const res = await fetch(`${enlil.url}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { ...headers, 'Content-Type': OCI_MANIFEST }, body: manifest })
    expect(res.status, await res.text()).toBe(201)
    return { config, layer, manifest, digest: sha256(manifest) }
  }

  /** A manifest GET as admin through the API's front door: what really is in `repo`. */
  async function adminGet(repo: string, path: string): Promise<number> {
    const res = await fetch(`${enlil.url}/v2/${repo}/${path}`, { headers: { ...(await auth('admin', [`repository:${repo}:pull`])), Accept: OCI_MANIFEST } })
    await res.arrayBuffer()
    return res.status
  }

  beforeAll(async () => {
    dir = tempDir(`names-${mode}`)
    writeFileSync(join(dir, 'users'), Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}\n`).join(''))
    const authConfig = mode === 'htpasswd'
      ? { htpasswd: { realm: 'security', path: join(dir, 'users') }, acl: ACL }
      : { token: { service: SERVICE, users: join(dir, 'users') }, acl: ACL }
    writeFileSync(join(dir, 'config.yml'), JSON.stringify({ auth: authConfig }))
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml') })
    for (const repo of ['public/secret/x', 'public/p', 'bad/victim']) images[repo] = await pushImage(repo)
    onlyInQ = randomBlob(1_000)
    await pushBlob('public/q', onlyInQ)
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('an encoded slash never reaches a deeper repository: anonymous reads of public/secret%2fx on every route kind get 400 NAME_INVALID', async () => {
    const secret = images['public/secret/x']!
    // The ACL's public/* would match the encoded name as one component: the token service grants nothing for it.
    const headers = await auth('', ['repository:public/secret%2fx:pull'])
    if (mode === 'token') expect(claimsOf(headers.Authorization!).access).toEqual([])
    for (const encoded of ['public/secret%2fx', 'public/secret%2Fx']) {
      for (const [method, rest] of [['GET', 'manifests/v1'], ['HEAD', 'manifests/v1'], ['GET', `blobs/${secret.layer.digest}`], ['GET', 'tags/list'], ['GET', `referrers/${secret.digest}`]] as const) {
        const reply = await raw(enlil.url, method, `/v2/${encoded}/${rest}`, headers)
        expect(reply.status, `${method} /v2/${encoded}/${rest}: ${reply.body}`).toBe(400)
        if (method === 'GET') expect(codeOf(reply)).toBe('NAME_INVALID')
        expect(reply.headers['docker-content-digest']).toBeUndefined()
        expect(reply.body).not.toContain('"v1"')
      }
    }
  })

  it('alice cannot push into alice/a/deep by writing alice/a%2fdeep: POST and PUT get 400, and nothing appears', async () => {
    const headers = await auth('alice', ['repository:alice/a%2fdeep:pull,push', 'repository:alice/a/deep:pull,push'])
    const blob = randomBlob(500)
    const post = await raw(enlil.url, 'POST', `/v2/alice/a%2fdeep/blobs/uploads/?digest=${blob.digest}`, { ...headers, 'Content-Type': 'application/octet-stream' }, blob.bytes)
    expect([post.status, codeOf(post)]).toEqual([400, 'NAME_INVALID'])
    const session = await raw(enlil.url, 'POST', '/v2/alice/a%2Fdeep/blobs/uploads/', headers)
    expect([session.status, codeOf(session)]).toEqual([400, 'NAME_INVALID'])
    const put = await raw(enlil.url, 'PUT', '/v2/alice/a%2fdeep/manifests/v1', { ...headers, 'Content-Type': OCI_MANIFEST }, images['public/p']!.manifest)
    expect([put.status, codeOf(put)]).toEqual([400, 'NAME_INVALID'])
    expect(await adminGet('alice/a/deep', 'tags/list')).toBe(404)
    expect(await adminGet('alice/a/deep', 'manifests/v1')).toBe(404)
  })

  it('a deny rule is not dodged by encoding a letter: /v2/public/%70 gets 400, public/p itself stays closed', async () => {
    const headers = await auth('', ['repository:public/%70:pull'])
    const dodge = await raw(enlil.url, 'GET', '/v2/public/%70/manifests/v1', headers)
    expect([dodge.status, codeOf(dodge)]).toEqual([400, 'NAME_INVALID'])
    const word = await raw(enlil.url, 'GET', '/v2/public/p/%6danifests/v1', await auth('', ['repository:public/p:pull']))
    expect([word.status, codeOf(word)]).toEqual([400, 'NAME_INVALID'])
    const direct = await raw(enlil.url, 'GET', '/v2/public/p/manifests/v1', await auth('', ['repository:public/p:pull']))
    expect(direct.status).toBe(401)
    expect(codeOf(direct)).toBe('UNAUTHORIZED')
  })

  it('a mount from an encoded name is authorised on the decoded one: alice cannot mount from public/secret/x', async () => {
    const secret = images['public/secret/x']!
    const headers = await auth('alice', ['repository:alice/app:pull,push', 'repository:public/secret/x:pull'])
    const reply = await raw(enlil.url, 'POST', `/v2/alice/app/blobs/uploads/?mount=${encodeURIComponent(secret.layer.digest)}&from=public%2Fsecret%2Fx`, headers)
    expect(reply.status).toBe(mode === 'htpasswd' ? 403 : 401)
    expect(codeOf(reply)).toBe(mode === 'htpasswd' ? 'DENIED' : 'UNAUTHORIZED')
    const head = await fetch(`${enlil.url}/v2/alice/app/blobs/${secret.layer.digest}`, { method: 'HEAD', headers: await auth('alice', ['repository:alice/app:pull']) })
    expect(head.status).toBe(404)
  })

  it('dot segments, raw or encoded, reach no other repository: reads, uploads, manifest PUTs and DELETEs get 400 NAME_INVALID', async () => {
    const victim = images['bad/victim']!
    const headers = await auth('admin', ['repository:bad/victim:*'])
    const dotted = (rest: string) => [
      `/v2/bad/./victim/${rest}`, `/v2/bad/%2e/victim/${rest}`, `/v2/bad/x/../victim/${rest}`, `/v2/bad/x/%2e%2e/victim/${rest}`,
      `/v2/bad/x/%2E./victim/${rest}`, `/v2/../v2/bad/victim/${rest}`, `/auth/../v2/bad/victim/${rest}`,
    ]
    const attempts: [string, string, Record<string, string>, string?][] = [
      ...dotted('tags/list').map((p) => ['GET', p, {}] as [string, string, Record<string, string>]),
      ...dotted(`blobs/${victim.layer.digest}`).map((p) => ['GET', p, {}] as [string, string, Record<string, string>]),
      ...dotted('blobs/uploads/').map((p) => ['POST', p, {}] as [string, string, Record<string, string>]),
      ...dotted('manifests/planted').map((p) => ['PUT', p, { 'Content-Type': OCI_MANIFEST }, victim.manifest] as [string, string, Record<string, string>, string]),
      ...dotted('manifests/v1').map((p) => ['DELETE', p, {}] as [string, string, Record<string, string>]),
    ]
    for (const [method, path, extra, body] of attempts) {
      const reply = await raw(enlil.url, method, path, { ...headers, ...extra }, body)
      expect([reply.status, codeOf(reply)], `${method} ${path}: ${reply.body}`).toEqual([400, 'NAME_INVALID'])
      expect(reply.body).not.toContain('"v1"')
    }
    expect(await adminGet('bad/victim', 'manifests/v1')).toBe(200)
    expect(await adminGet('bad/victim', 'manifests/planted')).toBe(404)
  })

  it('a mount without from finds only what the caller may pull (201), and opens a session otherwise (202)', async () => {
    const headers = await auth('alice', ['repository:alice/found:pull,push'])
    const mount = (digest: string) => fetch(`${enlil.url}/v2/alice/found/blobs/uploads/?mount=${digest}`, { method: 'POST', headers })
    const found = await mount(onlyInQ.digest)
    expect(found.status).toBe(201)
    expect(found.headers.get('location')).toMatch(new RegExp(`/v2/alice/found/blobs/${onlyInQ.digest}$`))
    const pulled = await fetch(`${enlil.url}/v2/alice/found/blobs/${onlyInQ.digest}`, { headers: await auth('alice', ['repository:alice/found:pull']) })
    expect(Buffer.from(await pulled.arrayBuffer()).equals(onlyInQ.bytes)).toBe(true)
    // public/p is closed to alice and bad/victim is admin's: their blobs are not found for her.
    for (const digest of [images['public/p']!.layer.digest, images['bad/victim']!.layer.digest, randomBlob(10).digest]) {
      const reply = await mount(digest)
      expect(reply.status, digest).toBe(202)
      const head = await fetch(`${enlil.url}/v2/alice/found/blobs/${digest}`, { method: 'HEAD', headers: await auth('alice', ['repository:alice/found:pull']) })
      expect(head.status).toBe(404)
    }
  })

  it('a manifest reference outside the grammar is unknown on GET and HEAD (404 MANIFEST_UNKNOWN) and invalid on PUT (400 TAG_INVALID)', async () => {
    const headers = { ...(await auth('admin', ['repository:public/p:*'])), Accept: OCI_MANIFEST }
    const get = await fetch(`${enlil.url}/v2/public/p/manifests/.INVALID_MANIFEST_NAME`, { headers })
    expect(get.status).toBe(404)
    expect(codeOf({ body: await get.text() })).toBe('MANIFEST_UNKNOWN')
    expect((await fetch(`${enlil.url}/v2/public/p/manifests/.INVALID_MANIFEST_NAME`, { method: 'HEAD', headers })).status).toBe(404)
    const put = await fetch(`${enlil.url}/v2/public/p/manifests/.INVALID_MANIFEST_NAME`, { method: 'PUT', headers: { ...headers, 'Content-Type': OCI_MANIFEST }, body: images['public/p']!.manifest })
    expect(put.status).toBe(400)
    expect(codeOf({ body: await put.text() })).toBe('TAG_INVALID')
  })
})
