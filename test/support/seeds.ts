/** What the seed-setup tests share: running enlil's CLI as a user would, and a real nginx from a user's server block. */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './processes.js'

export const NGINX = '/usr/sbin/nginx'

/** `enlil ARGS` (the built dist/main.js) in `cwd` with `env` added; resolves with its exit code and output. Bounded: 20 s. */
export function enlilCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(process.execPath, [join(ROOT, 'dist/main.js'), ...args], { cwd, env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      ok({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr })
    })
  })
}

/**
 * Starts nginx in `home` with the user's `server` blocks inside an http block that only adds its
 * own pid, log and temp paths; resolves once `port` answers.
 */
export async function startNginx(home: string, servers: string, port: number): Promise<ChildProcess> {
  mkdirSync(home, { recursive: true })
  const conf = join(home, 'nginx.conf')
  writeFileSync(conf, [
    process.getuid?.() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${home}/nginx.pid;`,
    `error_log ${home}/error.log warn;`,
    'events { worker_connections 256; }',
    'http {',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${home}/${t};`),
    servers,
    '}',
    '',
  ].join('\n'))
  const child = spawn(NGINX, ['-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break
    if (await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.arrayBuffer().then(() => true), () => false)) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  const log = existsSync(join(home, 'error.log')) ? readFileSync(join(home, 'error.log'), 'utf8') : ''
  throw new Error(`nginx did not start: ${err}\n${log}`)
}

export async function stopNginx(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return
  const exited = new Promise((ok) => child.once('exit', ok))
  child.kill('SIGQUIT')
  await exited
}
