/** @module Content digests: parsing against the spec grammar and streaming hashes. */
import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { RegistryError } from './errors.js'

export type DigestAlgorithm = 'sha256' | 'sha512'

/** A validated digest: `algorithm:hex`, hex lower-case and of the algorithm's length. */
export interface Digest {
  readonly algorithm: DigestAlgorithm
  readonly hex: string
  /** `algorithm:hex` */
  readonly value: string
}

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 }
const DIGEST_SHAPE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/

/** Parses a digest or returns undefined when it is not one we can verify. */
export function tryParseDigest(input: string): Digest | undefined {
  const m = DIGEST_SHAPE.exec(input)
  if (!m) return undefined
  const algorithm = m[1] as DigestAlgorithm
  const hex = m[2]!
  const length = HEX_LENGTH[algorithm]
  if (length === undefined || hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return undefined
  return { algorithm, hex, value: `${algorithm}:${hex}` }
}

/** Parses a digest; throws DIGEST_INVALID naming what is wrong. */
export function parseDigest(input: string): Digest {
  const digest = tryParseDigest(input)
  if (digest) return digest
  const algorithm = input.split(':', 1)[0] ?? ''
  const why = !input.includes(':')
    ? 'expected algorithm:hex'
    : HEX_LENGTH[algorithm as DigestAlgorithm] === undefined
      ? `unsupported digest algorithm "${algorithm}" (sha256 and sha512 are supported)`
      : `expected ${HEX_LENGTH[algorithm as DigestAlgorithm]} lower-case hex characters after "${algorithm}:"`
  throw new RegistryError('DIGEST_INVALID', `invalid digest "${truncate(input)}": ${why}`, { digest: truncate(input) })
}

export function isDigestLike(reference: string): boolean {
  return reference.includes(':')
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  const hex = createHash(algorithm).update(bytes).digest('hex')
  return { algorithm, hex, value: `${algorithm}:${hex}` }
}

export function digestFromHash(hash: Hash, algorithm: DigestAlgorithm): Digest {
  const hex = hash.digest('hex')
  return { algorithm, hex, value: `${algorithm}:${hex}` }
}

/**
 * A pass-through Transform that hashes and counts what flows through it.
 * Native hashing keeps the upload path at disk speed (DESIGN.md, Uploads).
 */
export class HashingStream extends Transform {
  bytes = 0
  constructor(readonly hash: Hash) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk)
    this.bytes += chunk.length
    done(null, chunk)
  }
}

function truncate(s: string): string {
  return s.length > 150 ? `${s.slice(0, 150)}…` : s
}
