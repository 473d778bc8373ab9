/**
 * enlil behind a real nginx (Debian's nginx-light), two ways:
 * - as users write it when they only pass Host and X-Forwarded-Proto: every client is nginx's
 *   127.0.0.1 and the client's own X-Forwarded-For goes through untouched. A guesser's 20 wrong
 *   passwords for alice lock out alice from there, and nobody else: bob logs in, anonymous pulls go on.
 * - as the README says (`X-Forwarded-For $remote_addr`, enlil trusting 127.0.0.1): a client's
 *   forged header is replaced by the address nginx saw, so it cannot claim the ACL's network.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Blob } from '../support/oci-client.js'
import { freePort, removeDir, requirePart, type Running, startEnlil, tempDir } from '../support/processes.js'
import { basic, loggedLines, PASSWORDS, pushBlob, send, statusAndBytes, statusesOf, writeConfig, writeUsers } from './edge.js'

const NGINX = '/usr/sbin/nginx'
const available = requirePart(existsSync(NGINX), 'nginx (Debian nginx-light, a real reverse proxy)', 'apt-get install nginx-light')

const dir = tempDir('edge-nginx')
const running: Running[] = []
let nginx: ChildProcess | undefined
afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((ok) => nginx!.once('exit', ok))
    nginx.kill('SIGQUIT')
    await exited
  }
  await Promise.all(running.map((r) => r.stop()))
  removeDir(dir)
})

/** Starts nginx with `servers` (server blocks) in the http block, with its own pid, logs and temp paths. */
async function startNginx(servers: string[], ports: number[]): Promise<ChildProcess> {
  const home = join(dir, 'nginx')
  mkdirSync(home, { recursive: true })
  const conf = join(home, 'nginx.conf')
  writeFileSync(conf, [
    process.getuid?.() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${home}/nginx.pid;`,
    `error_log ${home}/error.log warn;`,
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${home}/${t};`),
    ...servers,
    '}',
    '',
  ].join('\n'))
  const child = spawn(NGINX, ['-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break
    const up = await Promise.all(ports.map((p) => fetch(`http://127.0.0.1:${p}/healthz`).then((r) => r.arrayBuffer().then(() => true), () => false)))
    if (up.every(Boolean)) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  const log = existsSync(join(home, 'error.log')) ? readFileSync(join(home, 'error.log'), 'utf8') : ''
  throw new Error(`nginx did not start: ${err}\n${log}`)
}

const alice = basic('alice', PASSWORDS.alice)

describe.skipIf(!available)('behind nginx', () => {
  let plain: { enlil: Running; url: string; open: Blob; secret: Blob }
  let recommended: { enlil: Running; url: string; secret: Blob }

  beforeAll(async () => {
    const start = async (name: string, env: Record<string, string>) => {
      const root = join(dir, name)
      mkdirSync(root, { recursive: true })
      const enlil = await startEnlil(join(root, 'data'), {
        REGISTRY_CONFIG: writeConfig(root, { htpasswd: { path: writeUsers(root), realm: 'edge' } }),
        ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false', ...env,
      })
      running.push(enlil)
      return enlil
    }
    const [first, second] = await Promise.all([start('plain', {}), start('recommended', { ENLIL_HTTP_TRUSTEDPROXIES: '127.0.0.1' })])
    const [plainPort, recommendedPort] = [await freePort(), await freePort()]
    nginx = await startNginx([
      // As a user wrote it: no X-Forwarded-For of its own.
      `  server { listen 127.0.0.1:${plainPort}; location / { proxy_pass http://127.0.0.1:${first!.port}; proxy_set_header Host $http_host; proxy_set_header X-Forwarded-Proto $scheme; } }`,
      // As README.md's "Behind nginx or Caddy" says.
      `  server { listen 127.0.0.1:${recommendedPort}; client_max_body_size 0; proxy_request_buffering off; proxy_buffering off;`,
      `    location / { proxy_pass http://127.0.0.1:${second!.port}; proxy_http_version 1.1; proxy_set_header Host $http_host; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-For $remote_addr; } }`,
    ], [plainPort, recommendedPort])
    plain = { enlil: first!, url: `http://127.0.0.1:${plainPort}`, open: await pushBlob(first!.url, 'public/app', alice), secret: await pushBlob(first!.url, 'private/app', alice) }
    recommended = { enlil: second!, url: `http://127.0.0.1:${recommendedPort}`, secret: await pushBlob(second!.url, 'private/app', alice) }
  })

  it('without X-Forwarded-For from nginx, 20 wrong passwords lock out alice from there, and only alice', async () => {
    const { url, open } = plain
    const tries = await statusesOf(22, (i) => send(`${url}/v2/`, { Authorization: basic('alice', `guess-${i}`) }))
    expect(tries).toEqual([...Array(10).fill(401), ...Array(12).fill(429)])
    expect((await send(`${url}/v2/`, { Authorization: alice })).status).toBe(429)
    expect(await statusesOf(3, () => send(`${url}/v2/`, { Authorization: basic('bob', PASSWORDS.bob) }))).toEqual([200, 200, 200])
    const pulled = await send(`${url}/v2/public/app/blobs/${open.digest}`).then(statusAndBytes)
    expect(pulled.status).toBe(200)
    expect(pulled.bytes).toBe(open.bytes.length)
  }, 60_000)

  it('the client\'s own X-Forwarded-For, passed through by nginx, does not satisfy the ip rule', async () => {
    const { url, secret, enlil } = plain
    const got = await send(`${url}/v2/private/app/blobs/${secret.digest}`, { 'X-Forwarded-For': '198.51.100.9' }).then(statusAndBytes)
    expect(got.status).toBe(401)
    expect(got.bytes).toBeLessThan(secret.bytes.length)
    const [line] = await loggedLines(enlil.output, (l) => l.path === `/v2/private/app/blobs/${secret.digest}`, 1)
    expect(line?.addr).toBe('127.0.0.1')
  })

  it('with the README\'s config, a forged X-Forwarded-For is replaced by the address nginx saw', async () => {
    const { url, secret, enlil } = recommended
    const got = await send(`${url}/v2/private/app/blobs/${secret.digest}`, { 'X-Forwarded-For': '198.51.100.9' }).then(statusAndBytes)
    expect(got.status).toBe(401)
    expect(got.bytes).toBeLessThan(secret.bytes.length)
    const [line] = await loggedLines(enlil.output, (l) => l.path === `/v2/private/app/blobs/${secret.digest}`, 1)
    expect(line?.addr).toBe('127.0.0.1')
    // Straight to enlil, 127.0.0.1 is the trusted proxy: there the header would count (enlil listens on loopback only).
    expect((await send(`${enlil.url}/v2/private/app/blobs/${secret.digest}`, { 'X-Forwarded-For': '198.51.100.9' })).status).toBe(200)
  })
})
