import { describe, expect, it } from 'vitest'
import { digestOf, parseDigest, tryParseDigest } from './digest.js'
import { RegistryError } from './errors.js'
import { MAX_NAME_LENGTH, parseName, parseReference, parseTag } from './names.js'

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (err) {
    return err instanceof RegistryError ? err.code : 'not a RegistryError'
  }
  return undefined
}

describe('digests', () => {
  it('parses sha256 and sha512', () => {
    const hex = 'a'.repeat(64)
    expect(parseDigest(`sha256:${hex}`)).toEqual({ algorithm: 'sha256', hex, value: `sha256:${hex}` })
    expect(parseDigest(`sha512:${'b'.repeat(128)}`).algorithm).toBe('sha512')
    expect(digestOf(new Uint8Array()).value).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })

  it('refuses wrong lengths, upper case, unknown algorithms, with a message that says which', () => {
    expect(tryParseDigest(`sha256:${'a'.repeat(63)}`)).toBeUndefined()
    expect(tryParseDigest(`sha256:${'A'.repeat(64)}`)).toBeUndefined()
    expect(tryParseDigest(`sha512:${'a'.repeat(64)}`)).toBeUndefined()
    expect(codeOf(() => parseDigest('nocolon'))).toBe('DIGEST_INVALID')
    expect(() => parseDigest(`md5:${'a'.repeat(32)}`)).toThrow(/unsupported digest algorithm "md5"/)
    expect(() => parseDigest('sha256:abc')).toThrow(/64 lower-case hex/)
    expect(() => parseDigest(`sha256:../../${'a'.repeat(58)}`)).toThrow(RegistryError)
  })
})

describe('repository names', () => {
  it('accepts the spec grammar', () => {
    for (const name of ['a', 'library/busybox', 'a.b_c__d-e--f/g0', 'x/y/z/w', 'a'.repeat(MAX_NAME_LENGTH)]) expect(parseName(name)).toBe(name)
  })
  it('refuses everything else with NAME_INVALID', () => {
    for (const name of ['', 'A', 'a/', '/a', 'a//b', 'a/../b', '..', 'a/.b', 'a_', '-a', 'a___b', 'a:b', 'a'.repeat(MAX_NAME_LENGTH + 1)]) {
      expect(codeOf(() => parseName(name)), name).toBe('NAME_INVALID')
    }
  })
})

describe('tags and references', () => {
  it('accepts tags of up to 128 characters', () => {
    expect(parseTag('v1.2.3-rc_1')).toBe('v1.2.3-rc_1')
    expect(parseTag(`a${'b'.repeat(127)}`)).toHaveLength(128)
  })
  it('refuses bad tags with TAG_INVALID', () => {
    for (const tag of ['', '.hidden', '-x', `a${'b'.repeat(128)}`, 'a/b', 'a b']) expect(codeOf(() => parseTag(tag)), tag).toBe('TAG_INVALID')
  })
  it('tells digests from tags by the colon', () => {
    expect(parseReference('latest')).toEqual({ kind: 'tag', tag: 'latest' })
    expect(parseReference(`sha256:${'c'.repeat(64)}`).kind).toBe('digest')
    expect(codeOf(() => parseReference('sha256:short'))).toBe('DIGEST_INVALID')
  })
})
