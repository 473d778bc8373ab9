/**
 * A local stand-in for the Dockerfile's base image (`node:24-slim`), which cannot be pulled here:
 * a root filesystem holding this machine's node and npm, the shared libraries they and a few
 * shell tools load (as `ldd` lists them), and the users of the official image (root, node=1000).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

/** What a RUN line of our Dockerfile needs besides node: npm runs scripts with sh; mkdir/chown for /data. */
const TOOLS = { '/bin/sh': '/bin/dash', '/bin/mkdir': '/bin/mkdir', '/bin/chown': '/bin/chown', '/usr/bin/env': '/usr/bin/env' }

/** The shared libraries (and the loader) an executable needs, as absolute paths. */
function sharedLibraries(executable: string): string[] {
  const out = execFileSync('ldd', [executable], { encoding: 'utf8' })
  return [...out.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((m) => m[1]!)
}

function copyInto(root: string, from: string, to: string): void {
  mkdirSync(dirname(join(root, to)), { recursive: true })
  copyFileSync(realpathSync(from), join(root, to))
  chmodSync(join(root, to), 0o755)
}

/** npm's installation directory on this machine (the folder holding bin/npm-cli.js). */
export function npmDirectory(): string | undefined {
  const candidates = ['/usr/local/bin/npm', '/usr/bin/npm']
  for (const c of candidates) {
    if (existsSync(c)) return resolve(dirname(realpathSync(c)), '..')
  }
  const beside = join(dirname(process.execPath), '../lib/node_modules/npm')
  return existsSync(beside) ? beside : undefined
}

/**
 * Writes the root filesystem as a tar file and returns its path and the image settings that
 * `docker import --change` should give it (PATH, and this machine's extra CA for TLS interception).
 */
export function buildNodeRootfs(dir: string): { tar: string; changes: string[] } {
  const root = join(dir, 'rootfs')
  const npm = npmDirectory()
  if (!npm) throw new Error('npm is not installed next to node here')
  copyInto(root, process.execPath, '/usr/local/bin/node')
  const executables = [process.execPath, ...Object.values(TOOLS)]
  for (const [to, from] of Object.entries(TOOLS)) copyInto(root, from, to)
  for (const lib of new Set(executables.flatMap(sharedLibraries))) copyInto(root, lib, lib)
  cpSync(npm, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true, dereference: true })
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'))
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'))

  mkdirSync(join(root, 'etc'), { recursive: true })
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n')
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n')
  for (const d of ['tmp', 'root', 'home/node']) mkdirSync(join(root, d), { recursive: true })
  chmodSync(join(root, 'tmp'), 0o1777)
  chownSync(join(root, 'home/node'), 1000, 1000)

  const changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']
  const extraCa = process.env.NODE_EXTRA_CA_CERTS
  if (extraCa && existsSync(extraCa)) {
    mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true })
    writeFileSync(join(root, 'etc/ssl/certs/extra-ca.crt'), readFileSync(extraCa))
    changes.push('ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/extra-ca.crt')
  }
  const tar = join(dir, 'rootfs.tar')
  execFileSync('tar', ['-cf', tar, '--numeric-owner', '-C', root, '.'])
  return { tar, changes }
}
