/**
 * @module S3 driver (Tigris, AWS, MinIO, Ceph RGW): keys laid out like distribution's s3 driver.
 *
 * Appendable objects (upload data) are an S3 multipart upload plus two small objects beside the key:
 * `<key>.state` (JSON: upload id, parts, tail size and name) and `<key>.tail-<id>`, the bytes not
 * yet in a part (`<key>.tail` in states written before tails had ids).
 * Parts are at most `partSize` plus 5 MiB and, but the last, at least 5 MiB (S3's minimum): an append
 * of 5 MiB or more ends on a part of its own, so the next one reads no tail back; only an append
 * under 5 MiB leaves a tail. With `equalParts` (R2) every part but the last is exactly `partSize`
 * and an append's last bytes short of a part are the tail. Memory per append is bounded by
 * partSize × (queueSize + 2). A multipart upload that reaches `maxParts` becomes a segment object
 * and the upload goes on in a new one: there is no size ceiling. All state is in the bucket, so any
 * instance continues an upload. Reading or moving an appendable object completes the multipart
 * upload first (assembling segments with UploadPartCopy).
 *
 * The state says exactly which bytes are durable, in order: the parts it lists, then `tail` bytes of
 * `<key>.tail`. An append records each part in the state as soon as it and every part before it
 * are uploaded (at most one small PUT per part, written one at a time, newest last), so an append that
 * breaks off (or a process killed mid-append) keeps every part that completed; only the bytes
 * still in memory, short of a part, are lost. A new tail is written under a new name before the
 * state that names it, and the old one deleted after, so state and tail always agree.
 *
 * The SDK retries a request until its headers arrive; a body that breaks off after that (a reset,
 * a premature close) is ours to retry: small objects are read again whole, blob streams resume with
 * a ranged GET where they stopped. When the store keeps failing, StorageUnavailableError (a 503).
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectsCommand, GetObjectCommand, type GetObjectCommandOutput, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand,
  S3Client, type S3ClientConfig, S3ServiceException, UploadPartCommand, UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { randomBytes } from 'node:crypto'
import { finished, PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  AppendOffsetError, type ByteRange, type FileInfo, PathNotFoundError, StorageFullError, StorageUnavailableError, type StorageDriver,
} from './driver.js'

const MiB = 1024 * 1024
export const MIN_PART_SIZE = 5 * MiB
/** S3 refuses single copies above 5 GiB: larger objects are copied in parts. */
const MAX_SINGLE_COPY = 5 * 1024 * MiB
const MAX_PARTS = 10_000
/** The requests `consistent` marks: small objects and listings (not multipart parts, not presigned URLs of blobs). */
const CONSISTENT_COMMANDS = new Set(['HeadObjectCommand', 'GetObjectCommand', 'PutObjectCommand', 'ListObjectsV2Command', 'DeleteObjectsCommand', 'CopyObjectCommand'])
/** Bounds every listing loop: 10 million keys under one prefix at 1000 a page. */
const MAX_LIST_PAGES = 10_000
/**
 * A small object is read at most BODY_ATTEMPTS times when its body breaks off; a blob stream fails at
 * the BODY_ATTEMPTS-th break in a row with less than RESUME_PROGRESS read between them (a download
 * that keeps making progress resumes as often as it breaks).
 */
const BODY_ATTEMPTS = 5
const RESUME_PROGRESS = MiB

export interface S3DriverOptions {
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle?: boolean
  accessKeyId?: string
  secretAccessKey?: string
  /** Key prefix (distribution's rootdirectory). */
  rootDirectory?: string
  /** Size of multipart parts; at least 5 MiB. */
  partSize?: number
  /** Parts uploaded concurrently by one request. */
  queueSize?: number
  /**
   * The store wants every part but the last of one size (Cloudflare R2): a request's last bytes
   * short of a part wait in a tail object. Otherwise a request of 5 MiB or more ends on a part.
   */
  equalParts?: boolean
  /**
   * Tigris: moving a finished upload to its digest's key is a CopyObject with `X-Tigris-Rename: true`
   * (a rename in metadata, constant time) and the delete after it. A store that ignores the header
   * copies, and the delete still removes the source.
   */
  rename?: boolean
  /**
   * Tigris, buckets served from several regions: `X-Tigris-Consistent: true` on every request but
   * reads of bytes (`…/data`) and multipart parts, so tags, links and upload state are read as last
   * written anywhere. Each such request goes to the bucket's leader region.
   */
  consistent?: boolean
  /** Parts per multipart upload before it rolls over into a segment (S3: 10,000; tests lower it). */
  maxParts?: number
  /** Server-side encryption (AES256) on every object written. */
  encrypt?: boolean
  /** Presigned GETs for blob pulls; off: enlil streams the bytes itself. */
  redirect?: boolean
  presignExpirySeconds?: number
  /** Extra client settings (tests: a request handler resolving virtual hosts locally). */
  client?: Partial<S3ClientConfig>
  /** Told of every request sent to the store (retries included), by S3 operation name (metrics). */
  onRequest?: (operation: string) => void
}

