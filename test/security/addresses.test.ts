/**
 * Client addresses at the edge, against a real enlil with htpasswd auth and an ACL whose `ip` rule
 * lets anonymous clients of 198.51.100.0/24 read private/*. The tests connect from 127.0.0.1: with
 * the default config that peer is not a trusted proxy, so whatever X-Forwarded-For or
 * Fly-Client-IP it sends is ignored; with `ENLIL_HTTP_TRUSTEDPROXIES=127.0.0.1` it is a proxy and
 * the rightmost hop it does not vouch for is the client.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync } from 'node:fs'
import type { Blob } from '../support/oci-client.js'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'
import { basic, loggedLines, PASSWORDS, pushBlob, send, statusAndBytes, statusesOf, writeConfig, writeUsers } from './edge.js'

const dir = tempDir('edge-addresses')
const running: Running[] = []
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()))
  removeDir(dir)
})

const alice = basic('alice', PASSWORDS.alice)

async function start(name: string, env: Record<string, string> = {}) {
  const root = join(dir, name)
  mkdirSync(root, { recursive: true })
  const enlil = await startEnlil(join(root, 'data'), {
    REGISTRY_CONFIG: writeConfig(root, { htpasswd: { path: writeUsers(root), realm: 'edge' } }),
    REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false', ENLIL_WORKERS: '1', ...env,
  })
  running.push(enlil)
  const secret = await pushBlob(enlil.url, 'private/app', alice)
  const open = await pushBlob(enlil.url, 'public/app', alice)
  return { enlil, secret, open }
}

const pullAnonymously = (enlil: Running, repo: string, blob: Blob, headers: Record<string, string>) =>
  send(`${enlil.url}/v2/${repo}/blobs/${blob.digest}`, headers).then(statusAndBytes)

describe('with the default config (no trusted proxies)', () => {
  let registry: Awaited<ReturnType<typeof start>>
  beforeAll(async () => { registry = await start('default') })

  it('a forged X-Forwarded-For or Fly-Client-IP does not satisfy the ACL\'s ip rule: 401, no bytes', async () => {
    const { enlil, secret } = registry
    for (const headers of <Record<string, string>[]>[{ 'X-Forwarded-For': '198.51.100.9' }, { 'X-Forwarded-For': '203.0.113.1, 198.51.100.9' }, { 'Fly-Client-IP': '198.51.100.9' }]) {
      const got = await pullAnonymously(enlil, 'private/app', secret, headers)
      expect(got.status, JSON.stringify(headers)).toBe(401)
      expect(got.body).toContain('UNAUTHORIZED')
      expect(got.bytes).toBeLessThan(secret.bytes.length)
    }
    // The access log shows the address enlil decided on, not the header's.
    const lines = await loggedLines(enlil.output, (l) => l.path === `/v2/private/app/blobs/${secret.digest}`, 3)
    expect(lines.length).toBe(3)
    expect(new Set(lines.map((l) => l.addr))).toEqual(new Set(['127.0.0.1']))
  })

  it('rotating X-Forwarded-For does not escape the lock-out, and the lock-out is alice\'s alone', async () => {
    const { enlil, open } = registry
    const tries = await statusesOf(11, (i) => send(`${enlil.url}/v2/`, { Authorization: basic('alice', `guess-${i}`), 'X-Forwarded-For': `203.0.113.${i + 1}` }))
    expect(tries).toEqual([...Array(10).fill(401), 429])
    const locked = await send(`${enlil.url}/v2/`, { Authorization: alice, 'X-Forwarded-For': '192.0.2.200' }).then(statusAndBytes)
    expect(locked.status).toBe(429)
    expect(locked.body).toContain('TOOMANYREQUESTS')
    expect(Number(locked.retryAfter)).toBeGreaterThan(0)
    expect(Number(locked.retryAfter)).toBeLessThanOrEqual(60)
    // Another account, and anonymous clients, are not throttled.
    expect((await send(`${enlil.url}/v2/`, { Authorization: basic('bob', PASSWORDS.bob) }).then(statusAndBytes)).status).toBe(200)
    const pulled = await pullAnonymously(enlil, 'public/app', open, {})
    expect(pulled.status).toBe(200)
    expect(pulled.bytes).toBe(open.bytes.length)
  }, 40_000)
})

describe('with ENLIL_HTTP_TRUSTEDPROXIES=127.0.0.1 (a proxy on the same host)', () => {
  let registry: Awaited<ReturnType<typeof start>>
  beforeAll(async () => { registry = await start('trusted', { ENLIL_HTTP_TRUSTEDPROXIES: '127.0.0.1' }) })

  it('the client is the rightmost hop the proxy does not vouch for', async () => {
    const { enlil, secret } = registry
    const cases: [string, number][] = [
      ['198.51.100.9', 200],
      ['203.0.113.5, 198.51.100.9', 200], // what the client wrote, then what the proxy saw
      ['198.51.100.9, 203.0.113.5', 401], // a client of 203.0.113.5 claiming the office network
      ['198.51.100.9, 127.0.0.1', 200], // another hop through the trusted proxy
      ['garbage, 203.0.113.5', 401],
    ]
    for (const [forwardedFor, status] of cases) {
      const got = await pullAnonymously(enlil, 'private/app', secret, { 'X-Forwarded-For': forwardedFor })
      expect(got.status, forwardedFor).toBe(status)
      expect(got.bytes === secret.bytes.length, forwardedFor).toBe(status === 200)
    }
    const addrs = (await loggedLines(enlil.output, (l) => l.path === `/v2/private/app/blobs/${secret.digest}`, cases.length)).map((l) => l.addr)
    expect(addrs).toEqual(['198.51.100.9', '198.51.100.9', '203.0.113.5', '198.51.100.9', '203.0.113.5'])
  })

  it('locks alice out from the address that guessed, and only there', async () => {
    const { enlil, open } = registry
    const from = (address: string, authorization?: string) => send(`${enlil.url}/v2/`, { 'X-Forwarded-For': address, ...(authorization ? { Authorization: authorization } : {}) })
    const tries = await statusesOf(12, (i) => from('203.0.113.7', basic('alice', `guess-${i}`)))
    expect(tries).toEqual([...Array(10).fill(401), 429, 429])
    expect((await from('203.0.113.7', alice)).status).toBe(429)
    expect((await from('203.0.113.8', alice)).status).toBe(200)
    expect((await from('203.0.113.7', basic('bob', PASSWORDS.bob))).status).toBe(200)
    const pulled = await pullAnonymously(enlil, 'public/app', open, { 'X-Forwarded-For': '203.0.113.7' })
    expect(pulled.status).toBe(200)
  }, 40_000)
})

describe('token mode', () => {
  let enlil: Running
  beforeAll(async () => {
    const root = join(dir, 'token')
    mkdirSync(root, { recursive: true })
    enlil = await startEnlil(join(root, 'data'), {
      REGISTRY_CONFIG: writeConfig(root, { token: { users: writeUsers(root), service: 'edge' } }),
      ENLIL_WORKERS: '1',
    })
    running.push(enlil)
  })
  const token = async (headers: Record<string, string>) => {
    const res = await send(`${enlil.url}/auth/token?service=edge&scope=repository:private/app:pull`, headers)
    return { status: res.status, body: await res.json() as { token?: string; errors?: { code: string }[] } }
  }
  const accessOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { access: unknown }).access

  it('an anonymous token with a forged X-Forwarded-For grants nothing on private/*', async () => {
    const got = await token({ 'X-Forwarded-For': '198.51.100.9' })
    expect(got.status).toBe(200)
    expect(accessOf(got.body.token!)).toEqual([])
  })

  it('rotating X-Forwarded-For does not escape the lock-out; bob and anonymous clients still get tokens', async () => {
    const tries = await statusesOf(11, (i) => send(`${enlil.url}/auth/token?service=edge`, { Authorization: basic('alice', `guess-${i}`), 'X-Forwarded-For': `203.0.113.${i + 1}` }))
    expect(tries).toEqual([...Array(10).fill(401), 429])
    expect((await token({ Authorization: alice })).body.errors?.[0]?.code).toBe('TOOMANYREQUESTS')
    expect((await token({ Authorization: basic('bob', PASSWORDS.bob) })).status).toBe(200)
    expect((await token({})).status).toBe(200)
  }, 40_000)
})
