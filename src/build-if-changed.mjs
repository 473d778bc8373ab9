#!/usr/bin/env node
/**
 * `npm start`'s build step: compiles src/ with tsc unless dist/ was built from exactly these
 * sources. "Exactly" is a hash of the contents of src/, tsconfig.json, package.json and
 * package-lock.json and of the TypeScript version, stored in dist/ after a build that succeeded,
 * with a hash of the JavaScript that build wrote (so that dist/ rewritten since, by a `tsc` run
 * by hand on other sources, is not taken for this build). File times are not trusted (a checkout,
 * an unpacked archive or a copy can make old sources look new or new ones look old). A stale
 * build never runs: any difference compiles again.
 */
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const stampFile = join(root, 'dist', '.build-stamp.json')

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? files(path) : [path]
  })
}

/** The names and contents of these files, as one hash. */
function contentHash(paths, extra = '') {
  const hash = createHash('sha256')
  for (const file of [...paths].sort()) {
    hash.update(`${relative(root, file)}\0`)
    hash.update(readFileSync(file))
    hash.update('\0')
  }
  return hash.update(extra).digest('hex')
}

function sourceHash() {
  const inputs = [...files(join(root, 'src')), ...['tsconfig.json', 'package.json', 'package-lock.json'].map((f) => join(root, f)).filter(existsSync)]
  const typescript = join(root, 'node_modules/typescript/package.json')
  return contentHash(inputs, existsSync(typescript) ? JSON.parse(readFileSync(typescript, 'utf8')).version : 'no typescript')
}

const builtHash = () => (existsSync(join(root, 'dist')) ? contentHash(files(join(root, 'dist')).filter((f) => f.endsWith('.js'))) : 'no dist')

const force = process.argv.includes('--force')
const hash = sourceHash()
let stamp
try {
  stamp = JSON.parse(readFileSync(stampFile, 'utf8'))
} catch {
  stamp = undefined // no build of this script's yet, or an unreadable one: compile
}
const current = !force && existsSync(join(root, 'dist/main.js')) && stamp?.source === hash && stamp?.built === builtHash()
if (current) {
  console.error('enlil: dist/ is built from these sources; not compiling again')
  process.exit(0)
}
// Removed first: a build that fails or is interrupted leaves no stamp claiming it is current.
rmSync(stampFile, { force: true })
console.error('enlil: compiling src/ (tsc)')
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' })
if (tsc.status !== 0) process.exit(tsc.status ?? 1)
// The package's bin: `npx enlil` in the clone runs it by its path.
chmodSync(join(root, 'dist', 'main.js'), 0o755)
// The hash of the sources as they were when the build started: had they changed during it, the
// next start compiles again.
writeFileSync(stampFile, `${JSON.stringify({ source: hash, built: builtHash() })}\n`)