interface AppendState {
  /**
   * Completed multipart uploads that hold the first bytes, in order, at `<key>.seg-<id>`: an upload
   * that reached maxParts parts goes on in a new one. They are assembled with UploadPartCopy.
   */
  segments?: { id: string; size: number }[]
  uploadId?: string
  /** The multipart upload is at `<key>.seg-<uploadKey>` (after a rollover), not at `<key>`. */
  uploadKey?: string
  parts: { n: number; etag: string; size: number }[]
  /** Bytes in the tail object. */
  tail: number
  /** Names the tail object, `<key>.tail-<tailId>`; absent: `<key>.tail`. */
  tailId?: string
  /** Set once the multipart upload was completed into `<key>` (to read it back). */
  completed?: number
}

export function createS3Driver(options: S3DriverOptions): StorageDriver {
  const partSize = Math.max(MIN_PART_SIZE, options.partSize ?? 10 * MiB)
  const queueSize = Math.max(1, options.queueSize ?? 2)
  const equalParts = options.equalParts ?? false
  const maxParts = Math.min(MAX_PARTS, Math.max(2, options.maxParts ?? MAX_PARTS))
  const bucket = options.bucket
  const prefix = (options.rootDirectory ?? '').replace(/^\/+|\/+$/g, '')
  const sse = options.encrypt ? { ServerSideEncryption: 'AES256' as const } : {}
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.accessKeyId && options.secretAccessKey
      ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
      : {}),
    // Plain PUTs: RGW and Swift drop the SDK's default aws-chunked CRC trailers, toy servers store them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Throttling and 5xx are retried with backoff by the SDK before we give up with a 503.
    maxAttempts: 5,
    retryMode: 'adaptive',
    ...options.client,
  })
  if (options.consistent) {
    client.middlewareStack.add((next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> }
      const input = args.input as { Key?: string }
      const bytes = context.commandName === 'GetObjectCommand' && input.Key?.endsWith('/data')
      if (request.headers && CONSISTENT_COMMANDS.has(context.commandName ?? '') && !bytes) request.headers['x-tigris-consistent'] = 'true'
      return next(args)
    }, { step: 'build', name: 'tigrisConsistent' })
  }
  // Every request goes through the client's stack (lib-storage's uploads too): counted there, once
  // per attempt (the deserialize step runs inside the SDK's retries).
  const onRequest = options.onRequest
  if (onRequest) {
    client.middlewareStack.add((next, context) => (args) => {
      onRequest(context.commandName?.replace(/Command$/, '') ?? 'unknown')
      return next(args)
    }, { step: 'deserialize', name: 'enlilCountRequests' })
  }

  const key = (path: string): string => {
    if (path.split('/').some((part) => part === '..' || part === '.')) throw new Error(`refusing path outside the root: ${path}`)
    return prefix ? `${prefix}/${path}` : path
  }

  /** Runs an S3 call, turning "not there" into undefined and transient trouble into a typed error. */
  async function call<T>(what: string, path: string, send: () => Promise<T>): Promise<T | undefined> {
    try {
      return await send()
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw translate(err, what, path)
    }
  }

  async function head(path: string): Promise<{ size: number; modifiedAt: Date } | undefined> {
    const res = await call('HeadObject', path, () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key(path) })))
    return res ? { size: res.ContentLength ?? 0, modifiedAt: res.LastModified ?? new Date(0) } : undefined
  }

  /** A small object read whole (links, manifests, upload state); read again when its body breaks off. */
  async function getBytes(path: string): Promise<Buffer | undefined> {
    for (let attempt = 1; ; attempt++) {
      const res = await call('GetObject', path, () => client.send(new GetObjectCommand({ Bucket: bucket, Key: key(path) })))
      if (!res?.Body) return undefined
      try {
        const bytes = Buffer.from(await res.Body.transformToByteArray())
        if (res.ContentLength !== undefined && bytes.length !== res.ContentLength) throw prematureClose(bytes.length, res.ContentLength)
        return bytes
      } catch (err) {
        if (!isTransient(err)) throw err
        if (attempt >= BODY_ATTEMPTS) throw brokenBody(path, attempt, err)
        await pause(attempt)
      }
    }
  }

  async function put(path: string, body: Uint8Array | string): Promise<void> {
    await call('PutObject', path, () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key(path), Body: body, ...sse })))
  }

  async function deleteKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000)
      const res = await call('DeleteObjects', batch[0]!, () => client.send(new DeleteObjectsCommand({
        Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      })))
      // A batch answers 200 even when some keys could not be deleted: those are in `Errors`.
      const failed = (res?.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey')
      if (failed.length > 0) {
        throw new StorageUnavailableError(`S3 DeleteObjects could not delete ${failed.length} of ${batch.length} keys, e.g. ${failed[0]!.Key}: ${failed[0]!.Code ?? 'error'} ${failed[0]!.Message ?? ''}`.trim())
      }
    }
  }

  /** Every key under a folder (recursive). */
  async function listAll(path: string): Promise<string[]> {
    const keys: string[] = []
    let token: string | undefined
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const res = await call('ListObjectsV2', path, () => client.send(new ListObjectsV2Command({
        Bucket: bucket, Prefix: `${key(path)}/`, ContinuationToken: token,
      })))
      for (const o of res?.Contents ?? []) if (o.Key) keys.push(o.Key)
      token = res?.IsTruncated ? res.NextContinuationToken : undefined
      if (!token) break
    }
    return keys
  }

  const statePath = (path: string) => `${path}.state`
  const tailPath = (path: string, state?: AppendState) => (state?.tailId ? `${path}.tail-${state.tailId}` : `${path}.tail`)

  async function readTail(path: string, state: AppendState): Promise<Buffer | undefined> {
    if (state.tail === 0) return undefined
    const tail = await getBytes(tailPath(path, state))
    if (tail?.length !== state.tail) throw new Error(`tail of ${path} has ${tail?.length ?? 0} bytes, expected ${state.tail}`)
    return tail
  }

  async function readState(path: string): Promise<AppendState | undefined> {
    const bytes = await getBytes(statePath(path))
    return bytes ? (JSON.parse(bytes.toString('utf8')) as AppendState) : undefined
  }

  const stateSize = (s: AppendState) => s.completed ?? (s.segments ?? []).reduce((n, g) => n + g.size, 0) + s.parts.reduce((n, p) => n + p.size, 0) + s.tail
  const segmentPath = (path: string, id: string) => `${path}.seg-${id}`

  /** Where the state's multipart upload is: `<key>`, or after a rollover `<key>.seg-<uploadKey>`. */
  const uploadAt = (path: string, s: { uploadKey?: string }) => (s.uploadKey ? segmentPath(path, s.uploadKey) : path)

  async function completeMultipart(at: string, uploadId: string, parts: AppendState['parts']): Promise<void> {
    await call('CompleteMultipartUpload', at, () => client.send(new CompleteMultipartUploadCommand({
      Bucket: bucket, Key: key(at), UploadId: uploadId,
      MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
    })))
  }

  /**
   * Puts the segments, then the object at `last` (if any), into `<key>` with UploadPartCopy, in
   * ranges of at most 5 GiB (S3's largest copied part); a range but the last is at least 5 MiB.
   */
  async function assemble(path: string, segments: { id: string; size: number }[], last?: { at: string; size: number }): Promise<number> {
    const sources = [...segments.map((g) => ({ at: segmentPath(path, g.id), size: g.size })), ...(last && last.size > 0 ? [last] : [])]
    const pieces: { at: string; start: number; end: number }[] = []
    for (const src of sources) {
      const count = Math.ceil(src.size / MAX_SINGLE_COPY)
      const each = Math.ceil(src.size / count)
      for (let start = 0; start < src.size; start += each) pieces.push({ at: src.at, start, end: Math.min(src.size, start + each) - 1 })
    }
    if (pieces.length > MAX_PARTS) throw new Error(`assembling ${path} needs ${pieces.length} parts, more than ${MAX_PARTS}`)
    const uploadId = await createMultipart(path)
    try {
      const parts: AppendState['parts'] = []
      for (const [i, piece] of pieces.entries()) {
        const res = await call('UploadPartCopy', path, () => client.send(new UploadPartCopyCommand({
          Bucket: bucket, Key: key(path), UploadId: uploadId, PartNumber: i + 1,
          CopySource: copySource(bucket, key(piece.at)), CopySourceRange: `bytes=${piece.start}-${piece.end}`,
        })))
        parts.push({ n: i + 1, etag: res?.CopyPartResult?.ETag ?? '', size: piece.end - piece.start + 1 })
      }
      await completeMultipart(path, uploadId, parts)
      return parts.reduce((n, p) => n + p.size, 0)
    } catch (err) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key(path), UploadId: uploadId })).catch(() => {})
      throw err
    }
  }

  async function uploadPart(path: string, uploadId: string, n: number, body: Buffer): Promise<{ n: number; etag: string; size: number }> {
    if (n > maxParts) throw new Error(`upload of ${path} needs more than ${maxParts} parts`)
    const res = await call('UploadPart', path, () => client.send(new UploadPartCommand({
      Bucket: bucket, Key: key(path), UploadId: uploadId, PartNumber: n, Body: body, ContentLength: body.length,
    })))
    return { n, etag: res?.ETag ?? '', size: body.length }
  }

  async function createMultipart(path: string): Promise<string> {
    const res = await call('CreateMultipartUpload', path, () => client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key(path), ...sse })))
    if (!res?.UploadId) throw new Error(`CreateMultipartUpload for ${path} returned no upload id`)
    return res.UploadId
  }

  /**
   * A completed appendable object gets appended to again (a client went on after a digest it got
   * wrong): start a new multipart upload whose first part is a server-side copy of what is there.
   */
  async function reopen(path: string, state: AppendState): Promise<AppendState> {
    const size = state.completed ?? 0
    if (size >= partSize) {
      const uploadId = await createMultipart(path)
      const res = await call('UploadPartCopy', path, () => client.send(new UploadPartCopyCommand({
        Bucket: bucket, Key: key(path), UploadId: uploadId, PartNumber: 1, CopySource: copySource(bucket, key(path)),
      })))
      const reopened: AppendState = { uploadId, parts: [{ n: 1, etag: res?.CopyPartResult?.ETag ?? '', size }], tail: 0 }
      // Recorded before the completed object goes: `reader` would serve that instead of the parts.
      await put(statePath(path), JSON.stringify(reopened))
      await deleteKeys([key(path)])
      return reopened
    }
    const reopened: AppendState = { parts: [], tail: size, ...(size > 0 ? { tailId: newTailId() } : {}) }
    if (size > 0) await call('CopyObject', path, () => client.send(new CopyObjectCommand({ Bucket: bucket, Key: key(tailPath(path, reopened)), CopySource: copySource(bucket, key(path)), ...sse })))
    await put(statePath(path), JSON.stringify(reopened))
    await deleteKeys([key(path)])
    return reopened
  }

  /** Makes `<key>` hold every appended byte (completing the multipart upload), or says where they are. */
  async function finalize(path: string): Promise<{ at: string; size: number } | undefined> {
    const state = await readState(path)
    if (!state) return undefined
    if (state.completed !== undefined) return { at: path, size: state.completed }
    const segments = state.segments ?? []
    if (!state.uploadId && segments.length === 0) return { at: state.tail > 0 ? tailPath(path, state) : path, size: state.tail }
    const parts = [...state.parts]
    const tail = await readTail(path, state)
    let last: { at: string; size: number } | undefined
    if (state.uploadId) {
      if (tail) parts.push(await uploadPart(uploadAt(path, state), state.uploadId, parts.length + 1, tail))
      last = { at: uploadAt(path, state), size: parts.reduce((n, p) => n + p.size, 0) }
      await completeMultipart(last.at, state.uploadId, parts)
    } else if (tail) {
      last = { at: tailPath(path, state), size: tail.length }
    }
    const size = segments.length > 0 ? await assemble(path, segments, last) : last!.size
    await put(statePath(path), JSON.stringify({ parts: [], tail: 0, completed: size } satisfies AppendState))
    const leftovers = [...segments.map((g) => key(segmentPath(path, g.id))), ...(tail ? [key(tailPath(path, state))] : [])]
    if (segments.length > 0 && last && last.at !== path) leftovers.push(key(last.at))
    if (leftovers.length > 0) await deleteKeys(leftovers)
    return { at: path, size }
  }

  async function copy(from: string, to: string, size: number): Promise<void> {
    if (size <= MAX_SINGLE_COPY) {
      await call('CopyObject', to, () => client.send(new CopyObjectCommand({ Bucket: bucket, Key: key(to), CopySource: copySource(bucket, key(from)), ...sse })))
      return
    }
    const uploadId = await createMultipart(to)
    const chunk = Math.max(512 * MiB, Math.ceil(size / MAX_PARTS))
    const ranges: ByteRange[] = []
    for (let start = 0; start < size; start += chunk) ranges.push({ start, end: Math.min(size, start + chunk) - 1 })
    const etags: string[] = new Array(ranges.length)
    try {
      let next = 0
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < ranges.length) {
          const i = next++
          const r = ranges[i]!
          const res = await call('UploadPartCopy', to, () => client.send(new UploadPartCopyCommand({
            Bucket: bucket, Key: key(to), UploadId: uploadId, PartNumber: i + 1,
            CopySource: copySource(bucket, key(from)), CopySourceRange: `bytes=${r.start}-${r.end}`,
          })))
          etags[i] = res?.CopyPartResult?.ETag ?? ''
        }
      }))
      await call('CompleteMultipartUpload', to, () => client.send(new CompleteMultipartUploadCommand({
        Bucket: bucket, Key: key(to), UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
      })))
    } catch (err) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key(to), UploadId: uploadId })).catch(() => {})
      throw err
    }
  }

  /**
   * CopyObject with `X-Tigris-Rename: true`: Tigris moves the object in metadata. A store that
   * ignores the header copies it (the caller deletes the source either way); false when the store
   * refused the request (a copy too large for one CopyObject), so that the caller copies in parts.
   */
  async function renamed(from: string, to: string): Promise<boolean> {
    const command = new CopyObjectCommand({ Bucket: bucket, Key: key(to), CopySource: copySource(bucket, key(from)), ...sse })
    command.middlewareStack.add((next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers) request.headers['x-tigris-rename'] = 'true'
      return next(args)
    }, { step: 'build', name: 'tigrisRename' })
    try {
      await call('CopyObject', to, () => client.send(command))
      return true
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 400) return false
      throw err
    }
  }

  /** Aborts the multipart uploads of appendable objects under a folder (or of one object); resolves to their tails' keys. */
  async function abortAppends(stateKeys: string[]): Promise<string[]> {
    const tails = await Promise.all(stateKeys.map(async (stateKey) => {
      const path = stateKey.slice(prefix ? prefix.length + 1 : 0, -'.state'.length)
      const state = await readState(path).catch(() => undefined)
      if (state?.uploadId && state.completed === undefined) {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key(uploadAt(path, state)), UploadId: state.uploadId })).catch(() => {})
      }
      return [...(state?.tailId ? [key(tailPath(path, state))] : []), ...(state?.segments ?? []).map((g) => key(segmentPath(path, g.id)))]
    }))
    return tails.flat()
  }

  return {
    name: 's3',

    async stat(path, kind) {
      const object = await head(path)
      if (object) return { size: object.size, modifiedAt: object.modifiedAt, isDirectory: false } satisfies FileInfo
      if (kind === 'file') return undefined
      const res = await call('ListObjectsV2', path, () => client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${key(path)}/`, MaxKeys: 1 })))
      return (res?.KeyCount ?? 0) > 0 ? { size: 0, modifiedAt: new Date(0), isDirectory: true } : undefined
    },

    async reader(path, range) {
      const get = (at: string, r: ByteRange | undefined, etag?: string) => call('GetObject', at, () => client.send(new GetObjectCommand({
        Bucket: bucket, Key: key(at), ...(r ? { Range: `bytes=${r.start}-${r.end}` } : {}), ...(etag ? { IfMatch: etag } : {}),
      })))
      let at = path
      let res = await get(at, range)
      if (!res) {
        // An appendable object is read back: complete its multipart upload first.
        const done = await finalize(path)
        if (!done || done.size === 0) {
          if (done) return Readable.from([])
          throw new PathNotFoundError(path)
        }
        at = done.at
        res = await get(at, range)
        if (!res) throw new PathNotFoundError(path)
      }
      return resumingBody(res, range?.start ?? 0, at, (rest, etag) => get(at, rest, etag))
    },

    async writeStream(path, body) {
      let bytes = 0
      const counted = new PassThrough({ highWaterMark: MiB })
      counted.on('data', (chunk: Buffer) => { bytes += chunk.length })
      pipeline(body, counted).catch(() => { /* the upload below reports it */ })
      const upload = new Upload({ client, params: { Bucket: bucket, Key: key(path), Body: counted, ...sse }, partSize, queueSize, leavePartsOnError: false })
      try {
        await upload.done()
      } catch (err) {
        throw translate(err, 'Upload', path)
      }
      return bytes
    },

    async append(path, body, options = {}) {
      const { at, guard, length } = options
      let state = (await readState(path)) ?? { parts: [], tail: 0 }
      if (at !== undefined && stateSize(state) !== at) throw new AppendOffsetError(path, at, stateSize(state))
      guard?.()
      if (state.completed !== undefined) state = await reopen(path, state)
      // Just after a rollover of the first multipart upload, a process that died may have left `<key>`.
      if (state.segments?.length && !state.uploadId && state.parts.length === 0) await deleteKeys([key(path)])
      const tail = await readTail(path, state)

      // Cut (old tail + body) into parts of partSize. With equalParts every part but the last is
      // exactly partSize and what is left becomes the new tail. Otherwise a full buffer is held back
      // until the next one fills, so that the request ends on a part of its own (what is left when
      // 5 MiB or more, else the held buffer and what is left together): the next request reads no tail.
      // queueSize + 2 buffers are reused (part in flight → back to the pool), bounding memory.
      const pool: Buffer[] = []
      let buffer: Buffer = Buffer.allocUnsafe(partSize)
      let held: Buffer | undefined
      let filled = 0
      if (tail) filled = tail.copy(buffer, 0)
      let appended = 0
      const inFlight = new Set<Promise<void>>()
      const segments = [...(state.segments ?? [])]
      let parts = [...state.parts]
      let uploaded = parts.map(() => true)
      let uploadId = state.uploadId
      let uploadKey = state.uploadKey
      /** The upload id the stored state names: an upload this request started is aborted if never named. */
      let namedUploadId = state.uploadId
      let failure: unknown

      const shape = (run: number, tailBytes = 0, tailId?: string): AppendState => ({
        ...(segments.length > 0 ? { segments: [...segments] } : {}),
        ...(uploadId ? { uploadId } : {}), ...(uploadKey ? { uploadKey } : {}), parts: parts.slice(0, run), tail: tailBytes, ...(tailId ? { tailId } : {}),
      })
      // The state, rewritten as parts complete: the longest run of uploaded parts, tail 0 (the old
      // tail's bytes open the first new part). One write at a time, each recording the newest run.
      let recorded = parts.length
      let written = JSON.stringify(state)
      let recording: Promise<void> = Promise.resolve()
      const writeState = async (next: AppendState) => {
        const text = JSON.stringify(next)
        if (text === written) return
        guard?.()
        await put(statePath(path), text)
        written = text
        namedUploadId = next.uploadId
      }
      const record = () => {
        recording = recording.then(async () => {
          let run = recorded
          while (run < parts.length && uploaded[run]) run++
          if (run === recorded) return
          await writeState(shape(run))
          recorded = run
        }).catch((err: unknown) => { failure ??= err })
        return recording
      }

      /**
       * The multipart upload has all the parts it may: it becomes a segment (completed where it is,
       * or, the first, at `<key>` and copied aside) and a new one goes on at its own key. Segments
       * are put together with UploadPartCopy when the object is read or moved.
       */
      const rollOver = async () => {
        await Promise.all(inFlight)
        await record()
        if (failure) throw failure
        guard?.()
        const at = uploadAt(path, { uploadKey })
        await completeMultipart(at, uploadId!, parts)
        const size = parts.reduce((n, p) => n + p.size, 0)
        const id = uploadKey ?? newTailId()
        if (!uploadKey) await copy(path, segmentPath(path, id), size)
        segments.push({ id, size })
        uploadId = undefined
        uploadKey = newTailId()
        parts = []
        uploaded = []
        recorded = 0
        await writeState(shape(0))
        // Until now `<key>` held exactly the bytes the state named; from here on it would not.
        if (at === path) await deleteKeys([key(path)])
      }

      const sendPart = async (bytes: Buffer, reuse = true) => {
        guard?.()
        if (parts.length >= maxParts) await rollOver()
        uploadId ??= await createMultipart(uploadAt(path, { uploadKey }))
        const n = parts.length + 1
        const into = parts
        into.push({ n, etag: '', size: bytes.length }) // reserve the number now; order is by n
        uploaded.push(false)
        const marks = uploaded
        const task = uploadPart(uploadAt(path, { uploadKey }), uploadId, n, bytes).then((p) => {
          into[n - 1] = p
          marks[n - 1] = true
          if (reuse) pool.push(bytes)
          void record()
        }, (err: unknown) => { failure ??= err })
        const tracked = task.finally(() => inFlight.delete(tracked))
        inFlight.add(tracked)
        if (inFlight.size >= queueSize) await Promise.race(inFlight)
        if (failure) throw failure
      }
      /** A part failed to go (the store, or the guard): nothing more is sent. */
      let storeFailed = false
      const send = (bytes: Buffer, reuse = true) => sendPart(bytes, reuse).catch((err: unknown) => {
        storeFailed = true
        throw err
      })
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          guard?.()
          appended += chunk.length
          let offset = 0
          while (offset < chunk.length) {
            const n = chunk.copy(buffer, filled, offset)
            filled += n
            offset += n
            if (filled === partSize) {
              const left = length === undefined ? undefined : length - (appended - (chunk.length - offset))
              if (equalParts || (left !== undefined && (left === 0 || left >= MIN_PART_SIZE))) {
                await send(buffer)
              } else {
                // A whole part more came: the held one is not the request's last.
                if (held) await send(held)
                held = buffer
              }
              buffer = pool.pop() ?? Buffer.allocUnsafe(partSize)
              filled = 0
            }
          }
        }
        if (held) {
          if (filled >= MIN_PART_SIZE) {
            await send(held)
          } else {
            // The rest is too small to be a part that others follow: it rides with the held one.
            await send(Buffer.concat([held, buffer.subarray(0, filled)]), false)
            pool.push(held)
            filled = 0
          }
          held = undefined
        }
        if (!equalParts && filled >= MIN_PART_SIZE) {
          await send(buffer.subarray(0, filled), false)
          filled = 0
        }
        await Promise.all(inFlight)
        await recording
        if (failure) throw failure
      } catch (err) {
        // The body broke off: a part held back is whole, so it is kept like the others.
        if (held && !storeFailed && !failure) await sendPart(held).catch(() => {})
        // Every part that completed is recorded (the bytes short of a part, in memory, are lost).
        await Promise.allSettled(inFlight)
        await recording
        // A multipart upload this request started and never recorded would be orphaned.
        if (uploadId && uploadId !== namedUploadId) {
          await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key(uploadAt(path, { uploadKey })), UploadId: uploadId })).catch(() => {})
        }
        // The old tail's bytes went into a recorded part: the state no longer names it.
        if (state.tail > 0 && written !== JSON.stringify(state)) await deleteKeys([key(tailPath(path, state))]).catch(() => {})
        throw err
      }
      if (appended === 0) return 0
      // The new tail under a new name, then the state naming it, then the old tail goes.
      const next = shape(parts.length, filled, filled > 0 ? newTailId() : undefined)
      guard?.()
      if (filled > 0) await put(tailPath(path, next), buffer.subarray(0, filled))
      await writeState(next)
      if (state.tail > 0) await deleteKeys([key(tailPath(path, state))])
      return appended
    },

    async appendedSize(path) {
      const state = await readState(path)
      return state ? stateSize(state) : undefined
    },

    getContent: getBytes,
    putContent: put,
    // An object appears whole when its PUT ends: nothing to stage.
    async stageContent(path, data) {
      return { publish: () => put(path, data), discard: async () => {} }
    },
    putOnce: put,

    async createOnce(path, data) {
      // A concurrent conditional write to the same key answers 409 on AWS: it is decided in a moment.
      for (let attempt = 1; ; attempt++) {
        try {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: key(path), Body: data, IfNoneMatch: '*', ...sse }))
          return true
        } catch (err) {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
          if (status === 412) return false
          if (status === 409 && attempt < BODY_ATTEMPTS) {
            await pause(attempt)
            continue
          }
          if (status === 501 || (err as Error).name === 'NotImplemented') {
            throw new Error(`PutObject ${path}: the object store does not support conditional writes (If-None-Match: *), which garbage collection and upload sessions need`, { cause: err })
          }
          throw translate(err, 'PutObject', path)
        }
      }
    },

    async list(path) {
      const names = new Set<string>()
      const base = `${key(path)}/`
      let token: string | undefined
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const res = await call('ListObjectsV2', path, () => client.send(new ListObjectsV2Command({
          Bucket: bucket, Prefix: base, Delimiter: '/', ContinuationToken: token,
        })))
        for (const p of res?.CommonPrefixes ?? []) if (p.Prefix) names.add(p.Prefix.slice(base.length, -1))
        for (const o of res?.Contents ?? []) if (o.Key) names.add(o.Key.slice(base.length))
        token = res?.IsTruncated ? res.NextContinuationToken : undefined
        if (!token) break
      }
      return [...names]
    },

    async scan(path, after) {
      const base = `${key(path)}/`
      const res = await call('ListObjectsV2', path, () => client.send(new ListObjectsV2Command({
        Bucket: bucket, Prefix: base, ...(after ? { StartAfter: `${base}${after}` } : {}),
      })))
      const entries = (res?.Contents ?? []).flatMap((o) => (o.Key
        ? [{ key: o.Key.slice(base.length), size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date(0) }]
        : []))
      return { entries, ...(res?.IsTruncated && entries.length > 0 ? { next: entries[entries.length - 1]!.key } : {}) }
    },

    async usage(path) {
      let total = 0
      let token: string | undefined
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const res = await call('ListObjectsV2', path, () => client.send(new ListObjectsV2Command({
          Bucket: bucket, Prefix: `${key(path)}/`, ContinuationToken: token,
        })))
        for (const o of res?.Contents ?? []) total += o.Size ?? 0
        token = res?.IsTruncated ? res.NextContinuationToken : undefined
        if (!token) break
      }
      return total
    },

    async move(from, to) {
      const done = await finalize(from)
      const source = done ? { at: done.at, size: done.size } : await head(from).then((h) => (h ? { at: from, size: h.size } : undefined))
      if (!source) throw new PathNotFoundError(from)
      if (source.size === 0 && done && done.at !== from) await put(to, new Uint8Array())
      else if (!options.rename || !(await renamed(source.at, to))) await copy(source.at, to, source.size)
      await deleteKeys([...new Set([key(from), key(statePath(from)), key(tailPath(from)), ...(done ? [key(done.at)] : [])])])
    },

    async deleteFiles(paths) {
      await deleteKeys(paths.map(key))
    },

    async delete(path, kind) {
      if (kind === 'file') return deleteKeys([key(path)])
      // The path as an appendable object and as a folder, looked at together (one round trip less).
      const [keys, tails] = await Promise.all([listAll(path), abortAppends([key(statePath(path))])])
      await abortAppends(keys.filter((k) => k.endsWith('.state')))
      await deleteKeys([key(path), key(statePath(path)), key(tailPath(path)), ...tails, ...keys])
    },

    ...(options.redirect
      ? {
          async redirectUrl(path: string) {
            return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key(path) }), { expiresIn: options.presignExpirySeconds ?? 1200 })
          },
        }
      : {}),
  }
}

/**
 * A GetObject body as one stream that survives its connection breaking: after a reset or premature
 * close the rest is asked for (`Range: bytes=<next>-<end>`, `If-Match` the first answer's ETag), so
 * the consumer sees each byte once, in order. BODY_ATTEMPTS breaks in a row without RESUME_PROGRESS
 * bytes between them end it with StorageUnavailableError. Backpressure passes through: nothing is
 * buffered beyond the stream's high-water mark and the socket's.
 */
function resumingBody(
  first: GetObjectCommandOutput, start: number, path: string,
  reopen: (rest: ByteRange, etag: string | undefined) => Promise<GetObjectCommandOutput | undefined>,
): Readable {
  const body = first.Body as Readable
  // Without a length there is no telling where the rest starts (S3 always sends one).
  if (first.ContentLength === undefined) return body
  const end = start + first.ContentLength - 1
  let next = start
  let source: Readable | undefined
  let detach = () => {}
  let failures = 0
  const out = new Readable({
    highWaterMark: 64 * 1024,
    read() { source?.resume() },
    destroy(err, done) {
      detach()
      source?.destroy()
      done(err)
    },
  })

  const attach = (s: Readable) => {
    source = s
    const opened = next
    const onData = (chunk: Buffer) => {
      next += chunk.length
      if (!out.push(chunk)) s.pause()
    }
    s.on('data', onData)
    const unwatch = finished(s, { writable: false }, (err) => {
      detach()
      if (out.destroyed) return
      if (next === end + 1) out.push(null)
      else if (next > end + 1) out.destroy(new Error(`GetObject ${path}: ${next - start} bytes, more than the ${end - start + 1} announced`))
      else void resume(err ?? prematureClose(next - start, end - start + 1), next - opened)
    })
    detach = () => {
      s.off('data', onData)
      unwatch()
      detach = () => {}
    }
  }

  const resume = async (err: unknown, progress: number) => {
    source?.destroy()
    source = undefined
    if (!isTransient(err)) return void out.destroy(err as Error)
    failures = progress >= RESUME_PROGRESS ? 1 : failures + 1
    if (failures >= BODY_ATTEMPTS) return void out.destroy(brokenBody(path, failures, err))
    await pause(failures)
    if (out.destroyed) return
    try {
      const rest = await reopen({ start: next, end }, first.ETag)
      const restBody = rest?.Body as Readable | undefined
      if (out.destroyed) return void restBody?.destroy()
      if (!restBody) throw new PathNotFoundError(path)
      if (rest!.ContentLength !== end - next + 1) {
        restBody.destroy()
        throw new Error(`GetObject ${path} from byte ${next}: the store answered ${rest!.ContentLength} bytes, expected ${end - next + 1}`)
      }
      attach(restBody)
    } catch (reopenErr) {
      out.destroy(reopenErr as Error)
    }
  }

  attach(body)
  return out
}

const newTailId = () => randomBytes(6).toString('hex')

const pause = (attempt: number) => new Promise((ok) => setTimeout(ok, Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2)))

function prematureClose(got: number, expected: number): Error {
  return Object.assign(new Error(`Premature close: ${got} of ${expected} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}

function brokenBody(path: string, attempts: number, err: unknown): StorageUnavailableError {
  return new StorageUnavailableError(`GetObject ${path}: the body broke off ${attempts} times in a row (${summary(err)})`, err)
}

/** `bucket/key`, URL-encoded except for the slashes, as CopyObject and UploadPartCopy want it. */
function copySource(bucket: string, k: string): string {
  return `${bucket}/${encodeURIComponent(k).replace(/%2F/g, '/')}`
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } }
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchUpload' || e?.$metadata?.httpStatusCode === 404
}

