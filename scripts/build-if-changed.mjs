#!/usr/bin/env node
/**
 * `npm start`'s build step: compiles src/ with tsc unless dist/ was built from exactly these
 * sources. "Exactly" is a hash of the contents of src/, tsconfig.json, package.json and
 * package-lock.json and of the TypeScript version, stored in dist/ after a build that succeeded;
 * file times are not trusted (a checkout, an unpacked archive or a copy can make old sources look
 * new or new ones look old). A stale build never runs: any difference compiles again.
 */
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const stampFile = join(root, 'dist', '.source-hash')

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? files(path) : [path]
  })
}

function sourceHash() {
  const hash = createHash('sha256')
  const inputs = [...files(join(root, 'src')), ...['tsconfig.json', 'package.json', 'package-lock.json'].map((f) => join(root, f)).filter(existsSync)]
  for (const file of inputs.sort()) {
    hash.update(`${relative(root, file)}\0`)
    hash.update(readFileSync(file))
    hash.update('\0')
  }
  const typescript = join(root, 'node_modules/typescript/package.json')
  hash.update(existsSync(typescript) ? JSON.parse(readFileSync(typescript, 'utf8')).version : 'no typescript')
  return hash.digest('hex')
}

const force = process.argv.includes('--force')
const hash = sourceHash()
const current = !force && existsSync(join(root, 'dist/main.js')) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === hash
if (current) {
  console.error('enlil: dist/ is built from these sources; not compiling again')
  process.exit(0)
}
// Removed first: a build that fails or is interrupted leaves no stamp claiming it is current.
rmSync(stampFile, { force: true })
console.error('enlil: compiling src/ (tsc)')
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' })
if (tsc.status !== 0) process.exit(tsc.status ?? 1)
// The hash of the sources as they were when the build started: had they changed during it, the
// next start compiles again.
writeFileSync(stampFile, `${hash}\n`)
