import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { describeStorageDriver } from './driver.contract.js'
import { createFilesystemDriver } from './filesystem.js'

const root = mkdtempSync(join(tmpdir(), 'enlil-fs-contract-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describeStorageDriver('filesystem', () => createFilesystemDriver(root))
// The same contract with every small operation on the thread pool (what `auto` falls back to).
describeStorageDriver('filesystem, metadata on the thread pool', () => createFilesystemDriver(root, { metadata: { mode: 'async' } }))
