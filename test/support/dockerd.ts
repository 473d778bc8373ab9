/** A private Docker engine for tests: its own socket, data root and no networking changes. */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const DOCKERD = '/usr/sbin/dockerd'
/** Debian's client, matching its engine (another docker CLI may be first on PATH). */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'

export interface Dockerd {
  host: string
  docker(args: string[], options?: { input?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>
  stop(): Promise<void>
}

/** `args`: more daemon flags (`--registry-mirror=…`). */
export async function startDockerd(dir: string, args: string[] = []): Promise<Dockerd> {
  mkdirSync(join(dir, 'exec'), { recursive: true })
  const host = `unix://${join(dir, 'docker.sock')}`
  const child: ChildProcess = spawn(DOCKERD, [
    '--host', host, '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'),
    '--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs', ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout!.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-10_000) })
  child.stderr!.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-10_000) })
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: join(dir, 'config') }
  const docker: Dockerd['docker'] = async (args, options = {}) => {
    const p = run(DOCKER, args, { env: { ...env, ...options.env }, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 })
    if (options.input !== undefined) {
      p.child.stdin!.end(options.input)
    }
    return p
  }
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`dockerd exited:\n${log}`)
    if (await docker(['version']).then(() => true, () => false)) {
      return {
        host, docker,
        async stop() {
          const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
          await exited
          clearTimeout(timer)
          unmountUnder(dir)
        },
      }
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  child.kill('SIGKILL')
  throw new Error(`dockerd not ready after 30 s:\n${log}`)
}

/**
 * dockerd leaves mounts in its exec root once it has run a container (the host network namespace
 * at exec/netns/default): unmount everything under `dir`, deepest first, so the folder can go.
 */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const point of mounts) {
    try {
      execFileSync('umount', [point])
    } catch {
      execFileSync('umount', ['-l', point])
    }
  }
}
