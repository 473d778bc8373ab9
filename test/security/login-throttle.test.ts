/**
 * The login throttle across `--workers 2`: the workers share one count (held by the primary), so
 * the 11th failed login in a minute gets 429 whichever worker answers it, exactly as in one
 * process, in htpasswd mode and at the token endpoint. Every request goes on a new connection, so
 * the cluster hands them to the workers in turn; the access log's request ids (each worker has a
 * prefix of its own) show that both answered.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'
import { accessLines, basic, loggedLines, PASSWORDS, send, statusesOf, workerOf, writeConfig, writeUsers } from './edge.js'

const dir = tempDir('edge-throttle')
const running: Running[] = []
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()))
  removeDir(dir)
})

async function startTwoWorkers(name: string, auth: (users: string) => Record<string, unknown>): Promise<Running> {
  const root = join(dir, name)
  mkdirSync(root, { recursive: true })
  const enlil = await startEnlil(join(root, 'data'), {
    REGISTRY_CONFIG: writeConfig(root, auth(writeUsers(root))),
    ENLIL_WORKERS: '2', REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false',
  })
  running.push(enlil)
  // Until both workers listen, the first one takes every connection.
  for (let i = 0; i < 200; i++) {
    await (await send(`${enlil.url}/v2/ready/probe/tags/list`)).arrayBuffer()
    if (new Set(accessLines(enlil.output()).filter((l) => l.path === '/v2/ready/probe/tags/list').map((l) => workerOf(l.requestId))).size === 2) return enlil
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`the second worker did not start serving:\n${enlil.output()}`)
}

/** The workers (request-id prefixes) that answered `path` with `status`. */
async function workersThatAnswered(enlil: Running, path: string, status: number, count: number): Promise<Set<string>> {
  const lines = await loggedLines(enlil.output, (l) => l.path === path && l.status === status, count)
  return new Set(lines.map((l) => workerOf(l.requestId)))
}

describe('htpasswd mode with ENLIL_WORKERS=2', () => {
  it('the 11th failure gets 429 whichever worker answers; bob and anonymous clients go on', async () => {
    const enlil = await startTwoWorkers('htpasswd', (users) => ({ htpasswd: { path: users, realm: 'edge' } }))
    const path = '/v2/private/app/tags/list'
    const tries = await statusesOf(10, (i) => send(`${enlil.url}${path}`, { Authorization: basic('alice', `guess-${i}`) }))
    expect(tries).toEqual(Array(10).fill(401))
    expect(await workersThatAnswered(enlil, path, 401, 10)).toHaveLength(2)
    // Locked out on both workers, with the right password too.
    const after = await statusesOf(6, (i) => send(`${enlil.url}${path}`, { Authorization: basic('alice', i % 2 ? PASSWORDS.alice : 'guess') }))
    expect(after).toEqual(Array(6).fill(429))
    expect(await workersThatAnswered(enlil, path, 429, 6)).toHaveLength(2)
    expect(await statusesOf(4, () => send(`${enlil.url}/v2/`, { Authorization: basic('bob', PASSWORDS.bob) }))).toEqual(Array(4).fill(200))
    // Anonymous: the ACL's 401 challenge for private/*, the public repository's 404 (nothing pushed), never 429.
    expect(await statusesOf(4, () => send(`${enlil.url}${path}`))).toEqual(Array(4).fill(401))
    expect(await statusesOf(4, () => send(`${enlil.url}/v2/public/app/tags/list`))).toEqual(Array(4).fill(404))
  }, 60_000)
})

describe('token mode with ENLIL_WORKERS=2', () => {
  it('the 11th failure at /auth/token gets 429 whichever worker answers; bob still gets a token', async () => {
    const enlil = await startTwoWorkers('token', (users) => ({ token: { users, service: 'edge' } }))
    const path = '/auth/token'
    const tries = await statusesOf(10, (i) => send(`${enlil.url}${path}?service=edge`, { Authorization: basic('alice', `guess-${i}`) }))
    expect(tries).toEqual(Array(10).fill(401))
    expect(await workersThatAnswered(enlil, path, 401, 10)).toHaveLength(2)
    const after = await statusesOf(6, (i) => send(`${enlil.url}${path}?service=edge`, { Authorization: basic('alice', i % 2 ? PASSWORDS.alice : 'guess') }))
    expect(after).toEqual(Array(6).fill(429))
    expect(await workersThatAnswered(enlil, path, 429, 6)).toHaveLength(2)
    expect(await statusesOf(4, () => send(`${enlil.url}${path}?service=edge`, { Authorization: basic('bob', PASSWORDS.bob) }))).toEqual(Array(4).fill(200))
    expect(await statusesOf(4, () => send(`${enlil.url}${path}?service=edge`))).toEqual(Array(4).fill(200))
  }, 60_000)
})
