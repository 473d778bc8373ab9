/**
 * A client that goes away mid-upload: the access log says 499 with the bytes that really arrived,
 * at info level, and no "unexpected error"; the bytes that arrived are kept (filesystem store) and
 * the upload goes on from there.
 */
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'

interface LogLine { msg: string; level?: string; method?: string; path?: string; status?: number; bytesIn?: number }

const lines = (output: string): LogLine[] => output.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
  try {
    return [JSON.parse(l) as LogLine]
  } catch {
    return []
  }
})

describe('a client that goes away mid-upload', () => {
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    dir = tempDir('client-gone')
    enlil = await startEnlil(join(dir, 'data'), { REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('is logged as 499 with the bytes received, never as an error, and its upload resumes', async () => {
    const start = await fetch(`${enlil.url}/v2/gone/app/blobs/uploads/`, { method: 'POST' })
    expect(start.status).toBe(202)
    const location = new URL(start.headers.get('location')!, enlil.url)
    const blob = randomBytes(4 * 1024 * 1024)
    const sent = 3 * 1024 * 1024
    // Announces 64 MiB, sends 3 MiB, then the connection drops.
    await new Promise<void>((done, fail) => {
      const socket = net.connect(Number(location.port), location.hostname, () => {
        socket.write(`PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: ${location.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`)
        socket.write(blob.subarray(0, sent), () => setTimeout(() => { socket.destroy(); done() }, 300))
      })
      socket.on('error', fail)
    })
    let logged: LogLine | undefined
    for (let i = 0; i < 100 && !logged; i++) {
      await new Promise((r) => setTimeout(r, 50))
      logged = lines(enlil.output()).find((l) => l.msg === 'request' && l.method === 'PATCH')
    }
    expect(logged).toMatchObject({ status: 499, level: 'info' })
    expect(logged!.bytesIn).toBeGreaterThan(0)
    expect(logged!.bytesIn).toBeLessThanOrEqual(sent)
    expect(lines(enlil.output()).filter((l) => l.level === 'error')).toEqual([])
    expect(lines(enlil.output()).some((l) => l.msg === 'client closed the request' && l.level === 'info')).toBe(true)
    // What arrived was kept: the session's Range says so, and the upload can go on from there.
    const status = await fetch(location, { method: 'GET' })
    expect(status.status).toBe(204)
    const kept = Number(status.headers.get('range')!.split('-')[1]) + 1
    // Every byte read from the connection is kept; the few the parser held when it broke are lost with it.
    expect(kept).toBeLessThanOrEqual(logged!.bytesIn!)
    expect(kept).toBeGreaterThan(logged!.bytesIn! - 256 * 1024)
    const rest = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${kept}-${blob.length - 1}` }, body: blob.subarray(kept) })
    expect(rest.status).toBe(202)
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
    const done = new URL(rest.headers.get('location')!, enlil.url)
    done.searchParams.set('digest', digest)
    expect((await fetch(done, { method: 'PUT' })).status).toBe(201)
    const pulled = Buffer.from(await (await fetch(`${enlil.url}/v2/gone/app/blobs/${digest}`)).arrayBuffer())
    expect(pulled.equals(blob)).toBe(true)
  })
})

describe('a refusal that cuts a body short is no client leaving', () => {
  let dir: string
  let enlil: Running
  beforeAll(async () => {
    dir = tempDir('quota-mid-body')
    writeFileSync(join(dir, 'enlil.yml'), 'quotas:\n  repositories: [{match: "small/*", limit: 1MiB}]\n')
    enlil = await startEnlil(join(dir, 'data'), { ENLIL_CONFIG: join(dir, 'enlil.yml'), REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  it('a streamed PATCH past a repository quota gets 507 DENIED, and is logged so', async () => {
    const start = await fetch(`${enlil.url}/v2/small/app/blobs/uploads/`, { method: 'POST' })
    expect(start.status).toBe(202)
    const location = new URL(start.headers.get('location')!, enlil.url)
    // No length announced (as skopeo streams a compressed layer): the quota cuts it mid-body.
    const chunks = Array.from({ length: 8 }, () => randomBytes(512 * 1024))
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift()
        if (next) controller.enqueue(next)
        else controller.close()
      },
    })
    const res = await fetch(location, { method: 'PATCH', body, headers: { 'Content-Type': 'application/octet-stream' }, duplex: 'half' } as RequestInit)
    expect(res.status, enlil.output().slice(-3000)).toBe(507)
    const { errors } = (await res.json()) as { errors: { code: string; message: string }[] }
    expect(errors[0]!.code).toBe('DENIED')
    expect(errors[0]!.message).toContain('quota')
    let logged: LogLine | undefined
    for (let i = 0; i < 100 && !logged; i++) {
      await new Promise((r) => setTimeout(r, 50))
      logged = lines(enlil.output()).find((l) => l.msg === 'request' && l.method === 'PATCH')
    }
    expect(logged).toMatchObject({ status: 507 })
  })
})
