import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createMetadataOps, createStallGuard, type MetadataMode } from './fs-metadata.js'

const root = mkdtempSync(join(tmpdir(), 'enlil-fs-metadata-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let serial = 0
const folder = () => join(root, `case-${serial++}`)

describe.each<MetadataMode>(['sync', 'async', 'auto'])('metadata operations (%s)', (mode) => {
  it('write, read, stat, rename, unlink and rmdir a file; failures reject with the errno code', async () => {
    const ops = createMetadataOps({ mode })
    const dir = folder()
    await expect(ops.writeFile(`${dir}/a/link`, 'x')).rejects.toMatchObject({ code: 'ENOENT' })
    await ops.mkdirp(`${dir}/a`)
    await ops.writeFile(`${dir}/a/link`, 'sha256:abc', { exclusive: true })
    await expect(ops.writeFile(`${dir}/a/link`, 'other', { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' })
    await ops.writeFile(`${dir}/a/link`, 'sha256:def', { durable: true })
    await ops.flush(`${dir}/a/link`)
    expect((await ops.readFile(`${dir}/a/link`)).toString()).toBe('sha256:def')
    expect((await ops.stat(`${dir}/a/link`))?.size).toBe(10)
    await ops.rename(`${dir}/a/link`, `${dir}/a/moved`)
    expect(await ops.stat(`${dir}/a/link`)).toBeUndefined()
    await expect(ops.stat(`${dir}/a/moved/below`)).rejects.toMatchObject({ code: 'ENOTDIR' })
    await expect(ops.rmdir(`${dir}/a`)).rejects.toMatchObject({ code: 'ENOTEMPTY' })
    await ops.unlink(`${dir}/a/moved`)
    await ops.rmdir(`${dir}/a`)
    await expect(ops.readFile(`${dir}/a/moved`)).rejects.toMatchObject({ code: 'ENOENT' })
    // auto may move to the pool on a loaded machine; the other two never change.
    if (mode !== 'auto') expect(ops.usingThreadPool).toBe(mode === 'async')
  })
})

describe('auto mode on a slow disk', () => {
  const limits = { stallMs: 50, slowAverageMs: 2, cooldownMs: 60_000 }

  it('a call slower than the stall limit moves to the thread pool until the cooldown ends', () => {
    const guard = createStallGuard(limits)
    expect(guard.allowsSync(0)).toBe(true)
    expect(guard.record(0.1, 0)).toBeUndefined()
    expect(guard.record(80, 1_000)).toBe('one call took 80 ms')
    expect(guard.allowsSync(30_000)).toBe(false)
    expect(guard.allowsSync(61_001)).toBe(true)
    // A fresh start: the slow call is forgotten.
    expect(guard.record(0.1, 61_002)).toBeUndefined()
  })

  it('calls each tolerable but slow on average switch too; fast ones never do', () => {
    const slow = createStallGuard(limits)
    let reason: string | undefined
    let calls = 0
    while (!reason && calls < 1_000) reason = slow.record(5, calls++)
    expect(reason).toMatch(/^calls averaged 2\.\d ms$/)
    expect(calls).toBeLessThan(20)
    const fast = createStallGuard(limits)
    for (let i = 0; i < 1_000; i++) expect(fast.record(0.3, i)).toBeUndefined()
    expect(fast.allowsSync(1_000)).toBe(true)
  })

  it('the operations keep working after the switch, and say so once', async () => {
    const reasons: string[] = []
    const ops = createMetadataOps({ mode: 'auto', stallMs: -1, onSlow: (r) => reasons.push(r) })
    const dir = folder()
    await ops.mkdirp(dir)
    expect(ops.usingThreadPool).toBe(true)
    await ops.writeFile(`${dir}/f`, 'x')
    expect((await ops.readFile(`${dir}/f`)).toString()).toBe('x')
    expect(reasons).toHaveLength(1)
  })
})
