/**
 * One writer per upload session, across processes: two enlil processes on one folder, and two on
 * one S3 bucket (Ceph RGW). Two PATCHes with the same Content-Range sent at once to different
 * processes: exactly one is appended (202), the other gets 416 with the Range; the upload then
 * completes with the right digest. A writer killed mid-PATCH doesn't hold the session forever (on
 * one machine its death is seen at once; elsewhere after its lease, 6 s here: see the unit tests).
 */
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, type Running, startEnlil, tempDir } from './support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3 } from './support/s3.js'

const s3 = requireS3()
const LEASE_MS = 6000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Answer { status: number; range?: string }

/**
 * A PATCH whose body goes out in `pieces` pieces `delay` ms apart, so that two of them overlap for
 * real; stops sending once an answer arrived (a refusal comes before the body is read).
 */
function slowPatch(base: string, path: string, bytes: Buffer, start: number | undefined, pieces = 8, delay = 40): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) }
    if (start !== undefined) headers['Content-Range'] = `${start}-${start + bytes.length - 1}`
    let answered = false
    const req = request(`${base}${path}`, { method: 'PATCH', headers, agent: false }, (res) => {
      answered = true
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, range: res.headers.range }))
    })
    req.on('error', (err) => { if (!answered) reject(err) })
    const size = Math.ceil(bytes.length / pieces)
    // The head first: a refusal comes before the body is read, and writing into it would break the pipe.
    req.flushHeaders()
    void (async () => {
      await sleep(100)
      for (let o = 0; o < bytes.length && !answered; o += size) {
        req.write(bytes.subarray(o, o + size))
        await sleep(delay)
      }
      if (!answered) req.end()
    })()
  })
}

/** The size a Range says (`0-0` is also what an empty session says: the tests avoid that). */
const rangeEnd = (range: string | null | undefined) => Number(range?.split('-')[1] ?? -1) + 1
const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

function writerScenarios(label: string, nodes: () => Running[]) {
  const url = (i: number) => nodes()[i % 2]!.url

  it(`${label}: two PATCHes with one Content-Range on two processes at once: one 202, one 416 with the Range; the upload completes`, async () => {
    const post = await fetch(`${url(0)}/v2/fence/app/blobs/uploads/`, { method: 'POST' })
    expect(post.status).toBe(202)
    const path = new URL(post.headers.get('location')!).pathname
    const chunks: Buffer[] = []
    let offset = 0
    for (let round = 0; round < 4; round++) {
      const chunk = randomBytes(400 * 1024 + round)
      const answers = await Promise.all([slowPatch(url(round), path, chunk, offset), slowPatch(url(round + 1), path, chunk, offset)])
      expect(answers.map((a) => a.status).sort()).toEqual([202, 416])
      const won = answers.find((a) => a.status === 202)!
      const lost = answers.find((a) => a.status === 416)!
      chunks.push(chunk)
      offset += chunk.length
      expect(won.range).toBe(`0-${offset - 1}`)
      // The Range of the refusal is what the session held then: the start, or more.
      expect(rangeEnd(lost.range)).toBeGreaterThanOrEqual(offset - chunk.length)
      expect(rangeEnd(lost.range)).toBeLessThanOrEqual(offset)
      // Both processes report the same size now.
      for (const i of [0, 1]) expect((await fetch(`${url(i)}${path}`)).headers.get('range')).toBe(`0-${offset - 1}`)
    }
    const whole = Buffer.concat(chunks)
    const put = await fetch(`${url(1)}${path}?digest=${sha256(whole)}`, { method: 'PUT' })
    expect(put.status).toBe(201)
    const pulled = Buffer.from(await (await fetch(`${url(0)}/v2/fence/app/blobs/${sha256(whole)}`)).arrayBuffer())
    expect(sha256(pulled)).toBe(sha256(whole))
  })

  it(`${label}: a PATCH on a session another process is streaming to, from the Range it shows, gets 416`, async () => {
    const post = await fetch(`${url(0)}/v2/fence/app/blobs/uploads/`, { method: 'POST' })
    const path = new URL(post.headers.get('location')!).pathname
    const long = randomBytes(1024 * 1024)
    const streaming = slowPatch(url(0), path, long, undefined, 32, 40)
    await sleep(400)
    const seen = rangeEnd((await fetch(`${url(1)}${path}`)).headers.get('range'))
    const second = await slowPatch(url(1), path, randomBytes(1000), seen, 1, 0)
    expect(second.status).toBe(416)
    expect((await streaming).status).toBe(202)
    const put = await fetch(`${url(1)}${path}?digest=${sha256(long)}`, { method: 'PUT' })
    expect(put.status).toBe(201)
  })
}

