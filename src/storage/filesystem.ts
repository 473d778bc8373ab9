/** @module Filesystem driver: a folder laid out like distribution's, atomic writes by rename. */
import { constants, createReadStream } from 'node:fs'
import { type FileHandle, open, readdir, rm, stat as statInPool } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve, sep } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { AppendOffsetError, type ByteRange, type FileInfo, PathNotFoundError, StorageFullError, StorageUnavailableError, type StorageDriver } from './driver.js'
import { DEFAULT_BATCHES, writeBatched } from './batched-write.js'
import { createMetadataOps, type MetadataOptions } from './fs-metadata.js'

/** Bigger reads than Node's 64 KiB default: fewer syscalls and event-loop turns per pulled MiB. */
const READ_CHUNK = 512 * 1024

/**
 * Blobs up to this size (configs, small layers: most requests of a pull) are read in one call like
 * a manifest, instead of open, stat, read and close each through the thread pool.
 */
const SMALL_READ = 256 * 1024
/** Appended bodies up to this size are gathered and written in one call (see `append`). */
const SMALL_WRITE = 256 * 1024
/** A folder's size when its entries fit in one block (ext4, XFS: a few dozen names). */
const SMALL_FOLDER_BYTES = 4096
/** A folder with at most this many files (and no folders) is deleted file by file. */
const SHALLOW_DELETE = 16

export interface FilesystemOptions {
  /** How stat, link and manifest reads and writes run (fs-metadata.ts); synchronous while the disk is fast. */
  metadata?: MetadataOptions
  /**
   * true (the default): bytes that `move` and `putContent` make visible (blobs, manifests, tags) are on
   * the disk first, so a crash can't leave a name pointing at missing bytes. Links written by `putOnce`
   * are not synced: they are checked by existence, and the journal keeps their order.
   */
  fsync?: boolean
}

