/**
 * The folders of src/ and what each may import, checked on the code itself: a new import that runs
 * the wrong way (the core reaching into auth, a driver knowing OCI) fails here, not in a review.
 * Each folder's README.md says the same in words; README.md's "Layout of the code" draws it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = resolve(import.meta.dirname, '../src')

/** Folder → the folders its code may import (besides itself). The entry point is `.`. */
const MAY_IMPORT: Record<string, string[]> = {
  '.': ['commands', 'server'],
  commands: ['server', 'config', 'registry', 'storage', 'auth', 'observe', 'oci'],
  server: ['config', 'http', 'mirror', 'ui', 'registry', 'storage', 'auth', 'observe', 'oci'],
  config: ['auth', 'http', 'oci'],
  http: ['registry', 'auth', 'observe', 'storage', 'oci'],
  // Where the next features go: the pull-through cache and the web UI, mounted by server/app.ts.
  mirror: ['registry', 'storage', 'observe', 'oci'],
  ui: ['http', 'registry', 'auth', 'observe', 'oci'],
  registry: ['storage', 'observe', 'oci'],
  auth: ['oci'],
  storage: [],
  observe: [],
  oci: [],
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.tsx?$/.test(entry) && !/\.(test|contract)\.tsx?$/.test(entry) ? [path] : []
  })
}

/** The top folder of src/ a file is in ('.' for the entry point). */
const folderOf = (file: string) => {
  const rel = relative(SRC, file)
  return rel.includes('/') ? rel.split('/')[0]! : '.'
}

describe('the layout of src/', () => {
  const files = sources(SRC)

  it('holds only the entry point at its top; every other file is in a folder named above', () => {
    expect(files.filter((f) => folderOf(f) === '.').map((f) => relative(SRC, f))).toEqual(['main.ts'])
    expect(files.map(folderOf).filter((f) => !(f in MAY_IMPORT))).toEqual([])
  })

  it('imports run only the ways the folders allow', () => {
    const wrong: string[] = []
    for (const file of files) {
      const from = folderOf(file)
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = folderOf(resolve(dirname(file), m[1]!))
        if (target !== from && !MAY_IMPORT[from]!.includes(target)) wrong.push(`${relative(SRC, file)} imports ${m[1]} (${from} → ${target})`)
      }
    }
    expect(wrong).toEqual([])
  })
})
