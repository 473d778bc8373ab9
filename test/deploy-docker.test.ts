/**
 * The Dockerfile, built unchanged by Debian's Docker engine with the legacy builder on a local
 * stand-in of its base image (no base image can be pulled here), then run: /healthz, the image's
 * HEALTHCHECK turning healthy, pushes and pulls through it, a non-root process, data in /data.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Dockerd, DOCKERD, startDockerd } from './support/dockerd.js'
import { expectServed, pushImages } from './support/images.js'
import { buildNodeRootfs, npmDirectory } from './support/node-base-image.js'
import { freePort, removeDir, requirePart, ROOT, tempDir } from './support/processes.js'

const available = requirePart(existsSync(DOCKERD), 'the Docker engine (dockerd)', 'apt-get install --no-install-recommends docker.io')
  && requirePart(npmDirectory() !== undefined, 'npm next to node (for the build stage of the stand-in base image)', 'apt-get install npm')

/** The base image the Dockerfile names, so the stand-in gets exactly that name. */
function baseImage(): string {
  const from = /^FROM\s+(\S+)/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1]
  if (!from) throw new Error('Dockerfile has no FROM line')
  return from
}

describe.skipIf(!available)('the Docker image', () => {
  let dir: string
  let engine: Dockerd
  let port: number
  const image = 'enlil-test:deploy'
  const container = `enlil-deploy-${process.pid}`
  const registry = () => `127.0.0.1:${port}`

  beforeAll(async () => {
    dir = tempDir('deploy-docker')
    engine = await startDockerd(join(dir, 'engine'))
    const { tar, changes } = buildNodeRootfs(dir)
    await engine.docker(['import', ...changes.flatMap((c) => ['--change', c]), tar, baseImage()])
    // The legacy builder (no buildx here); host networking so that `npm ci` reaches the registry.
    await engine.docker(['build', '--network', 'host', '-t', image, ROOT], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 480_000 }).catch((err: { message: string; stdout?: string; stderr?: string }) => {
      // The build's own output says which step failed and why.
      throw new Error(`${err.message}\n${(err.stdout ?? '').slice(-3000)}\n${(err.stderr ?? '').slice(-3000)}`)
    })
    port = await freePort()
    await engine.docker([
      'run', '-d', '--name', container, '--network', 'host',
      '-e', `REGISTRY_HTTP_ADDR=${registry()}`, '-e', 'REGISTRY_LOG_ACCESSLOG_DISABLED=true',
      // The image's own check command, probed every second instead of every 30 s.
      '--health-interval', '1s', '--health-start-period', '0s', image,
    ])
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`http://${registry()}/healthz`).catch(() => undefined)
      if (res?.status === 200) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`the container did not answer /healthz:\n${(await engine.docker(['logs', container]).catch((e: Error) => ({ stdout: '', stderr: e.message }))).stderr}`)
  }, 600_000)

  afterAll(async () => {
    await engine?.docker(['rm', '-f', '-v', container]).catch(() => undefined)
    // The images go with the engine's data root, removed below (rmi on vfs copies nothing but is slow).
    await engine?.stop()
    if (dir) removeDir(dir)
  }, 180_000)

  it('is configured as documented: user node, port 5000, a /data volume, the healthcheck', async () => {
    const config = JSON.parse((await engine.docker(['image', 'inspect', '--format', '{{json .Config}}', image])).stdout) as {
      User: string; ExposedPorts: Record<string, object>; Volumes: Record<string, object>; Cmd: string[]; Env: string[]
      Healthcheck: { Test: string[]; Interval: number }
    }
    expect(config.User).toBe('node')
    expect(Object.keys(config.ExposedPorts)).toEqual(['5000/tcp'])
    expect(Object.keys(config.Volumes)).toEqual(['/data'])
    expect(config.Cmd).toEqual(['node', 'dist/main.js', 'serve'])
    expect(config.Env).toContain('REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data')
    expect(config.Healthcheck.Test).toEqual(['CMD', 'node', 'dist/main.js', 'healthcheck'])
    // The first check runs one interval after the start: README.md says "healthy about 10 s after the start".
    expect(config.Healthcheck.Interval).toBe(10e9)
    // Production dependencies only: no compiler or test runner in the image.
    const modules = (await engine.docker(['exec', container, 'node', '-e', 'console.log(require("fs").readdirSync("node_modules").join(" "))'])).stdout
    expect(modules).toContain('hono')
    expect(modules).not.toMatch(/\b(typescript|vitest)\b/)
  })

  it('runs as a non-root user', async () => {
    const uid = (await engine.docker(['exec', container, 'node', '-e', 'process.stdout.write(String(process.getuid()))'])).stdout
    expect(Number(uid)).toBe(1000)
  })

  it("serves pushes and pulls, docker's and an OCI client's, into the /data volume", async () => {
    const pushed = await pushImages(`http://${registry()}`, 'deploy/oci')
    await expectServed(`http://${registry()}`, pushed)

    writeFileSync(join(dir, 'hello.txt'), `hello from the enlil image ${Date.now()}\n`)
    execFileSync('tar', ['-cf', join(dir, 'hello.tar'), '-C', dir, 'hello.txt'])
    const tag = `${registry()}/deploy/hello:v1`
    await engine.docker(['import', join(dir, 'hello.tar'), tag])
    const push = await engine.docker(['push', tag])
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1]
    expect(digest).toBeDefined()
    await engine.docker(['rmi', tag])
    expect((await engine.docker(['pull', tag])).stdout).toContain(digest)

    const mounts = JSON.parse((await engine.docker(['inspect', '--format', '{{json .Mounts}}', container])).stdout) as { Type: string; Destination: string }[]
    expect(mounts).toContainEqual(expect.objectContaining({ Type: 'volume', Destination: '/data' }))
    const repos = (await engine.docker(['exec', container, 'node', '-e', 'console.log(require("fs").readdirSync("/data/docker/registry/v2/repositories/deploy").sort().join(" "))'])).stdout
    expect(repos.trim()).toBe('hello oci')
  }, 120_000)

  it("turns healthy by the image's HEALTHCHECK", async () => {
    let status = ''
    for (let i = 0; i < 60 && status !== 'healthy'; i++) {
      status = (await engine.docker(['inspect', '--format', '{{.State.Health.Status}}', container])).stdout.trim()
      if (status !== 'healthy') await new Promise((r) => setTimeout(r, 500))
    }
    expect(status).toBe('healthy')
  }, 60_000)
})