export function createFilesystemDriver(rootDirectory: string, options: FilesystemOptions = {}): StorageDriver {
  const root = resolve(rootDirectory)
  const { stat, readFile, writeFile, flush, rename, link, mkdirp, rmdir, unlink, readdir: readSmallFolder } = createMetadataOps(options.metadata)
  const durable = options.fsync ?? true

  /** Keys are built by registry/paths.ts from validated names; this is the last line of defence. */
  const full = (path: string): string => {
    if (path.split('/').some((part) => part === '..' || part === '.')) throw new Error(`refusing path outside the storage root: ${path}`)
    const p = join(root, path)
    if (p !== root && !p.startsWith(root + sep)) throw new Error(`refusing path outside the storage root: ${path}`)
    return p
  }
  const tmpName = (p: string): string => `${p}.tmp-${randomBytes(6).toString('hex')}`

  /** Runs a write, creating the parent folders once when they are missing (cheaper than mkdir every time). */
  async function withParent<T>(path: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write()
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err
      await mkdirp(dirname(path))
      return write()
    }
  }

  return {
    name: 'filesystem',

    async stat(path) {
      try {
        const s = await stat(full(path)) // undefined when missing
        return s && ({ size: s.size, modifiedAt: s.mtime, isDirectory: s.isDirectory() } satisfies FileInfo)
      } catch (err) {
        if (code(err) === 'ENOTDIR') return undefined
        throw err
      }
    },

    async reader(path, range?: ByteRange) {
      const p = full(path)
      const stream = createReadStream(p, { highWaterMark: READ_CHUNK, ...(range ? { start: range.start, end: range.end } : {}) })
      // Surface a missing file as PathNotFoundError before anything is sent to the client.
      await new Promise<void>((ok, fail) => {
        stream.once('open', () => ok())
        stream.once('error', (err) => fail(code(err) === 'ENOENT' ? new PathNotFoundError(path) : err))
      })
      return stream
    },

    async copyTo(path, out: Writable, range?: ByteRange, size?: number) {
      if (size !== undefined && size <= SMALL_READ) {
        const bytes = await readFile(full(path)).catch(notFoundAs(path))
        if (bytes.length !== size) throw new Error(`${path} holds ${bytes.length} bytes, not ${size}`)
        out.end(range ? bytes.subarray(range.start, range.end + 1) : bytes)
        return
      }
      const handle = await open(full(path), 'r').catch(notFoundAs(path))
      try {
        let position = range?.start ?? 0
        const end = range ? range.end + 1 : (await handle.stat()).size
        // Two buffers, each reused once the socket has taken its bytes: no allocation per chunk, so
        // a 256 MiB pull doesn't make 512 garbage buffers for the GC (39% of the CPU when it did).
        const size = Math.min(READ_CHUNK, Math.max(1, end - position))
        const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)]
        const writing: Promise<void>[] = [Promise.resolve(), Promise.resolve()]
        // A client that goes away may leave a write callback unanswered: stop on close as well.
        let onClose!: () => void
        const closed = new Promise<never>((_, fail) => {
          onClose = () => fail(new Error('the destination closed before the copy finished'))
          out.once('close', onClose)
        })
        closed.catch(() => {})
        for (let i = 0; position < end; i ^= 1) {
          await Promise.race([writing[i], closed])
          const { bytesRead } = await handle.read(buffers[i]!, 0, Math.min(size, end - position), position)
          if (bytesRead === 0) throw new Error(`${path} ended at ${position}, before ${end}`)
          position += bytesRead
          const write = writeChunk(out, buffers[i]!.subarray(0, bytesRead))
          write.catch(() => {}) // awaited above or abandoned with `closed`: never unhandled
          writing[i] = write
        }
        await Promise.race([Promise.all(writing), closed])
        out.off('close', onClose)
        out.end()
      } finally {
        await handle.close()
      }
    },

    async writeStream(path, body: Readable) {
      const p = full(path)
      const tmp = tmpName(p)
      const handle = await withParent(p, () => open(tmp, 'wx')).catch((err: unknown) => { throw fullOr(err, path) })
      try {
        const written = await writeAndClose(handle, body, 0)
        await rename(tmp, p)
        return written
      } catch (err) {
        await rm(tmp, { force: true })
        throw fullOr(err, path)
      }
    },

    async append(path, body: Readable, options = {}) {
      const p = full(path)
      const { at, guard } = options
      try {
        // A small chunk (a config, a small layer pushed whole) is written in one call, as a link is.
        const small = await readWhole(body, SMALL_WRITE)
        if (small) {
          if (at !== undefined) {
            const size = (await stat(p))?.size ?? 0
            if (size !== at) throw new AppendOffsetError(path, at, size)
          }
          guard?.()
          await withParent(p, () => writeFile(p, small, { append: true }))
          return small.length
        }
        // Positional writes (not O_APPEND, which ignores the position) from the current end, which
        // must be `at` when given. The upload store fences writers of a session (one at a time,
        // across processes), so nobody else writes here meanwhile.
        const handle = await withParent(p, () => open(p, constants.O_WRONLY | constants.O_CREAT))
        let size: number
        try {
          size = (await handle.stat()).size
          if (at !== undefined && size !== at) throw new AppendOffsetError(path, at, size)
        } catch (err) {
          await handle.close()
          throw err
        }
        return await writeAndClose(handle, body, size, guard)
      } catch (err) {
        throw fullOr(err, path)
      }
    },

    async appendedSize(path) {
      const info = await this.stat(path)
      return info && !info.isDirectory ? info.size : undefined
    },

    async getContent(path) {
      try {
        return await readFile(full(path))
      } catch (err) {
        if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR' || code(err) === 'EISDIR') return undefined
        throw err
      }
    },

    async putContent(path, data) {
      const staged = await this.stageContent(path, data)
      await staged.publish()
    },

    async stageContent(path, data) {
      const p = full(path)
      const tmp = tmpName(p)
      const discard = () => rm(tmp, { force: true })
      try {
        await withParent(p, () => writeFile(tmp, data, { exclusive: true, durable }))
      } catch (err) {
        await discard()
        throw fullOr(err, path)
      }
      return {
        publish: async () => {
          try {
            await rename(tmp, p)
          } catch (err) {
            await discard()
            throw fullOr(err, path)
          }
        },
        discard,
      }
    },

    async putOnce(path, data) {
      const p = full(path)
      try {
        await withParent(p, () => writeFile(p, data))
      } catch (err) {
        throw fullOr(err, path)
      }
    },

    async createOnce(path, data, options) {
      // The whole content is written under a temporary name, then linked to the path: link(2)
      // fails with EEXIST when something is there, so exactly one writer wins and no reader sees
      // a partial object.
      const p = full(path)
      const tmps: string[] = []
      try {
        // The folder may go away between the two steps (a finished GC run's): both are redone.
        await withParent(p, async () => {
          const tmp = tmpName(p)
          tmps.push(tmp)
          await writeFile(tmp, data, { exclusive: true, durable: durable && !options?.transient })
          await link(tmp, p)
        })
        return true
      } catch (err) {
        if (code(err) === 'EEXIST') return false
        throw fullOr(err, path)
      } finally {
        await Promise.all(tmps.map((tmp) => unlink(tmp).catch(ignoreMissing)))
      }
    },

    async list(path) {
      try {
        return (await readdir(full(path))).filter((name) => !name.includes('.tmp-'))
      } catch (err) {
        if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return []
        throw err
      }
    },

    async move(from, to) {
      const src = full(from)
      const dst = full(to)
      try {
        // The bytes reach the disk before their new name does (ext4 and XFS journal the rename after).
        if (durable) await flush(src)
        await withParent(dst, () => rename(src, dst))
      } catch (err) {
        if (code(err) === 'ENOENT') {
          // rename reports ENOENT for a missing source and for a missing destination folder alike.
          if (!(await this.stat(from))) throw new PathNotFoundError(from)
        }
        throw err
      }
    },

    async usage(path) {
      // Depth-first with an explicit stack: no recursion limit, one folder listed at a time.
      let total = 0
      const folders = [full(path)]
      for (let visited = 0; folders.length > 0 && visited < 10_000_000; visited++) {
        const folder = folders.pop()!
        let entries
        try {
          entries = await readdir(folder, { withFileTypes: true })
        } catch (err) {
          if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') continue
          throw err
        }
        const files: Promise<number>[] = []
        for (const e of entries) {
          if (e.isDirectory()) folders.push(join(folder, e.name))
          // A walk over many files stays on the thread pool: it must not hold the event loop.
          else if (e.isFile()) files.push(statInPool(join(folder, e.name)).then((s) => s.size, () => 0))
        }
        for (const size of await Promise.all(files)) total += size
      }
      return total
    },

    async delete(path, kind) {
      const p = full(path)
      if (kind === 'file') return unlink(p).catch(ignoreMissing)
      try {
        await rmdir(p)
      } catch (err) {
        const c = code(err)
        if (c === 'ENOENT') return
        if (c === 'ENOTDIR') await unlink(p).catch(ignoreMissing)
        else if (c === 'ENOTEMPTY' || c === 'EEXIST') await deleteFolder(p)
        else throw err
      }
    },
  }

  /**
   * Deletes on hot paths are of a folder holding a file or two (a finished upload session, a link):
   * unlinking those costs a few calls, where a recursive rm stats every entry on the thread pool.
   */
  async function deleteFolder(p: string): Promise<void> {
    // A folder whose listing fits in one block is read at once; a big one is listed on the pool.
    const small = ((await stat(p))?.size ?? 0) <= SMALL_FOLDER_BYTES
    const entries = await (small ? readSmallFolder(p) : readdir(p, { withFileTypes: true })).catch((err: unknown) => {
      if (code(err) === 'ENOENT') return []
      throw err
    })
    if (entries.length > SHALLOW_DELETE || entries.some((e) => e.isDirectory())) return rm(p, { recursive: true, force: true })
    await Promise.all(entries.map((e) => unlink(join(p, e.name)).catch(ignoreMissing)))
    await rmdir(p).catch((err: unknown) => {
      if (code(err) === 'ENOTEMPTY') return rm(p, { recursive: true, force: true }) // a file arrived meanwhile
      return ignoreMissing(err)
    })
  }
}

