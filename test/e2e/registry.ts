/**
 * The end-to-end matrix: enlil on each store (a folder, a bucket on the test run's Ceph RGW), with
 * auth off and with its own token service on. Each client suite runs its flows in every cell.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import bcrypt from 'bcryptjs'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3, s3Client } from '../support/s3.js'

export interface Cell {
  store: 'filesystem' | 's3'
  auth: 'none' | 'token'
}

export const CELLS: Cell[] = [
  { store: 'filesystem', auth: 'none' },
  { store: 'filesystem', auth: 'token' },
  { store: 's3', auth: 'none' },
  { store: 's3', auth: 'token' },
]

export const cellName = (cell: Cell) => `${cell.store}, auth ${cell.auth}`

/** Whether the S3 cells can run here (announced, or a failure under CI=true, by requireS3). */
export const s3Available = Boolean(requireS3())

export const USER = 'alice'
export const PASSWORD = 'e2e alice password'

export interface Registry {
  cell: Cell
  /** A folder of this registry's own (its data, when on the filesystem), removed by stop(). */
  dir: string
  url: string
  /** host:port, as clients name the registry */
  host: string
  /** Credentials when auth is on. */
  credentials?: { user: string; password: string }
  enlil: Running
  /** Digests of the blobs stored at their content address (dedup is asserted on this). */
  storedBlobs(): Promise<string[]>
  stop(): Promise<void>
}

const BLOBS = 'docker/registry/v2/blobs/'

/** Starts enlil for a cell, in a fresh folder (named after `prefix`) or a fresh bucket. */
export async function startRegistry(cell: Cell, prefix: string): Promise<Registry> {
  const dir = tempDir(prefix)
  const env: Record<string, string> = { REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' }
  if (cell.auth === 'token') {
    writeFileSync(join(dir, 'users'), `${USER}:${bcrypt.hashSync(PASSWORD, 8)}\n`)
    Object.assign(env, { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users') })
  }
  const bucket = cell.store === 's3' ? `e2e-${randomBytes(5).toString('hex')}` : undefined
  if (bucket) {
    await createBucket(bucket)
    Object.assign(env, enlilS3Environment(bucket))
  }
  const root = join(dir, 'data')
  const enlil = await startEnlil(root, env)
  return {
    cell, dir, enlil, url: enlil.url, host: new URL(enlil.url).host,
    credentials: cell.auth === 'token' ? { user: USER, password: PASSWORD } : undefined,
    async storedBlobs() {
      if (!bucket) return listFolderBlobs(join(root, BLOBS))
      const digests: string[] = []
      let token: string | undefined
      for (let page = 0; page < 1000; page++) {
        const res = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: BLOBS, ContinuationToken: token }))
        for (const o of res.Contents ?? []) {
          const m = /blobs\/(\w+)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/.exec(o.Key!)
          if (m) digests.push(`${m[1]}:${m[2]}`)
        }
        token = res.NextContinuationToken
        if (!token) break
      }
      return digests
    },
    async stop() {
      await enlil.stop()
      if (bucket) await deleteBucket(bucket)
      removeDir(dir)
    },
  }
}

function listFolderBlobs(blobs: string): string[] {
  const digests: string[] = []
  if (!existsSync(blobs)) return digests
  for (const alg of readdirSync(blobs)) {
    for (const prefix of readdirSync(join(blobs, alg))) {
      for (const hex of readdirSync(join(blobs, alg, prefix))) {
        if (existsSync(join(blobs, alg, prefix, hex, 'data'))) digests.push(`${alg}:${hex}`)
      }
    }
  }
  return digests
}

/** The cells that can run here: S3 ones only with an S3 server. */
export function runnableCells(): Cell[] {
  return CELLS.filter((c) => c.store !== 's3' || s3Available)
}