function translate(err: unknown, what: string, path: string): unknown {
  const status = err instanceof S3ServiceException ? err.$metadata?.httpStatusCode ?? 0 : undefined
  const name = (err as Error | undefined)?.name
  if (status !== undefined && (name === 'QuotaExceeded' || (name === 'EntityTooLarge' && status === 400))) return new StorageFullError(path, err)
  if (status === 0 || isTransient(err)) return new StorageUnavailableError(`${what} ${path}: the object store answered ${summary(err)} after retries`, err)
  if (isUnreachable(err)) return new StorageUnavailableError(`${what} ${path}: the object store cannot be reached (${summary(err)}): check regionendpoint, its DNS and forcepathstyle`, err)
  return err
}

/** Errors that no retry fixes soon but that are the store's absence, not the request's fault: a name that does not resolve, a TLS failure. */
const UNREACHABLE_CODES = new Set(['ENOTFOUND', 'EAI_FAIL', 'EAI_NONAME', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID'])
function isUnreachable(err: unknown, depth = 0): boolean {
  const e = err as { code?: string; cause?: unknown } | undefined
  if (!e || typeof e !== 'object') return false
  if (UNREACHABLE_CODES.has(e.code ?? '')) return true
  return e.cause !== undefined && depth < 5 && isUnreachable(e.cause, depth + 1)
}

const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504])
const TRANSIENT_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'InternalError', 'ServiceUnavailable', 'NetworkingError'])
/** Node's socket and stream errors: a reset (`aborted`, ECONNRESET), a premature close, a timeout. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
])

/** Trouble that may pass: throttling, 5xx, and a connection that broke (while sending, or reading a body). */
function isTransient(err: unknown, depth = 0): boolean {
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown; $metadata?: { httpStatusCode?: number } } | undefined
  if (!e || typeof e !== 'object' || e.name === 'AbortError') return false
  if (TRANSIENT_STATUS.has(e.$metadata?.httpStatusCode ?? 0)) return true
  if (TRANSIENT_NAMES.has(e.name ?? '') || /Timeout|Socket/.test(e.name ?? '') || TRANSIENT_CODES.has(e.code ?? '')) return true
  if (/^(aborted|Premature close|socket hang up)/.test(e.message ?? '')) return true
  return e.cause !== undefined && depth < 5 && isTransient(e.cause, depth + 1)
}

function summary(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } }
  const status = e?.$metadata?.httpStatusCode
  return `${e?.code ?? e?.name ?? 'error'}${status ? ` (${status})` : ''}${e?.message && e.message !== e.name ? `: ${e.message.split('\n')[0]}` : ''}`
}
