/**
 * An interrupted PATCH on S3 keeps every multipart part that completed (5 MiB parts here): the
 * session's Range says so at once, and the upload resumes from there, on the same process after a
 * cut connection, or on another instance after the writing process was killed with kill -9.
 */
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Running, startEnlil } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()
const MiB = 1024 * 1024
const PART = 5 * MiB
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const rangeEnd = (range: string | null) => Number(range?.split('-')[1] ?? -1) + 1

/**
 * A PATCH announcing the whole blob that sends `sent` bytes of it and leaves the connection open;
 * `cut()` then drops it the way a client that goes away does.
 */
function hangingPatch(base: string, path: string, blob: Buffer, sent: number): Promise<{ cut: () => void }> {
  const url = new URL(base)
  return new Promise((done, fail) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(`PATCH ${path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${blob.length}\r\n\r\n`)
      socket.write(blob.subarray(0, sent), () => done({ cut: () => socket.destroy() }))
    })
    socket.on('error', fail)
  })
}

/** Polls the session's Range (bounded) until it reaches `size`; resolves to the last size seen. */
async function rangeReaches(base: string, path: string, size: number): Promise<number> {
  let seen = 0
  for (let i = 0; i < 200 && seen < size; i++) {
    seen = rangeEnd((await fetch(`${base}${path}`)).headers.get('range'))
    if (seen < size) await sleep(50)
  }
  return seen
}

async function finish(base: string, path: string, blob: Buffer, kept: number): Promise<void> {
  const rest = await fetch(`${base}${path}`, {
    method: 'PATCH', body: blob.subarray(kept),
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${kept}-${blob.length - 1}` },
  })
  expect(rest.status).toBe(202)
  expect(rest.headers.get('range')).toBe(`0-${blob.length - 1}`)
  const put = await fetch(`${base}${path}?digest=${sha256(blob)}`, { method: 'PUT' })
  expect(put.status).toBe(201)
  const pulled = Buffer.from(await (await fetch(`${base}/v2/cut/app/blobs/${sha256(blob)}`)).arrayBuffer())
  expect(pulled.length).toBe(blob.length)
  expect(sha256(pulled)).toBe(sha256(blob))
}

describe.skipIf(!s3)('an interrupted PATCH on S3', () => {
  const bucket = `interrupted-${randomBytes(4).toString('hex')}`
  let nodes: Running[] = []
  beforeAll(async () => {
    await createBucket(bucket)
    // One process each, so that kill -9 kills the one writing; a shorter lease than the default.
    const env = { ...enlilS3Environment(bucket), REGISTRY_STORAGE_S3_CHUNKSIZE: String(PART), ENLIL_WORKERS: '1', ENLIL_STORAGE_MAINTENANCE_UPLOADWRITERLEASE: '6s' }
    nodes = await Promise.all([0, 1].map(() => startEnlil('/nonexistent-fs-root', env)))
  })
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    await deleteBucket(bucket)
  })

  async function startUpload(base: string): Promise<string> {
    const res = await fetch(`${base}/v2/cut/app/blobs/uploads/`, { method: 'POST' })
    expect(res.status).toBe(202)
    return new URL(res.headers.get('location')!).pathname
  }

  it('a cut connection keeps the parts that completed; the upload resumes from the Range and verifies', async () => {
    const [node] = nodes
    const blob = randomBytes(4 * PART + 123)
    const path = await startUpload(node!.url)
    // Two parts and 2 MiB of a third arrive, then the client goes away.
    const patch = await hangingPatch(node!.url, path, blob, 2 * PART + 2 * MiB)
    // The parts are in the session while the request still runs (what a kill -9 would leave)...
    expect(await rangeReaches(node!.url, path, 2 * PART)).toBe(2 * PART)
    patch.cut()
    await sleep(300)
    // ...and after it broke off: exactly the completed parts; the 2 MiB held in memory are lost.
    const status = await fetch(`${node!.url}${path}`)
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe(`0-${2 * PART - 1}`)
    await finish(node!.url, path, blob, 2 * PART)
  })

  it('after kill -9 of the writing process another instance continues from the completed parts', async () => {
    const [victim, survivor] = nodes
    const blob = randomBytes(3 * PART + 4567)
    const path = await startUpload(survivor!.url)
    const patch = await hangingPatch(victim!.url, path, blob, 2 * PART + MiB)
    expect(await rangeReaches(survivor!.url, path, 2 * PART)).toBe(2 * PART)
    await victim!.stop('SIGKILL')
    patch.cut()
    expect((await fetch(`${survivor!.url}${path}`)).headers.get('range')).toBe(`0-${2 * PART - 1}`)
    // The dead writer's claim no longer holds the session: at once on one machine, after its lease
    // (6 s here) from another; until then the answer is 416.
    let kept = 0
    for (let i = 0; i < 40 && kept === 0; i++) {
      if (i > 0) await sleep(250)
      const res = await fetch(`${survivor!.url}${path}`, {
        method: 'PATCH', body: blob.subarray(2 * PART, 2 * PART + 1000),
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${2 * PART}-${2 * PART + 999}` },
      })
      if (res.status === 202) kept = 2 * PART + 1000
      else expect(res.status).toBe(416)
    }
    expect(kept).toBe(2 * PART + 1000)
    await finish(survivor!.url, path, blob, kept)
  })
})
