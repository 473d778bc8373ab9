/**
 * @module The storage driver interface: bytes at paths, knowing nothing about OCI.
 * Paths are relative, "/"-separated keys such as `docker/registry/v2/blobs/...`.
 */
import type { Readable, Writable } from 'node:stream'

export interface FileInfo {
  size: number
  modifiedAt: Date
  isDirectory: boolean
}

/** A key found by `scan`, relative to the folder scanned, with what the listing tells of it. */
export interface ScannedKey {
  key: string
  size: number
  modifiedAt: Date
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number
  end: number
}

export class PathNotFoundError extends Error {
  constructor(readonly path: string) {
    super(`path not found: ${path}`)
    this.name = 'PathNotFoundError'
  }
}

/** The store refused a write because it is full or over quota: never retried, reported to the client. */
export class StorageFullError extends Error {
  constructor(readonly path: string, cause?: unknown) {
    super(`storage full while writing ${path}`, { cause })
    this.name = 'StorageFullError'
  }
}

/** The store is unreachable or throttling, after retries: the client may try again later. */
export class StorageUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause })
    this.name = 'StorageUnavailableError'
  }
}

/**
 * An append found the object holding another number of bytes than its writer expected: someone
 * else appended (or the writer's view is old). Nothing was written.
 */
export class AppendOffsetError extends Error {
  constructor(readonly path: string, readonly expected: number, readonly actual: number) {
    super(`${path} holds ${actual} bytes, not the ${expected} this append continues from`)
    this.name = 'AppendOffsetError'
  }
}

/** How an append is fenced against other writers of the same object (upload sessions). */
export interface AppendOptions {
  /** The object must hold exactly this many bytes when the append starts, else AppendOffsetError. */
  at?: number
  /**
   * Called before each write that changes what the object holds (or records it); throws to stop
   * the append, e.g. when the writer's hold on the object may have lapsed. Bytes written before
   * stay, as after any other failure.
   */
  guard?: () => void
  /**
   * The body's length when the client announced it (Content-Length): a driver that cuts parts can
   * then tell its last part from the others without holding one back.
   */
  length?: number
}

export interface StagedContent {
  publish(): Promise<void>
  discard(): Promise<void>
}

export interface StorageDriver {
  readonly name: string
  /**
   * undefined when nothing is at the path. `kind: 'file'` asks about a file only: a folder there
   * may be reported as missing, which saves the S3 driver its folder listing (one request, not two).
   */
  stat(path: string, kind?: 'file'): Promise<FileInfo | undefined>
  /** Opens the bytes (or a range of them); throws PathNotFoundError. */
  reader(path: string, range?: ByteRange): Promise<Readable>
  /** Writes a whole object atomically: readers see all of it or nothing. Resolves to the bytes written. */
  writeStream(path: string, body: Readable): Promise<number>
  /**
   * Appends to an object that is being assembled (an upload's data). Bytes that arrived before a
   * failure may stay appended; `appendedSize` tells how many. Resolves to the bytes appended.
   * `reader`, `move` and `delete` work on such an object as on any other.
   */
  append(path: string, body: Readable, options?: AppendOptions): Promise<number>
  /** Size of an object assembled by `append`; undefined when nothing was appended. */
  appendedSize(path: string): Promise<number | undefined>
  /** Small objects (links, session markers): undefined when absent. */
  getContent(path: string): Promise<Buffer | undefined>
  /** Writes a small object atomically. */
  putContent(path: string, data: Uint8Array | string): Promise<void>
  /**
   * putContent in two steps, so that several writes that must appear in order can reach the disk
   * together: `stage` makes the bytes durable out of sight, `publish` makes them appear (as
   * putContent would have), `discard` drops them. A staged write is published or discarded once.
   */
  stageContent(path: string, data: Uint8Array | string): Promise<StagedContent>
  /**
   * Writes a small object whose content never changes once written (links, markers). Cheaper than
   * putContent where the store allows: a reader may briefly see it empty while it is created.
   */
  putOnce(path: string, data: Uint8Array | string): Promise<void>
  /**
   * Creates a small object only if nothing is at the path, atomically across processes and
   * instances (`If-None-Match: *` on S3, an exclusive link on disk): resolves true when this call
   * created it, false when it was there already. Readers see the whole content or nothing. The
   * one compare-and-set the registry's fences (GC decisions, upload writers) are built on.
   * `transient`: the object matters only while the processes that made it run (an upload writer's
   * claim), so it needn't survive a power cut: the filesystem skips its flush (fsync).
   */
  createOnce(path: string, data: Uint8Array | string, options?: { transient?: boolean }): Promise<boolean>
  /** Names of the direct children of a folder, unsorted; [] when it does not exist. */
  list(path: string): Promise<string[]>
  /** Moves an object; throws PathNotFoundError when the source is missing. */
  move(from: string, to: string): Promise<void>
  /**
   * Deletes an object or a whole folder; idempotent. `kind: 'file'` says the path is a small object
   * (not a folder, not appended to), which saves the S3 driver its listing (one request, not three).
   */
  delete(path: string, kind?: 'file'): Promise<void>
  /**
   * Deletes these small objects (as `delete(path, 'file')`), idempotent, in as few requests as the
   * store allows (S3: DeleteObjects, a thousand keys a request). Where absent, delete one by one.
   */
  deleteFiles?(paths: readonly string[]): Promise<void>
  /** Total bytes of the objects under a folder, recursively (quotas); 0 when it does not exist. */
  usage(path: string): Promise<number>
  /**
   * Copies the bytes (or a range) into a writable and ends it, where the store can do better than
   * piping `reader` (the filesystem reuses its read buffers instead of allocating one per chunk).
   * `size`, the whole object's when the caller knows it, lets a small one be read in one call.
   */
  copyTo?(path: string, out: Writable, range?: ByteRange, size?: number): Promise<void>
  /**
   * One page of the keys under a folder, recursively, in the store's byte order, starting after
   * `after` (a path relative to the folder): where a flat listing is cheaper than a listing per
   * folder (S3: one request for up to 1000 keys, whatever the depth, with their sizes and times).
   * `next` is the `after` of the next page; undefined at the end.
   */
  scan?(path: string, after?: string): Promise<{ entries: ScannedKey[]; next?: string }>
  /** A URL the client can fetch the bytes from directly (presigned), where the store supports it. */
  redirectUrl?(path: string): Promise<string | undefined>
}