/** Kills the process `victim` mid-PATCH, then continues the upload on `survivor` once the lease ran out. */
async function killedWriter(victim: Running, survivor: Running): Promise<void> {
  const post = await fetch(`${survivor.url}/v2/fence/killed/blobs/uploads/`, { method: 'POST' })
  const path = new URL(post.headers.get('location')!).pathname
  const blob = randomBytes(3 * 1024 * 1024)
  // A first chunk, so that the Range is never the ambiguous 0-0 of an empty session.
  expect((await slowPatch(survivor.url, path, blob.subarray(0, 1000), 0, 1, 0)).status).toBe(202)
  const patch = slowPatch(victim.url, path, blob.subarray(1000, 2 * 1024 * 1024), 1000, 64, 20)
  patch.catch(() => {})
  await sleep(400)
  await victim.stop('SIGKILL')
  // Whatever the dead writer stored stays. Its claim names a process of this machine that is gone,
  // so it no longer holds the session (a writer on another machine would hold it for its lease).
  const kept = rangeEnd((await fetch(`${survivor.url}${path}`)).headers.get('range'))
  expect(kept).toBeGreaterThanOrEqual(1000)
  const rest = blob.subarray(kept)
  let answer: Answer = { status: 0 }
  for (let i = 0; i < 40 && answer.status !== 202; i++) {
    if (i > 0) await sleep(250)
    answer = await slowPatch(survivor.url, path, rest, kept, 1, 0)
  }
  expect(answer.status).toBe(202)
  expect(answer.range).toBe(`0-${blob.length - 1}`)
  const put = await fetch(`${survivor.url}${path}?digest=${sha256(blob)}`, { method: 'PUT' })
  expect(put.status).toBe(201)
}

describe('one writer per session: two processes on one folder', () => {
  const dir = tempDir('writers')
  let nodes: Running[] = []
  // One process each (no workers), so that kill -9 kills the one writing.
  const env = { ENLIL_WORKERS: '1', ENLIL_STORAGE_MAINTENANCE_UPLOADWRITERLEASE: `${LEASE_MS}ms` }
  beforeAll(async () => {
    nodes = await Promise.all([0, 1].map(() => startEnlil(join(dir, 'data'), env)))
  })
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    removeDir(dir)
  })
  writerScenarios('filesystem', () => nodes)
  it('filesystem: a writer killed mid-PATCH does not block the session', () => killedWriter(nodes[0]!, nodes[1]!))
})

describe.skipIf(!s3)('one writer per session: two processes on one S3 bucket', () => {
  const bucket = `writers-${randomBytes(4).toString('hex')}`
  let nodes: Running[] = []
  beforeAll(async () => {
    await createBucket(bucket)
    const env = { ...enlilS3Environment(bucket), REGISTRY_STORAGE_S3_CHUNKSIZE: String(5 * 1024 * 1024), ENLIL_WORKERS: '1', ENLIL_STORAGE_MAINTENANCE_UPLOADWRITERLEASE: `${LEASE_MS}ms` }
    nodes = await Promise.all([0, 1].map(() => startEnlil('/nonexistent-fs-root', env)))
  })
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    await deleteBucket(bucket)
  })
  writerScenarios('s3', () => nodes)
  it('s3: a writer killed mid-PATCH does not block the session', () => killedWriter(nodes[0]!, nodes[1]!))
})
