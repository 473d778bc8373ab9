/**
 * Upstream registries for the pull-through cache's tests: Debian's docker-registry with htpasswd,
 * and a counting proxy in front of an upstream that can also fail the ways upstreams fail (down,
 * rate-limited, a blob body cut off halfway, wrong bytes).
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { DOCKER_REGISTRY, freePort, type Running } from '../support/processes.js'

/** Debian's docker-registry over a folder, with htpasswd auth for `user`. */
export async function startHtpasswdDistribution(dir: string, user: string, password: string): Promise<Running> {
  const port = await freePort()
  writeFileSync(join(dir, 'htpasswd'), `${user}:${bcrypt.hashSync(password, 8)}\n`)
  const config = join(dir, 'distribution.yml')
  writeFileSync(config, [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } }`,
    `http: { addr: "127.0.0.1:${port}", secret: enlil-mirror-test }`,
    `auth: { htpasswd: { realm: upstream, path: ${join(dir, 'htpasswd')} } }`,
    'health: { storagedriver: { enabled: false } }',
    '',
  ].join('\n'))
  const child = spawn(DOCKER_REGISTRY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited:\n${out}`)
    const ok = await fetch(`${url}/v2/`).then(async (r) => { await r.arrayBuffer(); return r.status === 401 }, () => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url, port, process: child, output: () => out,
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
      child.kill('SIGTERM')
      await exited
    },
  }
}

export type ProxyMode = 'pass' | 'down' | 'ratelimit' | 'cut' | 'corrupt'

export interface CountingProxy {
  url: string
  /** How the proxy treats requests from now on (`cut` and `corrupt` apply to blob GETs only). */
  mode: ProxyMode
  /** Successful GETs: manifests by `repo:reference`, blobs by digest. */
  manifestGets: Map<string, number>
  blobGets: Map<string, number>
  reset(): void
  close(): Promise<void>
}

const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1)

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target)
  const proxy: CountingProxy = {
    url: '', mode: 'pass', manifestGets: new Map(), blobGets: new Map(),
    reset() {
      proxy.manifestGets.clear()
      proxy.blobGets.clear()
    },
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()) }),
  }
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)/.exec(req.url ?? '')
    const isBlobGet = req.method === 'GET' && m?.[2] === 'blobs'
    if (proxy.mode === 'down') {
      req.socket.destroy()
      return
    }
    if (proxy.mode === 'ratelimit') {
      res.writeHead(429, { 'Retry-After': '17', 'Content-Type': 'application/json' })
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}')
      return
    }
    const mode = proxy.mode
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } }, (answer) => {
      if (req.method === 'GET' && answer.statusCode === 200 && m) bump(m[2] === 'blobs' ? proxy.blobGets : proxy.manifestGets, m[2] === 'blobs' ? m[3]! : `${m[1]}:${m[3]}`)
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      if (!isBlobGet || answer.statusCode !== 200 || mode === 'pass') {
        answer.pipe(res)
        return
      }
      const length = Number(answer.headers['content-length'] ?? 0)
      let sent = 0
      answer.on('data', (chunk: Buffer) => {
        if (mode === 'cut') {
          const room = Math.floor(length / 2) - sent
          if (room > 0) res.write(chunk.subarray(0, room))
          sent += chunk.length
          if (sent >= length / 2) {
            answer.destroy()
            res.destroy()
          }
          return
        }
        // corrupt: same length, one byte flipped
        const copy = Buffer.from(chunk)
        if (sent === 0 && copy.length > 0) copy[0] = copy[0]! ^ 0xff
        sent += chunk.length
        res.write(copy)
      })
      answer.on('end', () => res.end())
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return proxy
}
