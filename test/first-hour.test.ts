/**
 * What a new user sees in the first hour: one startup summary (also with workers), a second Ctrl-C
 * that stops at once during an upload, `enlil gc` naming the store it looked at, and `npm start`
 * compiling only when the sources changed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, removeDir, ROOT, tempDir } from './support/processes.js'

const dirs: string[] = []
const children: ChildProcess[] = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  dirs.forEach(removeDir)
})

async function eventually(condition: () => boolean, what: string, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}:\n${output()}`)
}

interface Serving {
  child: ChildProcess
  url: string
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** `enlil serve ARGS` as a user starts it, on a free loopback port, until /v2/ answers. */
async function serve(args: string[], env: Record<string, string>, cwd: string): Promise<Serving> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(ROOT, 'dist/main.js'), 'serve', ...args], {
    cwd, env: { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, REGISTRY_LOG_ACCESSLOG_DISABLED: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.once('exit', (code, signal) => ok({ code, signal })))
  const url = `http://127.0.0.1:${port}`
  let up = false
  const probe = async () => {
    up = await fetch(`${url}/v2/`).then((r) => r.status === 200, () => false)
  }
  for (let i = 0; i < 200 && !up && child.exitCode === null; i++) {
    await probe()
    if (!up) await new Promise((r) => setTimeout(r, 50))
  }
  if (!up) throw new Error(`enlil did not start:\n${stdout}${stderr}`)
  return { child, url, stdout: () => stdout, stderr: () => stderr, exited }
}

const jsonLines = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)

/** Child processes of a pid, from /proc (field 4 of stat is the parent). */
const childrenOf = (pid: number) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((p) => {
  try {
    return readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1] === String(pid)
  } catch {
    return false
  }
})

