/**
 * Caches that can't lie, on two workers: a blob whose bytes are gone is 404 on every worker (GET at
 * once, HEAD within the stated bound of five seconds), never 200 with a body cut short, and a
 * re-push makes it pullable again at once, everywhere. Real processes, the folder store.
 */
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBlob } from './support/oci-client.js'
import { removeDir, ROOT, type Running, startEnlil, tempDir } from './support/processes.js'

/** Requests on fresh connections, so that both workers answer some of them. */
async function onEveryWorker(url: string, method: 'HEAD' | 'GET', times = 12): Promise<{ status: number; bytes: number; code?: string }[]> {
  return Promise.all(Array.from({ length: times }, async () => {
    const res = await fetch(url, { method, headers: { Connection: 'close' } })
    const body = Buffer.from(await res.arrayBuffer())
    let code: string | undefined
    try {
      code = (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code
    } catch { /* not an error body */ }
    return { status: res.status, bytes: body.length, code }
  }))
}

describe('a blob whose bytes are gone, on two workers', () => {
  let dir: string
  let enlil: Running
  const root = () => join(dir, 'data')
  beforeAll(async () => {
    dir = tempDir('stale-cache')
    enlil = await startEnlil(root(), { ENLIL_WORKERS: '2' })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  const push = async (repo: string, blob: { digest: string; bytes: Buffer }) => {
    const res = await fetch(`${enlil.url}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes })
    expect(res.status).toBe(201)
  }

  it('bytes deleted under a link (GC racing a re-link): GET is 404 at once, HEAD within 5 s, on every worker; a re-push repairs it', async () => {
    const blob = randomBlob(300_000)
    const url = `${enlil.url}/v2/race/app/blobs/${blob.digest}`
    await push('race/app', blob)
    expect((await onEveryWorker(url, 'HEAD')).map((r) => r.status)).toEqual(Array(12).fill(200))
    // Both workers now hold its size. The bytes go; the repository's link stays.
    rmSync(join(root(), 'docker/registry/v2/blobs/sha256', blob.digest.slice(7, 9), blob.digest.slice(7)), { recursive: true })
    const gets = await onEveryWorker(url, 'GET')
    expect(gets.map((r) => [r.status, r.code])).toEqual(Array(12).fill([404, 'BLOB_UNKNOWN']))
    await new Promise((r) => setTimeout(r, 5_200))
    expect((await onEveryWorker(url, 'HEAD')).map((r) => r.status)).toEqual(Array(12).fill(404))
    await push('race/app', blob)
    const again = await onEveryWorker(url, 'GET')
    expect(again.map((r) => [r.status, r.bytes])).toEqual(Array(12).fill([200, blob.bytes.length]))
  })

  it('a blob garbage collected: HEAD and GET are 404 on every worker at once; re-pushed, it is served everywhere', async () => {
    const blob = randomBlob(50_000)
    const url = `${enlil.url}/v2/collected/app/blobs/${blob.digest}`
    await push('collected/app', blob)
    expect((await onEveryWorker(url, 'HEAD')).map((r) => r.status)).toEqual(Array(12).fill(200))
    const gc = spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'gc', '--grace', '0s'], {
      env: { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root() }, encoding: 'utf8', timeout: 60_000,
    })
    expect(gc.status, gc.stderr).toBe(0)
    expect(gc.stdout + gc.stderr).toMatch(/deleted [1-9]\d* blobs/)
    expect((await onEveryWorker(url, 'HEAD')).map((r) => r.status)).toEqual(Array(12).fill(404))
    expect((await onEveryWorker(url, 'GET')).map((r) => r.status)).toEqual(Array(12).fill(404))
    await push('collected/app', blob)
    expect((await onEveryWorker(url, 'GET')).map((r) => [r.status, r.bytes])).toEqual(Array(12).fill([200, blob.bytes.length]))
  })
})
