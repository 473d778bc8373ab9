import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { digestOf } from '../oci/digest.js'
import { RegistryError } from '../oci/errors.js'
import type { StorageDriver } from '../storage/driver.js'
import { createFilesystemDriver } from '../storage/filesystem.js'
import { createBlobStore } from './blobs.js'
import { paths } from './paths.js'
import { createUploadWriters } from './upload-writers.js'
import { createUploadStore } from './uploads.js'

const root = mkdtempSync(join(tmpdir(), 'enlil-writers-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const driver = createFilesystemDriver(root)
let n = 0
const session = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A claim left by a writer that died `ago` ms after its last renewal (on another machine, unless `process` says). */
async function deadClaim(repo: string, id: string, offset: number, gen: number, ago: number, process?: object): Promise<void> {
  await driver.putContent(paths.uploadWriter(repo, id, offset, gen), JSON.stringify({ writer: 'dead', renewed: Date.now() - ago, process }))
}

/** The identity a process of this machine writes into its claims. */
function identity(pid: number) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return {
    boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), ns: readlinkSync('/proc/self/ns/pid'),
    pid, start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
  }
}

describe('upload writers: one per session', () => {
  // Separate instances: what two processes on one folder are.
  // Leases of seconds: long enough that a loaded machine's slow timers don't make a live claim stale.
  const a = createUploadWriters(driver, { leaseMs: 3000 })
  const b = createUploadWriters(driver, { leaseMs: 3000 })

  it('of concurrent writers at one offset exactly one holds the session, until it releases', async () => {
    const id = session()
    const holds = await Promise.all([a, b, a, b, a, b].map((w) => w.hold('app', id, 0)))
    expect(holds.filter(Boolean)).toHaveLength(1)
    await holds.find(Boolean)!.release()
    const next = await b.hold('app', id, 0)
    expect(next).toBeDefined()
    await next!.release()
  })

  it('a writer below the offset a request read (still streaming what it saw) blocks it; once released it does not', async () => {
    const id = session()
    const streaming = await a.hold('app', id, 0)
    expect(streaming).toBeDefined()
    expect(await b.hold('app', id, 4096)).toBeUndefined()
    await streaming!.release()
    const next = await b.hold('app', id, 4096)
    expect(next).toBeDefined()
    await next!.release()
  })

  it('a writer that died blocks the session for a lease at most; one of several takers wins', async () => {
    const id = session()
    await deadClaim('app', id, 0, 0, 200)
    expect(await a.hold('app', id, 0)).toBeUndefined()
    await deadClaim('app', id, 0, 0, 3500)
    const takers = await Promise.all([a, b, a, b].map((w) => w.hold('app', id, 0)))
    expect(takers.filter(Boolean)).toHaveLength(1)
    await takers.find(Boolean)!.release()
    // A stale claim below the offset doesn't block either.
    const other = session()
    await deadClaim('app', other, 0, 0, 3500)
    const above = await a.hold('app', other, 100)
    expect(above).toBeDefined()
    await above!.release()
  })

  it.skipIf(process.platform !== 'linux')('a claim of a process of this machine that is gone is taken over at once; of a running one, not', async () => {
    // A process that ran and exited: its pid names nothing now (or a later process, started later).
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(require("fs").readFileSync("/proc/self/stat","utf8")))'])
    const stat = JSON.parse(child.stdout.toString()) as string
    const gone = { ...identity(process.pid), pid: child.pid, start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] }
    const id = session()
    await deadClaim('app', id, 0, 0, 0, gone)
    const hold = await a.hold('app', id, 0)
    expect(hold).toBeDefined()
    await hold!.release()
    // This process runs: its claim holds until the lease runs out.
    const other = session()
    await deadClaim('app', other, 0, 0, 0, identity(process.pid))
    expect(await a.hold('app', other, 0)).toBeUndefined()
    // Same pid in another pid namespace (another container): nothing can be known, the lease decides.
    const elsewhere = session()
    await deadClaim('app', elsewhere, 0, 0, 0, { ...gone, ns: 'pid:[1]' })
    expect(await a.hold('app', elsewhere, 0)).toBeUndefined()
  })

  it('a long writer renews its claim, so it is never taken over while it runs', async () => {
    const id = session()
    const long = await a.hold('app', id, 0)
    // Longer than a lease: without renewals the claim would be stale now.
    await sleep(3300)
    expect(() => long!.guard()).not.toThrow()
    expect(long!.renewals()).toBeGreaterThanOrEqual(2)
    expect(await b.hold('app', id, 0)).toBeUndefined()
    await long!.release()
  })

  it('a writer that cannot renew stops itself at half a lease, before anyone may take over', async () => {
    const failing: StorageDriver = { ...driver, putContent: () => Promise.reject(new Error('store unreachable')) }
    const id = session()
    const hold = await createUploadWriters(failing, { leaseMs: 3000 }).hold('app', id, 0)
    hold!.guard()
    await sleep(1600)
    expect(() => hold!.guard()).toThrow(/could not renew its hold/)
    // Still live for the others until a whole lease passed.
    expect(await b.hold('app', id, 0)).toBeUndefined()
    await hold!.release()
  })
})

describe('upload sessions written by two processes', () => {
  const blobs = createBlobStore(driver)
  const one = createUploadStore(driver, blobs, undefined, { writerLeaseMs: 3000 })
  const two = createUploadStore(driver, createBlobStore(driver), undefined, { writerLeaseMs: 3000 })

  /** A body that sends `bytes` slowly, in pieces, so that two requests overlap for real. */
  const slow = (bytes: Buffer) => Readable.from((async function* () {
    for (let o = 0; o < bytes.length; o += 64 * 1024) {
      await sleep(20)
      yield bytes.subarray(o, o + 64 * 1024)
    }
  })())

  it('two chunks with the same start at once: one is appended, the other gets 416 with the Range; the digest verifies', async () => {
    const chunk = Buffer.alloc(512 * 1024, 7)
    const s = await one.start('app')
    for (let round = 0; round < 3; round++) {
      const [first, second] = await Promise.all([one.get('app', s.id), two.get('app', s.id)])
      const results = await Promise.allSettled([one.append(first, slow(chunk), first.size), two.append(second, slow(chunk), second.size)])
      const refused = results.filter((r) => r.status === 'rejected')
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      expect(refused).toHaveLength(1)
      const err = (refused[0] as PromiseRejectedResult).reason as RegistryError
      expect(err).toBeInstanceOf(RegistryError)
      expect(err.status).toBe(416)
      expect(err.code).toBe('BLOB_UPLOAD_INVALID')
      expect(err.response.headers?.Range).toMatch(/^0-\d+$/)
      expect((await two.get('app', s.id)).size).toBe((round + 1) * chunk.length)
    }
    const whole = Buffer.concat([chunk, chunk, chunk])
    const info = await two.complete(await two.get('app', s.id), digestOf(whole))
    expect(info.size).toBe(whole.length)
  })

  it('a PATCH after a writer died (its claim left behind) waits out the lease, then succeeds', async () => {
    const s = await one.start('app')
    await deadClaim('app', s.id, 0, 0, 1500)
    const refused = await one.append(s, Readable.from([Buffer.from('abc')]), 0).catch((e: unknown) => e as RegistryError)
    expect((refused as RegistryError).status).toBe(416)
    await sleep(1600)
    expect((await two.append(await two.get('app', s.id), Readable.from([Buffer.from('abc')]), 0)).size).toBe(3)
  })
})
