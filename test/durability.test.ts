/**
 * A crash must not leave a name pointing at bytes that never reached the disk. What can be checked
 * without crashing a machine: the order of system calls, seen by strace. With fsync on, the bytes
 * of a blob or manifest are fdatasync'ed before the rename that makes them visible.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT, requirePart } from './support/processes.js'

const STRACE = '/usr/bin/strace'
const available = requirePart(existsSync(STRACE), 'strace (to watch the order of fdatasync and rename)', 'apt-get install strace')
const work = mkdtempSync(join(tmpdir(), 'enlil-durability-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Call { name: string; args: string; result: string }

/** Runs a few driver writes under strace; resolves to the file-system calls, in order. */
async function traced(fsync: boolean): Promise<Call[]> {
  const root = mkdtempSync(join(work, 'store-'))
  const script = join(work, `writes-${fsync}.mjs`)
  writeFileSync(script, [
    `import { Readable } from 'node:stream'`,
    `import { createFilesystemDriver } from ${JSON.stringify(join(ROOT, 'dist/storage/filesystem.js'))}`,
    `const driver = createFilesystemDriver(${JSON.stringify(root)}, { fsync: ${fsync} })`,
    // A manifest or tag (putContent), and an upload placed at its content address (move).
    `await driver.putContent('manifests/m1', 'manifest bytes')`,
    `await driver.append('uploads/u1/data', Readable.from([Buffer.alloc(70000, 7)]))`,
    `await driver.move('uploads/u1/data', 'blobs/b1/data')`,
  ].join('\n'))
  const log = join(work, `strace-${fsync}.log`)
  await promisify(execFile)(STRACE, ['-f', '-qq', '-o', log, '-e', 'trace=openat,fdatasync,fsync,rename,renameat,renameat2', process.execPath, script], { timeout: 60_000 })
  return readFileSync(log, 'utf8').split('\n').flatMap((line) => {
    const m = /^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line)
    return m ? [{ name: m[1]!, args: m[2]!, result: m[3]! }] : []
  })
}

/** The index of the first call matching, or -1. */
const find = (calls: Call[], test: (c: Call) => boolean, from = 0) => calls.findIndex((c, i) => i >= from && test(c))

describe.runIf(available)('durable writes on the filesystem store', () => {
  it('the bytes of a manifest and of a placed blob are synced before their name appears', async () => {
    const calls = await traced(true)
    // putContent: a temporary file, synced, then renamed onto the name.
    // (The first try fails with ENOENT: the folder is made then.)
    const openTmp = find(calls, (c) => c.name === 'openat' && c.args.includes('manifests/m1.tmp-') && !c.result.startsWith('-'))
    expect(openTmp).toBeGreaterThanOrEqual(0)
    const tmpFd = calls[openTmp]!.result
    const syncTmp = find(calls, (c) => c.name === 'fdatasync' && c.args === tmpFd, openTmp)
    const renameTmp = find(calls, (c) => c.name.startsWith('rename') && c.args.includes('manifests/m1"'), openTmp)
    expect(syncTmp).toBeGreaterThan(openTmp)
    expect(renameTmp).toBeGreaterThan(syncTmp)
    // move: the upload's data is synced, then renamed to the content address.
    const renameBlob = find(calls, (c) => c.name.startsWith('rename') && c.args.includes('blobs/b1/data'))
    const openData = calls.findLastIndex((c, i) => i < renameBlob && c.name === 'openat' && c.args.includes('uploads/u1/data') && c.args.includes('O_RDONLY'))
    expect(openData).toBeGreaterThanOrEqual(0)
    const syncData = find(calls, (c) => c.name === 'fdatasync' && c.args === calls[openData]!.result, openData)
    expect(syncData).toBeGreaterThan(openData)
    expect(syncData).toBeLessThan(renameBlob)
  }, 90_000)

  it('with fsync off, nothing is synced', async () => {
    const calls = await traced(false)
    expect(find(calls, (c) => c.name.startsWith('rename') && c.args.includes('blobs/b1/data'))).toBeGreaterThanOrEqual(0)
    expect(calls.filter((c) => c.name === 'fdatasync' || c.name === 'fsync')).toEqual([])
  }, 90_000)
})
