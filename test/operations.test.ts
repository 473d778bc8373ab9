/** Read-only mode and quotas on the filesystem store (the S3 twin is s3-operations.test.ts). */
import { randomBytes } from 'node:crypto'
import { afterAll } from 'vitest'
import { createFilesystemDriver } from '../src/storage/filesystem.js'
import { describeOperations } from './support/operations-suite.js'
import { removeDir, tempDir } from './support/processes.js'

const root = tempDir('operations')
afterAll(() => removeDir(root))

describeOperations('filesystem', () => createFilesystemDriver(root), () => `ops-${randomBytes(4).toString('hex')}`)
