/** `--workers N`: processes sharing the port are one registry; a dead worker is replaced; SIGTERM stops all. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { randomBlob, sha256 } from './support/oci-client.js'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'

const dir = tempDir('workers')
let enlil: Running | undefined
afterAll(async () => {
  await enlil?.stop('SIGKILL')
  removeDir(dir)
})

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Child processes of the primary, from /proc (field 4 of stat is the parent pid). */
const workerPids = (primary: number) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1] === String(primary)
  } catch {
    return false
  }
}).map(Number)

describe('enlil serve with ENLIL_WORKERS=2', () => {
  it('finishes uploads whose requests land on either worker, survives a killed worker, and stops on SIGTERM', async () => {
    enlil = await startEnlil(join(dir, 'data'), { ENLIL_WORKERS: '2' })
    const primary = enlil.process.pid!
    await waitFor(() => workerPids(primary).length === 2, 'two workers')
    // New connections each time, so the cluster spreads POST, PATCH and PUT over both workers.
    const send = (url: string, init: RequestInit = {}) => fetch(url, { ...init, headers: { ...init.headers as Record<string, string>, Connection: 'close' } })
    for (let i = 0; i < 12; i++) {
      const blob = randomBlob(100_000 + i)
      const post = await send(`${enlil.url}/v2/workers/app/blobs/uploads/`, { method: 'POST' })
      const location = new URL(post.headers.get('location')!).pathname
      const patch = await send(`${enlil.url}${location}`, { method: 'PATCH', body: blob.bytes, headers: { 'Content-Type': 'application/octet-stream' } })
      expect(patch.status).toBe(202)
      expect((await send(`${enlil.url}${location}?digest=${blob.digest}`, { method: 'PUT' })).status).toBe(201)
      const got = await send(`${enlil.url}/v2/workers/app/blobs/${blob.digest}`)
      expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(blob.digest)
    }
    const [victim] = workerPids(primary)
    process.kill(victim!, 'SIGKILL')
    await waitFor(() => workerPids(primary).length === 2 && !workerPids(primary).includes(victim!), 'a replacement worker')
    expect((await send(`${enlil.url}/v2/`)).status).toBe(200)
    const exited = new Promise<number | null>((ok) => enlil!.process.once('exit', (code) => ok(code)))
    enlil.process.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 60_000)
})

describe('enlil serve with the default workers', () => {
  it('runs one worker per core; SIGHUP replaces them one at a time while an upload goes on; one generated token key for all', async () => {
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('pw', 8)}\n`)
    const running = await startEnlil(join(dir, 'default'), { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users'), REGISTRY_LOG_LEVEL: 'info' })
    try {
      const primary = running.process.pid!
      const cores = availableParallelism()
      if (cores > 1) await waitFor(() => workerPids(primary).length === cores, `${cores} workers`)
      const send = (path: string, init: RequestInit = {}) => fetch(`${running.url}${path}`, { ...init, headers: { ...init.headers as Record<string, string>, Connection: 'close' } })
      const tokenRes = await send('/auth/token?service=enlil&scope=repository:reload/app:pull,push', { headers: { Authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` } })
      const auth = { Authorization: `Bearer ${((await tokenRes.json()) as { token: string }).token}` }
      // The token from one worker is good on every worker (new connections spread over them).
      for (let i = 0; i < 8; i++) expect((await send('/v2/reload/app/tags/list', { headers: auth })).status).toBe(404)

      const blob = randomBlob(300_000)
      const post = await send('/v2/reload/app/blobs/uploads/', { method: 'POST', headers: auth })
      const location = new URL(post.headers.get('location')!).pathname
      const half = 150_000
      expect((await send(location, { method: 'PATCH', body: blob.bytes.subarray(0, half), headers: { ...auth, 'Content-Range': `0-${half - 1}`, 'Content-Type': 'application/octet-stream' } })).status).toBe(202)

      if (cores > 1) {
        const before = workerPids(primary)
        running.process.kill('SIGHUP')
        await waitFor(() => { const now = workerPids(primary); return now.length === cores && now.every((p) => !before.includes(p)) }, 'every worker replaced')
        expect(running.output()).toContain('reload done')
      } else {
        running.process.kill('SIGHUP')
        await waitFor(() => running.output().includes('SIGHUP ignored'), 'the SIGHUP warning')
      }
      // The new workers continue the upload the old ones began, and accept the old token.
      expect((await send(location, { method: 'PATCH', body: blob.bytes.subarray(half), headers: { ...auth, 'Content-Range': `${half}-${blob.bytes.length - 1}`, 'Content-Type': 'application/octet-stream' } })).status).toBe(202)
      expect((await send(`${location}?digest=${blob.digest}`, { method: 'PUT', headers: auth })).status).toBe(201)
      const got = await send(`/v2/reload/app/blobs/${blob.digest}`, { headers: auth })
      expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(blob.digest)
    } finally {
      await running.stop()
    }
  }, 60_000)
})
