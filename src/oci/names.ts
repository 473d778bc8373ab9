/** @module Repository names, tags and references, validated against the spec grammar before storage is touched. */
import { RegistryError } from './errors.js'
import { type Digest, isDigestLike, parseDigest } from './digest.js'

// spec: "<name>" — path components of lower-case alphanumerics joined by separators.
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
/** distribution's limit; keeps every storage path well under file-system limits. */
export const MAX_NAME_LENGTH = 255

export function parseName(name: string): string {
  if (!isName(name)) {
    const why = name.length > MAX_NAME_LENGTH
      ? `longer than ${MAX_NAME_LENGTH} characters`
      : 'must be lower-case path components of [a-z0-9] joined by ".", "_", "__" or "-", separated by "/"'
    throw new RegistryError('NAME_INVALID', `invalid repository name "${clip(name)}": ${why}`, { name: clip(name) })
  }
  return name
}

export function isName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name)
}

export function isTag(reference: string): boolean {
  return TAG.test(reference)
}

export function parseTag(tag: string): string {
  if (!TAG.test(tag)) {
    throw new RegistryError('TAG_INVALID', `invalid tag "${clip(tag)}": must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, { tag: clip(tag) })
  }
  return tag
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest }

/** A manifest reference is a digest when it has a colon, a tag otherwise; throws DIGEST_INVALID or TAG_INVALID. */
export function parseReference(reference: string): Reference {
  if (isDigestLike(reference)) return { kind: 'digest', digest: parseDigest(reference) }
  return { kind: 'tag', tag: parseTag(reference) }
}

/**
 * The reference of a manifest to read or delete: one outside the grammar names no manifest, so it
 * is unknown (404 MANIFEST_UNKNOWN, as the spec lists for a manifest that can't be found), not a
 * malformed request.
 */
export function lookupReference(reference: string, repository: string): Reference {
  try {
    return parseReference(reference)
  } catch (err) {
    const why = err instanceof RegistryError ? err.message : 'invalid reference'
    throw new RegistryError('MANIFEST_UNKNOWN', `no manifest "${clip(reference)}" in repository ${repository}: ${why}`, { reference: clip(reference) })
  }
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s
}
