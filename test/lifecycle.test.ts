/** `enlil serve` as a user runs it: bad configuration refused clearly, SIGTERM drains in-flight requests. */
import { spawnSync } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { randomBlob } from './support/oci-client.js'
import { removeDir, ROOT, type Running, startEnlil, tempDir } from './support/processes.js'

const dirs: string[] = []
const running: Running[] = []
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')))
  dirs.forEach(removeDir)
})

describe('enlil serve', () => {
  it('refuses a bad configuration with one line per problem and exit status 1', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'serve'], {
      env: { ...process.env, REGISTRY_HTTP_ADDR: 'nowhere', REGISTRY_STORAGE_DELETE_ENABLED: 'maybe', REGISTRY_LOG_LEVEL: 'loud' },
      encoding: 'utf8', timeout: 10_000,
    })
    expect(result.status).toBe(1)
    const lines = result.stderr.trim().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines.find((l) => l.includes('REGISTRY_HTTP_ADDR'))).toMatch(/^enlil: config: http\.addr .*host:port/)
    expect(lines.find((l) => l.includes('REGISTRY_STORAGE_DELETE_ENABLED'))).toMatch(/expected true or false/)
    expect(lines.find((l) => l.includes('REGISTRY_LOG_LEVEL'))).toMatch(/log\.level/)
  })

  it('keeps serving when clients go away in the middle of downloads', async () => {
    const root = tempDir('abort')
    dirs.push(root)
    const enlil = await startEnlil(root)
    running.push(enlil)
    const blob = randomBlob(16 * 1024 * 1024)
    const url = `${enlil.url}/v2/abort/app/blobs/${blob.digest}`
    expect((await fetch(`${enlil.url}/v2/abort/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes })).status).toBe(201)
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const req = request(url, (res) => {
          res.once('data', () => { req.destroy(); resolve() })
        })
        req.on('error', () => resolve())
        req.end()
      })
    }
    const whole = await fetch(url)
    expect(whole.status).toBe(200)
    expect(Buffer.from(await whole.arrayBuffer()).equals(blob.bytes)).toBe(true)
    expect(enlil.process.exitCode).toBeNull()
  })

  it('finishes an upload in flight when told to stop, then exits 0', async () => {
    const root = tempDir('drain')
    dirs.push(root)
    const enlil = await startEnlil(root)
    running.push(enlil)
    const blob = randomBlob(2 * 1024 * 1024)
    const post = await fetch(`${enlil.url}/v2/drain/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: '' })
    expect(post.status).toBe(400) // an empty body does not match the digest: the registry is alive and checking

    const exited = new Promise<number | null>((ok) => enlil.process.once('exit', (code) => ok(code)))
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${enlil.url}/v2/drain/app/blobs/uploads/?digest=${encodeURIComponent(blob.digest)}`, {
        method: 'POST', headers: { 'Content-Length': String(blob.bytes.length), 'Content-Type': 'application/octet-stream' },
      }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      // Half the body, then SIGTERM, then the rest: the request must still complete.
      req.write(blob.bytes.subarray(0, 1024 * 1024), () => {
        enlil.process.kill('SIGTERM')
        setTimeout(() => req.end(blob.bytes.subarray(1024 * 1024)), 300)
      })
    })
    expect(status).toBe(201)
    expect(await exited).toBe(0)
  })
})
