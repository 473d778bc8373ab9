/**
 * The benchmark harness as a user runs it (`node test/bench/bench.mjs …`), at tiny sizes: it must
 * finish without errors against enlil with token auth and workers, do the token dance without a 401
 * per request, write what the README cites, and refuse what it cannot do with a clear message.
 * Timings are never asserted.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT, removeDir, startEnlil, tempDir } from '../support/processes.js'

const BENCH = join(ROOT, 'test/bench/bench.mjs')
const TINY = ['--quick', '--size', '2MiB', '--chunk', '1MiB', '--clients', '2', '--small-count', '2', '--manifests', '6', '--page', '4', '--mounts', '4', '--no-warmup']

function bench(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [BENCH, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGINT'), 90_000) // the harness cleans up on SIGINT
    child.once('error', fail)
    child.once('close', (code) => {
      clearTimeout(timer)
      ok({ code, stdout, stderr })
    })
  })
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d)
})

describe('npm run bench', () => {
  it('benches enlil with token auth and 2 workers without errors, and records what the README cites', async () => {
    const dir = tempDir('bench-test')
    dirs.push(dir)
    const out = join(dir, 'result.json')
    const run = await bench([...TINY, '--targets', 'enlil', '--auth', 'token', '--workers', '2', '--markdown', '--out', out])
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toContain('| scenario | enlil (token auth, 2 workers) |')
    expect(run.stdout).toMatch(/^\| small-concurrent \(req\/s\) \| \d/m)

    const report = JSON.parse(readFileSync(out, 'utf8'))
    expect(report).toMatchObject({ errors: 0, auth: 'token', workers: 2, store: { driver: 'filesystem' } })
    expect(report.machine).toMatchObject({ cores: expect.any(Number), node: process.version, kernel: expect.stringContaining('Linux') })
    expect(report.machine.mem_gib).toBeGreaterThan(0)
    const scenarios = report.results.map((r: { scenario: string }) => r.scenario)
    expect(scenarios).toEqual(expect.arrayContaining(['push-mono', 'push-chunked', 'push-stream', 'pull-blob', 'pull-range', 'small-concurrent', 'manifests:put', 'mount']))
    for (const r of report.results) {
      // the primary and its two workers are measured; tokens are cached per scope, so no section met a 401
      expect(r, r.scenario).toMatchObject({ errors: 0, processes: 3, auth_challenges: 0 })
      expect(r.rss_worker_peak_mib).toBeLessThan(r.rss_peak_mib)
    }
    // a push, a pull and a mount each needed their token once
    expect(report.results.find((r: { scenario: string }) => r.scenario === 'mount').ops['auth-token'].n).toBe(1)
    expect(report.options.password).toBeUndefined()
  })

  it('logs in to a running registry with --user/--password, and says why it cannot with wrong ones', async () => {
    const dir = tempDir('bench-test')
    dirs.push(dir)
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('right-password', 4)}\n`)
    const enlil = await startEnlil(join(dir, 'data'), { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users') })
    try {
      const target = `e=${enlil.url},pid=${enlil.process.pid}`
      const wrong = await bench([...TINY, '--url', target, '--user', 'alice', '--password', 'wrong', '--out', join(dir, 'r.json')])
      expect(wrong.code).toBe(2)
      expect(wrong.stderr).toContain('is not usable')
      expect(wrong.stderr).toContain('invalid username or password')
      const right = await bench([...TINY, '--url', target, '--user', 'alice', '--password', 'right-password', '--scenarios', 'mount', '--out', join(dir, 'r.json')])
      expect(right.code, right.stdout + right.stderr).toBe(0)
      expect(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')).results[0]).toMatchObject({ scenario: 'mount', errors: 0, auth_challenges: 0 })
    } finally {
      await enlil.stop()
    }
  })

  it('exits 2 naming the packages when --store s3 finds no Ceph', async () => {
    const run = await bench([...TINY, '--store', 's3'], { ...process.env, PATH: '/nonexistent' })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--store s3 needs Ceph')
    expect(run.stderr).toContain('apt-get install -y ceph-mon ceph-osd radosgw ceph-common')
  })

  it('refuses options that do not apply to --url targets', async () => {
    const run = await bench(['--url', 'x=http://127.0.0.1:1', '--auth', 'token'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--auth applies to the registries the harness starts')
  })
})
