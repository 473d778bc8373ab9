/** `--workers N`: processes sharing the port are one registry; a dead worker is replaced; SIGTERM stops all. */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { randomBlob, sha256 } from './support/oci-client.js'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'

const dir = tempDir('workers')
let enlil: Running | undefined
afterAll(async () => {
  await enlil?.stop('SIGKILL')
  removeDir(dir)
})

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
    expect(workerPids(primary)).toHaveLength(2)
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
    for (let i = 0; i < 50 && !(workerPids(primary).length === 2 && !workerPids(primary).includes(victim!)); i++) await new Promise((r) => setTimeout(r, 100))
    expect(workerPids(primary)).toHaveLength(2)
    expect((await send(`${enlil.url}/v2/`)).status).toBe(200)
    const exited = new Promise<number | null>((ok) => enlil!.process.once('exit', (code) => ok(code)))
    enlil.process.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 60_000)
})
