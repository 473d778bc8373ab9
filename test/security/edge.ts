/**
 * Helpers of the edge-security tests (client addresses and the login throttle): accounts, an ACL
 * with an `ip` rule, blobs to pull, and requests on fresh connections so that `--workers N`
 * spreads them over the workers.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { expect } from 'vitest'
import { type Blob, randomBlob } from '../support/oci-client.js'

export const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' } as const

export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

/** alice and bob, in an htpasswd file; returns its path. */
export function writeUsers(dir: string): string {
  const file = join(dir, 'htpasswd')
  writeFileSync(file, Object.entries(PASSWORDS).map(([user, pw]) => `${user}:${bcrypt.hashSync(pw, 4)}\n`).join(''))
  return file
}

/**
 * The ACL of these tests: anyone pulls public/*; anonymous clients pull private/* only from the
 * office network 198.51.100.0/24; alice and bob do anything.
 */
export const ACL = [
  { match: { account: '', name: 'public/*' }, actions: ['pull'] },
  { match: { account: '', name: 'private/*', ip: '198.51.100.*' }, actions: ['pull'] },
  { match: { account: '/.+/' }, actions: ['*'] },
]

/** A config file (JSON is YAML) with `auth`, for REGISTRY_CONFIG. */
export function writeConfig(dir: string, auth: Record<string, unknown>): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yml`)
  writeFileSync(file, JSON.stringify({ auth: { ...auth, acl: ACL } }))
  return file
}

/** A request on a connection of its own (so the cluster picks a worker for each). */
export function send(url: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: { ...headers, Connection: 'close' } })
}

/** Pushes a blob in one POST (`?digest=` with the body), as `who`. */
export async function pushBlob(base: string, repo: string, authorization: string, size = 2_000): Promise<Blob> {
  const blob = randomBlob(size)
  const res = await send(`${base}/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(blob.digest)}`, { Authorization: authorization, 'Content-Type': 'application/octet-stream' }, { method: 'POST', body: new Uint8Array(blob.bytes) })
  expect(res.status, await res.clone().text()).toBe(201)
  await res.arrayBuffer()
  return blob
}

/** The status of a request and how many body bytes came with it (the body is read to the end). */
export async function statusAndBytes(res: Response): Promise<{ status: number; bytes: number; retryAfter: string | null; body: string }> {
  const body = Buffer.from(await res.arrayBuffer())
  return { status: res.status, bytes: body.length, retryAfter: res.headers.get('retry-after'), body: body.toString('utf8') }
}

/** Runs `attempt` `n` times, one after the other, and gives the statuses. */
export async function statusesOf(n: number, attempt: (i: number) => Promise<Response>): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i++) {
    const res = await attempt(i)
    await res.arrayBuffer()
    statuses.push(res.status)
  }
  return statuses
}

/** The access-log lines in a process's output. */
export function accessLines(output: string): { requestId: string; path: string; status: number; addr?: string; user?: string }[] {
  return output.split('\n').filter((l) => l.startsWith('{') && l.includes('"msg":"request"')).flatMap((l) => {
    try {
      return [JSON.parse(l) as { requestId: string; path: string; status: number; addr?: string; user?: string }]
    } catch {
      return [] // a line cut at the start of the kept output
    }
  })
}

/** The worker of an access-log line: each worker numbers its request ids after a prefix of its own. */
export const workerOf = (requestId: string) => requestId.split('-')[0]!

/** The access-log lines `pick` selects, once there are `count` of them (a line is written when its response has closed). */
export async function loggedLines(output: () => string, pick: (line: ReturnType<typeof accessLines>[number]) => boolean, count: number): Promise<ReturnType<typeof accessLines>> {
  let lines = accessLines(output()).filter(pick)
  for (let i = 0; i < 100 && lines.length < count; i++) {
    await new Promise((r) => setTimeout(r, 20))
    lines = accessLines(output()).filter(pick)
  }
  return lines
}
