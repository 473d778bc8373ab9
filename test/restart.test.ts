/**
 * Nothing in memory is the only copy of an upload: a process killed mid-upload leaves no partial blob
 * at a content address, and another process continues and finishes the upload.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import { getBytes, randomBlob } from './support/oci-client.js'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'

const dirs: string[] = []
const running: Running[] = []
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')))
  dirs.forEach(removeDir)
})

async function start(root: string): Promise<Running> {
  const r = await startEnlil(root)
  running.push(r)
  return r
}

function blobFiles(root: string): string[] {
  const base = join(root, 'docker/registry/v2/blobs/sha256')
  try {
    return readdirSync(base).flatMap((prefix) => readdirSync(join(base, prefix)))
  } catch {
    return []
  }
}

describe('uploads survive a restart', () => {
  it('an upload started in one process is finished by another', async () => {
    const root = tempDir('restart')
    dirs.push(root)
    const blob = randomBlob(3 * 1024 * 1024 + 17)
    const first = await start(root)
    const post = await fetch(`${first.url}/v2/restart/app/blobs/uploads/`, { method: 'POST' })
    expect(post.status).toBe(202)
    const path = new URL(post.headers.get('location')!).pathname
    const half = 1024 * 1024
    const patch = await fetch(`${first.url}${path}`, { method: 'PATCH', body: blob.bytes.subarray(0, half), headers: { 'Content-Range': `0-${half - 1}` } })
    expect(patch.status).toBe(202)
    await first.stop('SIGKILL')

    const second = await start(root)
    const status = await fetch(`${second.url}${path}`)
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe(`0-${half - 1}`)
    const rest = await fetch(`${second.url}${path}`, { method: 'PATCH', body: blob.bytes.subarray(half), headers: { 'Content-Range': `${half}-${blob.bytes.length - 1}` } })
    expect(rest.status).toBe(202)
    // The wrong digest is refused and the upload stays; the right one finishes it.
    const wrong = await fetch(`${second.url}${path}?digest=sha256:${'0'.repeat(64)}`, { method: 'PUT' })
    expect(wrong.status).toBe(400)
    expect(((await wrong.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DIGEST_INVALID')
    const put = await fetch(`${second.url}${path}?digest=${blob.digest}`, { method: 'PUT' })
    expect(put.status).toBe(201)
    const pulled = await getBytes(`${second.url}/v2/restart/app/blobs/${blob.digest}`)
    expect(createHash('sha256').update(pulled.bytes).digest('hex')).toBe(blob.digest.slice(7))
  })

  it('a process killed in the middle of a streamed PATCH leaves no blob, and the upload resumes from what arrived', async () => {
    const root = tempDir('crash')
    dirs.push(root)
    const blob = randomBlob(8 * 1024 * 1024)
    const first = await start(root)
    const post = await fetch(`${first.url}/v2/crash/app/blobs/uploads/`, { method: 'POST' })
    const path = new URL(post.headers.get('location')!).pathname

    // Stream the first 5 MiB slowly, kill the server while the request is still open.
    const sent = 5 * 1024 * 1024
    await new Promise<void>((resolve) => {
      const req = request(`${first.url}${path}`, { method: 'PATCH', headers: { 'Transfer-Encoding': 'chunked' } })
      req.on('error', () => resolve())
      req.on('response', () => resolve())
      req.write(blob.bytes.subarray(0, sent), () => {
        setTimeout(() => void first.stop('SIGKILL').then(() => setTimeout(() => req.destroy(), 100)), 300)
      })
    })
    expect(blobFiles(root)).toEqual([])

    const second = await start(root)
    // The killed primary's worker, which received the PATCH, may outlive it for a moment: until it
    // is gone it holds the session (416), as any writer does; a client then resumes from the Range.
    let put: Response | undefined
    for (let attempt = 0; attempt < 50 && put?.status !== 201; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 200))
      const status = await fetch(`${second.url}${path}`)
      expect(status.status).toBe(204)
      const received = Number(status.headers.get('range')!.split('-')[1]) + 1
      expect(received).toBeGreaterThan(0)
      expect(received).toBeLessThanOrEqual(sent)
      put = await fetch(`${second.url}${path}?digest=${blob.digest}`, {
        method: 'PUT', body: blob.bytes.subarray(received),
        headers: { 'Content-Range': `${received}-${blob.bytes.length - 1}`, 'Content-Type': 'application/octet-stream' },
      })
      if (put.status !== 201) expect(put.status).toBe(416)
    }
    expect(put!.status).toBe(201)
    const pulled = await getBytes(`${second.url}/v2/crash/app/blobs/${blob.digest}`)
    expect(pulled.bytes.equals(blob.bytes)).toBe(true)
  })
})