/** Starts an upload whose body keeps coming: half of it now, the rest never. */
function uploadInFlight(url: string): Promise<void> {
  return new Promise((sent, fail) => {
    const req = request(`${url}/v2/first/hour/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, {
      method: 'POST', headers: { 'Content-Length': String(1024 * 1024), 'Content-Type': 'application/octet-stream' },
    })
    req.on('error', () => {}) // the server going away is what the test is about
    req.on('response', (res) => res.resume())
    req.write(Buffer.alloc(512 * 1024), (err) => (err ? fail(err) : sent()))
  })
}

describe('enlil serve at startup', () => {
  it('with --workers 2, says once that it serves: the config file, where it listens, the store, the auth warning; every line JSON', async () => {
    const dir = tempDir('summary')
    dirs.push(dir)
    const config = join(dir, 'enlil.yml')
    // An S3 store, so that the AWS SDK is loaded in every worker (on Node 20 it warns in several lines).
    writeFileSync(config, 'storage:\n  s3:\n    bucket: summary\n    regionendpoint: http://127.0.0.1:9\n    accesskey: AKIDSUMMARY\n    secretkey: summary-secret\n')
    const enlil = await serve(['enlil.yml', '--workers', '2'], { REGISTRY_LOG_LEVEL: 'info' }, dir)
    await eventually(() => enlil.stdout().includes('authentication is off'), 'the startup lines', () => enlil.stdout())
    // Give a late worker the time to say it again, were it to.
    await new Promise((r) => setTimeout(r, 500))
    const lines = jsonLines(enlil.stdout())
    const summaries = lines.filter((l) => l.msg === 'enlil is serving')
    expect(summaries).toHaveLength(1)
    expect(summaries[0]).toMatchObject({
      url: enlil.url, listen: `${enlil.url.slice('http://'.length)} only`, config, workers: 2,
      storage: 's3', bucket: 'summary', endpoint: 'http://127.0.0.1:9', auth: 'none',
    })
    expect(lines.filter((l) => String(l.msg).startsWith('authentication is off'))).toHaveLength(1)
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual(['authentication is off: anyone who can reach this port can push and pull'])
    expect(enlil.stderr()).toBe('')
    expect(enlil.stdout()).not.toContain('summary-secret')
    enlil.child.kill('SIGTERM')
    expect((await enlil.exited).code).toBe(0)
  })

  it('a single process names a relative folder as the absolute one it serves, and a missing config as none', async () => {
    const dir = tempDir('summary-one')
    dirs.push(dir)
    const enlil = await serve([], { ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'info', REGISTRY_CONFIG: '', ENLIL_CONFIG: '' }, dir)
    await eventually(() => enlil.stdout().includes('authentication is off'), 'the startup lines', () => enlil.stdout())
    const summaries = jsonLines(enlil.stdout()).filter((l) => l.msg === 'enlil is serving')
    expect(summaries).toHaveLength(1)
    expect(summaries[0]).toMatchObject({ url: enlil.url, config: 'none (defaults and the environment)', workers: 1, storage: 'filesystem', root: join(dir, 'data') })
    enlil.child.kill('SIGTERM')
    expect((await enlil.exited).code).toBe(0)
  })
})

describe('Ctrl-C during an upload', () => {
  it.each([['one process', '1'], ['two workers', '2']])('%s: the first drains and waits, the second stops at once', async (_, workers) => {
    const dir = tempDir('sigint')
    dirs.push(dir)
    const enlil = await serve([], { ENLIL_WORKERS: workers, REGISTRY_LOG_LEVEL: 'info', REGISTRY_HTTP_DRAINTIMEOUT: '60s' }, dir)
    const pid = enlil.child.pid!
    if (workers === '2') await eventually(() => childrenOf(pid).length === 2, 'two workers', enlil.stdout)
    const workerPids = childrenOf(pid)
    await uploadInFlight(enlil.url)
    enlil.child.kill('SIGINT')
    await eventually(() => enlil.stdout().includes('send the signal again to stop at once'), 'the drain', enlil.stdout)
    // Draining: the upload holds it up (for up to the 60 s of http.draintimeout).
    await new Promise((r) => setTimeout(r, 500))
    expect(enlil.child.exitCode).toBeNull()
    const second = Date.now()
    enlil.child.kill('SIGINT')
    const exit = await enlil.exited
    expect(exit.code).toBe(130)
    // Not a speed measurement: ignoring the second signal would mean waiting out the 60 s drain.
    expect(Date.now() - second).toBeLessThan(30_000)
    expect(jsonLines(enlil.stdout()).some((l) => l.msg === 'stopping now, without waiting for the requests in flight')).toBe(true)
    await eventually(() => workerPids.every((p) => { try { readFileSync(`/proc/${p}/stat`); return false } catch { return true } }), 'the workers gone', enlil.stdout)
  })
})

describe('enlil gc', () => {
  const gc = (cwd: string, args: string[] = [], env: Record<string, string> = {}) => spawnSync(process.execPath, [join(ROOT, 'dist/main.js'), 'gc', ...args], {
    cwd, encoding: 'utf8', timeout: 30_000, env: { ...process.env, REGISTRY_CONFIG: '', ENLIL_CONFIG: '', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '', ...env },
  })

  it('run from another folder: names the folder it looked at and warns that it holds nothing', () => {
    const elsewhere = tempDir('gc-elsewhere')
    dirs.push(elsewhere)
    const missing = gc(elsewhere, ['--dry-run'])
    expect(missing.status).toBe(0)
    expect(missing.stderr).toContain(`enlil gc: store: the folder ${join(elsewhere, 'data')}\n`)
    expect(missing.stderr).toContain(`enlil gc: warning: the folder ${join(elsewhere, 'data')} does not exist.`)
    mkdirSync(join(elsewhere, 'data'))
    const empty = gc(elsewhere, ['--dry-run'])
    expect(empty.stderr).toContain(`enlil gc: warning: the folder ${join(elsewhere, 'data')} holds no repositories.`)
  })

  it('given a config, names it and the folder it names (relative to where gc runs)', () => {
    const dir = tempDir('gc-config')
    dirs.push(dir)
    writeFileSync(join(dir, 'enlil.yml'), 'storage:\n  filesystem:\n    rootdirectory: ./store\n')
    const run = gc(dir, ['--config', 'enlil.yml', '-n'])
    expect(run.status).toBe(0)
    expect(run.stderr).toContain(`enlil gc: store: the folder ${join(dir, 'store')} (config enlil.yml)`)
  })
})

describe('npm start', () => {
  it('compiles when the sources changed, even to an older file time, and not when dist/ was built from them', () => {
    const project = tempDir('start-build')
    dirs.push(project)
    mkdirSync(join(project, 'src'))
    copyFileSync(join(ROOT, 'src/build-if-changed.mjs'), join(project, 'src/build-if-changed.mjs'))
    // The real tsc on a one-file project with the smallest library: the script, not tsc, is under test.
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2020', module: 'ES2020', lib: ['ES5'], types: [], outDir: 'dist', rootDir: 'src', skipLibCheck: true }, include: ['src/**/*.ts'] }))
    writeFileSync(join(project, 'package.json'), '{"type": "module"}\n')
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'))
    writeFileSync(join(project, 'src/main.ts'), "export const word: string = 'first'\n")
    const build = () => spawnSync(process.execPath, [join(project, 'src/build-if-changed.mjs')], { cwd: project, encoding: 'utf8', timeout: 60_000 })
    const built = () => readFileSync(join(project, 'dist/main.js'), 'utf8')

    expect(build().stderr).toContain('compiling src/')
    expect(built()).toContain("'first'")
    const again = build()
    expect(again.status).toBe(0)
    expect(again.stderr).toContain('not compiling again')

    // New content with a file time older than the build: still compiled.
    writeFileSync(join(project, 'src/main.ts'), "export const word: string = 'second'\n")
    utimesSync(join(project, 'src/main.ts'), new Date('2001-01-01'), new Date('2001-01-01'))
    expect(build().stderr).toContain('compiling src/')
    expect(built()).toContain("'second'")

    // dist/ rewritten by a tsc run by hand on other sources, then the sources put back: compiled again.
    writeFileSync(join(project, 'src/main.ts'), "export const word: string = 'by hand'\n")
    expect(spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8' }).status).toBe(0)
    writeFileSync(join(project, 'src/main.ts'), "export const word: string = 'second'\n")
    expect(build().stderr).toContain('compiling src/')
    expect(built()).toContain("'second'")

    // tsc writes dist/ even when the types are wrong: such a build never counts as current.
    writeFileSync(join(project, 'src/main.ts'), "export const word: number = 'third'\n")
    expect(build().status).not.toBe(0)
    const retried = build()
    expect(retried.status).not.toBe(0)
    expect(retried.stderr).toContain('compiling src/')
  })
})
