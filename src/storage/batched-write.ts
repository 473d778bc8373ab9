/**
 * @module Batched positional writes of a stream into a file.
 *
 * A request body arrives in socket-sized pieces (64 KiB). Written one by one, each piece is a trip
 * through libuv's thread pool, and while its completion travels back to the event loop the file's
 * writer is idle. Here pieces are gathered (without copying) into batches written with one `writev`
 * each, and the next batch is already queued behind the file's lock while the previous one is copied
 * in. Memory per stream stays bounded: at most `inFlight` batches are written while one is gathered;
 * until then the body is not read, which holds the client back.
 */

/** What a batched write needs of a file: Node's FileHandle has both. */
export interface PositionalFile {
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>
  truncate(length: number): Promise<void>
}

export interface BatchOptions {
  /** A batch is written once it holds at least this many bytes. */
  batchBytes: number
  /** Batches written at the same time. */
  inFlight: number
  /** Called before each batch is written; throws to stop the copy (nothing more is written then). */
  guard?: () => void
}

export const DEFAULT_BATCHES: BatchOptions = { batchBytes: 1024 * 1024, inFlight: 2 }

/**
 * Writes `body` into `file` from byte `start`; resolves to the number of bytes written.
 *
 * When a write fails, the file is cut back to the end of the last batch that landed with all batches
 * before it, so it never keeps a hole or a batch that landed after a failed one; when the body fails,
 * what was gathered of it is written as well. The file's size then says how many of the body's bytes
 * it holds, in order.
 */
export async function writeBatched(
  file: PositionalFile, body: AsyncIterable<Buffer>, start: number, options: BatchOptions = DEFAULT_BATCHES,
): Promise<number> {
  const writing: { at: number; done: Promise<void> }[] = []
  let position = start
  let batch: Buffer[] = []
  let gathered = 0

  const submit = async () => {
    // Waiting for the oldest batch is also where a failed write stops the copy.
    if (writing.length >= options.inFlight) {
      await writing[0]!.done
      writing.shift()
    }
    options.guard?.()
    const done = writeFully(file, batch, position)
    done.catch(() => { /* awaited in order below, or settled in the catch */ })
    writing.push({ at: position, done })
    position += gathered
    batch = []
    gathered = 0
  }

  try {
    for await (const chunk of body) {
      if (chunk.length === 0) continue
      batch.push(chunk)
      gathered += chunk.length
      if (gathered >= options.batchBytes) await submit()
    }
    if (gathered > 0) await submit()
    for (const w of writing) await w.done
    return position - start
  } catch (err) {
    const results = await Promise.all(writing.map((w) => w.done.then(() => true, () => false)))
    const firstFailed = results.indexOf(false)
    if (firstFailed >= 0) await file.truncate(writing[firstFailed]!.at).catch(() => { /* the write's error says more */ })
    // The body broke off (the client left) with every write landed: the pieces gathered since are
    // bytes that arrived, in order, so they are kept too, as a resumed upload expects.
    else if (gathered > 0 && allowed(options.guard)) await writeFully(file, batch, position).catch(() => file.truncate(position).catch(() => {}))
    throw err
  }
}

/** Whether the guard lets one more write through. */
function allowed(guard: (() => void) | undefined): boolean {
  try {
    guard?.()
    return true
  } catch {
    return false
  }
}

/** Writes all of `buffers` at `position`, continuing after a short write. */
async function writeFully(file: PositionalFile, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers
  while (rest.length > 0) {
    const { bytesWritten } = await file.writev(rest, position)
    if (bytesWritten <= 0) throw new Error(`the file took no bytes at offset ${position}`)
    position += bytesWritten
    rest = dropBytes(rest, bytesWritten)
  }
}

/** The buffers without their first `n` bytes (views, no copies). */
function dropBytes(buffers: Buffer[], n: number): Buffer[] {
  let i = 0
  while (i < buffers.length && n >= buffers[i]!.length) n -= buffers[i++]!.length
  const rest = buffers.slice(i)
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n)
  return rest
}