/**
 * The whole body when it ends within `limit` bytes. Otherwise undefined, with the bytes read so far
 * put back at the front of the stream, which is paused: whoever reads it next gets all of it.
 */
function readWhole(body: Readable, limit: number): Promise<Buffer | undefined> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = []
    let total = 0
    const done = () => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      total += chunk.length
      if (total <= limit) return
      done()
      body.pause()
      for (let i = chunks.length - 1; i >= 0; i--) body.unshift(chunks[i])
      ok(undefined)
    }
    const onEnd = () => {
      done()
      ok(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total))
    }
    const onError = (err: unknown) => {
      done()
      fail(err)
    }
    const onClose = () => onError(new Error('the body ended before all of it arrived'))
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
    body.once('close', onClose)
  })
}

/**
 * Writes `body` into an open file from `start` (default: its current end), then closes it. The
 * writes have settled when this returns, so after a failure the file's size is final.
 */
async function writeAndClose(handle: FileHandle, body: Readable, start?: number, guard?: () => void): Promise<number> {
  try {
    return await writeBatched(handle, body, start ?? (await handle.stat()).size, guard ? { ...DEFAULT_BATCHES, guard } : DEFAULT_BATCHES)
  } finally {
    await handle.close()
  }
}

/** Resolves once the destination has taken the chunk (so its buffer may be reused). */
function writeChunk(out: Writable, chunk: Buffer): Promise<void> {
  return new Promise((ok, fail) => {
    out.write(chunk, (err) => (err ? fail(err) : ok()))
  })
}

/** A rejection handler: a missing file becomes PathNotFoundError for `path`. */
function notFoundAs(path: string): (err: unknown) => never {
  return (err) => {
    throw code(err) === 'ENOENT' ? new PathNotFoundError(path) : err
  }
}

function ignoreMissing(err: unknown): void {
  if (code(err) !== 'ENOENT') throw err
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code
}

/** A write's failure as the client should hear it: storage full (507), or a folder enlil may not write (503). */
function fullOr(err: unknown, path: string): unknown {
  const c = code(err)
  if (c === 'ENOSPC' || c === 'EDQUOT') return new StorageFullError(path, err)
  if (c === 'EACCES' || c === 'EPERM' || c === 'EROFS') {
    return new StorageUnavailableError(`the storage folder cannot be written (${c} at ${path}): check its owner, permissions and mount`, err)
  }
  return err
}
