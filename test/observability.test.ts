/**
 * What an operator sees of a running `enlil serve`: the startup line, one JSON access line per
 * request without secrets, Prometheus metrics on their own listener (summed across --workers), and
 * the `enlil readonly` command switching a running instance.
 */
import { execFile } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import { afterAll, describe, expect, it } from 'vitest'
import { randomBlob } from './support/oci-client.js'
import { freePort, removeDir, ROOT, type Running, startEnlil, tempDir } from './support/processes.js'

const dirs: string[] = []
const running: Running[] = []
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()))
  dirs.forEach(removeDir)
})

function jsonLines(output: string): Record<string, unknown>[] {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** One request on its own connection, so node:cluster spreads them over the workers. */
function get(url: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { agent: false }, (res) => { res.resume(); res.on('end', () => ok(res.statusCode ?? 0)) })
    req.on('error', fail)
    req.end()
  })
}

/** The value of one series in Prometheus text, 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line ? Number(line.slice(series.length + 1)) : 0
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('enlil serve, observed', () => {
  it('prints where it listens, the store and the auth mode; logs each request once, without secrets', async () => {
    const root = tempDir('obs')
    dirs.push(root)
    const htpasswd = join(root, 'htpasswd')
    writeFileSync(htpasswd, `alice:${bcrypt.hashSync('s3cret-pass', 4)}\n`)
    const enlil = await startEnlil(join(root, 'data'), {
      REGISTRY_LOG_LEVEL: 'info', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false',
      REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: htpasswd,
    })
    running.push(enlil)
    const auth = `Basic ${Buffer.from('alice:s3cret-pass').toString('base64')}`
    const blob = randomBlob(1234)
    const post = await fetch(`${enlil.url}/v2/obs/app/blobs/uploads/?digest=${blob.digest}`, {
      method: 'POST', body: blob.bytes, headers: { Authorization: auth, 'X-Request-Id': 'req-push-1' },
    })
    expect(post.status).toBe(201)
    const pull = await fetch(`${enlil.url}/v2/obs/app/blobs/${blob.digest}?_state=STATE-SECRET&X-Amz-Signature=SIG-SECRET`, { headers: { Authorization: auth, 'X-Request-Id': 'req-pull-1' } })
    expect(Buffer.from(await pull.arrayBuffer()).equals(blob.bytes)).toBe(true)
    expect((await fetch(`${enlil.url}/v2/obs/app/tags/list`, { headers: { 'X-Request-Id': 'req-anon-1' } })).status).toBe(401)

    await eventually(() => enlil.output().includes('req-anon-1'), 'the access lines')
    const lines = jsonLines(enlil.output())
    const startup = lines.find((l) => l.msg === 'enlil is serving')!
    expect(startup).toMatchObject({ url: enlil.url, storage: 'filesystem', root: join(root, 'data'), auth: 'htpasswd' })

    const access = (id: string) => lines.filter((l) => l.msg === 'request' && l.requestId === id)
    expect(access('req-push-1')).toHaveLength(1)
    expect(access('req-push-1')[0]).toMatchObject({ method: 'POST', route: 'upload', status: 201, bytesIn: 1234, user: 'alice' })
    expect(access('req-pull-1')[0]).toMatchObject({ method: 'GET', route: 'blob', status: 200, user: 'alice', path: `/v2/obs/app/blobs/${blob.digest}` })
    expect(access('req-pull-1')[0]!.bytesOut as number).toBeGreaterThan(1234)
    expect(typeof access('req-pull-1')[0]!.ms).toBe('number')
    expect(access('req-anon-1')[0]).toMatchObject({ status: 401, route: 'tags' })
    expect(access('req-anon-1')[0]!.user).toBeUndefined()
    for (const secret of ['s3cret-pass', Buffer.from('alice:s3cret-pass').toString('base64'), 'STATE-SECRET', 'SIG-SECRET']) {
      expect(enlil.output()).not.toContain(secret)
    }
  })

  it('serves metrics on their own listener only, summed over two workers, and counts by route template', async () => {
    const root = tempDir('metrics')
    dirs.push(root)
    const metricsPort = await freePort()
    const enlil = await startEnlil(root, { ENLIL_WORKERS: '2', ENLIL_METRICS_ADDR: `127.0.0.1:${metricsPort}`, REGISTRY_LOG_LEVEL: 'info' })
    running.push(enlil)
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4')
      return res.text()
    }
    // Not on the public port.
    expect((await fetch(`${enlil.url}/metrics`)).status).toBe(404)
    const before = await scrape()
    const blob = randomBlob(4096)
    expect((await fetch(`${enlil.url}/v2/m/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes })).status).toBe(201)
    const statuses = await Promise.all(Array.from({ length: 20 }, () => get(`${enlil.url}/v2/m/app/blobs/${blob.digest}`)))
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect(await get(`${enlil.url}/v2/m/app/manifests/nope`)).toBe(404)
    // node:cluster hands new connections to the workers in turn: both served some of the 20 pulls.
    const after = await scrape()

    const delta = (series: string) => sample(after, series) - sample(before, series)
    expect(delta('enlil_http_requests_total{route="blob",method="GET",status="200"}')).toBe(20)
    expect(delta('enlil_http_requests_total{route="upload",method="POST",status="201"}')).toBe(1)
    expect(delta('enlil_http_requests_total{route="manifest",method="GET",status="404"}')).toBe(1)
    expect(delta('enlil_http_request_bytes_total{route="upload"}')).toBe(4096)
    expect(delta('enlil_http_response_bytes_total{route="blob"}')).toBeGreaterThan(20 * 4096)
    expect(delta('enlil_http_request_duration_seconds_count{route="blob",method="GET"}')).toBe(20)
    expect(after).toContain('# TYPE enlil_http_request_duration_seconds histogram')
    expect(after).toMatch(/^enlil_uploads_in_progress 0$/m)
    expect(after).toContain('# TYPE enlil_gc_runs_total counter')
  })

  it('`enlil readonly on` switches a running instance within seconds, `off` switches it back', async () => {
    const root = tempDir('ro')
    dirs.push(root)
    const enlil = await startEnlil(root)
    running.push(enlil)
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [join(ROOT, 'dist/main.js'), 'readonly', ...args], {
      env: { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root },
    })
    const on = await cli('on', '--reason', 'disk migration')
    expect(on.stdout).toContain('read-only: on since')
    expect(on.stdout).toContain('disk migration')
    let status = 0
    // Each instance re-reads the marker every few seconds: poll, bounded.
    for (let i = 0; i < 100 && status !== 405; i++) {
      status = (await fetch(`${enlil.url}/v2/ro/app/blobs/uploads/`, { method: 'POST' })).status
      if (status !== 405) await new Promise((r) => setTimeout(r, 100))
    }
    expect(status).toBe(405)
    expect((await fetch(`${enlil.url}/v2/_catalog`)).status).toBe(200)
    expect((await cli('status')).stdout).toContain('read-only: on')
    expect((await cli('off')).stdout).toContain('read-only: off')
    for (let i = 0; i < 100 && status !== 202; i++) {
      status = (await fetch(`${enlil.url}/v2/ro/app/blobs/uploads/`, { method: 'POST' })).status
      if (status !== 202) await new Promise((r) => setTimeout(r, 100))
    }
    expect(status).toBe(202)
  })
})
