/**
 * Garbage collection as a user sees it, on any store: a served registry, `enlil gc` run beside it
 * (the CLI, a separate process on the same store), then pulls. Each store's test file calls
 * `gcScenarios` with how to reach its registry.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import {
  type Blob, getBytes, imageManifest, OCI_INDEX, OCI_MANIFEST, pushBlobChunked, putManifest, randomBlob, sha256,
} from './oci-client.js'
import { expectServed, pushImages } from './images.js'
import { ROOT } from './processes.js'

export interface GcTarget {
  /** Base URL of a running enlil on the store. */
  url: string
  /** The environment that points enlil at the store (for `enlil gc`). */
  env: Record<string, string>
  /** A folder for config files. */
  dir: string
}

export interface GcRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `enlil gc ARGS` (dist/main.js) with the store's environment. */
export async function runGc(target: GcTarget, args: string[]): Promise<GcRun> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/main.js'), 'gc', ...args], {
    env: { ...process.env, ...target.env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000)
  const code = await new Promise<number | null>((ok) => child.on('exit', ok))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function gcOk(target: GcTarget, args: string[]): Promise<GcRun> {
  const run = await runGc(target, args)
  expect(run.code, `enlil gc ${args.join(' ')}:\n${run.stderr}`).toBe(0)
  return run
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function headBlob(base: string, repo: string, digest: string): Promise<number> {
  return (await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status
}

async function pushImage(base: string, repo: string, ref: string, extra: Record<string, unknown> = {}): Promise<{ digest: string; body: string; blobs: Blob[] }> {
  const config = randomBlob(200)
  const layer = randomBlob(30_000)
  for (const b of [config, layer]) await pushBlobChunked(base, repo, b)
  const body = Object.keys(extra).length === 0 ? imageManifest(config, [layer]) : JSON.stringify({ ...JSON.parse(imageManifest(config, [layer])), ...extra })
  const digest = await putManifest(base, repo, ref === 'digest' ? sha256(body) : ref, body, OCI_MANIFEST)
  return { digest, body, blobs: [config, layer] }
}

/** Pulls a manifest and its blobs the way a client does, comparing bytes. */
async function expectPullable(base: string, repo: string, ref: string, image: { digest: string; body: string; blobs: Blob[] }): Promise<void> {
  const m = await getBytes(`${base}/v2/${repo}/manifests/${ref}`, { Accept: OCI_MANIFEST })
  expect(m.status, `GET ${repo}:${ref}`).toBe(200)
  expect(m.bytes.toString()).toBe(image.body)
  for (const b of image.blobs) {
    const res = await getBytes(`${base}/v2/${repo}/blobs/${b.digest}`)
    expect(res.status, `GET blob ${b.digest} of ${repo}`).toBe(200)
    expect(sha256(res.bytes)).toBe(b.digest)
  }
}

export function gcScenarios(target: () => GcTarget): void {
  it('removes unreferenced blobs and keeps everything in use, byte for byte', async () => {
    const t = target()
    const pushed = await pushImages(t.url, 'gc/images')
    const orphans = [randomBlob(12_345), randomBlob(54_321)]
    for (const o of orphans) await pushBlobChunked(t.url, 'gc/orphans', o)

    const run = await gcOk(t, ['--grace', '0s'])
    for (const o of orphans) {
      expect(run.stdout).toContain(`deleting blob ${o.digest} (${o.bytes.length} bytes)`)
      expect(await headBlob(t.url, 'gc/orphans', o.digest)).toBe(404)
    }
    expect(run.stderr).toMatch(/gc: \d+ repositories, \d+ manifests, \d+ blobs scanned; deleted \d+ blobs/)
    await expectServed(t.url, pushed)
  })

  it('--dry-run lists what would go with its bytes and deletes nothing', async () => {
    const t = target()
    const orphan = randomBlob(7777)
    await pushBlobChunked(t.url, 'gc/dry', orphan)
    const run = await gcOk(t, ['--dry-run', '--grace', '0s'])
    expect(run.stdout).toContain(`would delete blob ${orphan.digest} (7777 bytes)`)
    expect(run.stderr).toContain('dry run')
    expect(await headBlob(t.url, 'gc/dry', orphan.digest)).toBe(200)
  })

  it('a blob not yet referenced survives for the grace period, then goes', async () => {
    const t = target()
    const early = randomBlob(4096)
    await pushBlobChunked(t.url, 'gc/grace', early)
    const first = await gcOk(t, ['--grace', '30s'])
    expect(first.stdout).not.toContain(early.digest)
    expect(await headBlob(t.url, 'gc/grace', early.digest)).toBe(200)
    // The push goes on: the manifest comes in after GC, and works.
    const config = randomBlob(100)
    await pushBlobChunked(t.url, 'gc/grace', config)
    const body = imageManifest(config, [early])
    await putManifest(t.url, 'gc/grace', 'v1', body, OCI_MANIFEST)

    const late = randomBlob(2048)
    await pushBlobChunked(t.url, 'gc/grace', late)
    await sleep(3000)
    const second = await gcOk(t, ['--grace', '1s'])
    expect(second.stdout).toContain(`deleting blob ${late.digest}`)
    expect(await headBlob(t.url, 'gc/grace', late.digest)).toBe(404)
    await expectPullable(t.url, 'gc/grace', 'v1', { digest: sha256(body), body, blobs: [config, early] })
  })

  it('GC while pushes run never deletes anything in use', { timeout: 150_000 }, async () => {
    const t = target()
    const pushed: { tag: string; image: { digest: string; body: string; blobs: Blob[] } }[] = []
    let pushing = true
    const pusher = (async () => {
      try {
        for (let i = 0; i < 12; i++) {
          const config = randomBlob(150)
          const layers = [randomBlob(20_000 + i), randomBlob(5_000 + i)]
          for (const b of [config, ...layers]) await pushBlobChunked(t.url, `gc/busy${i % 3}`, b)
          await sleep(100 + (i % 4) * 100) // the client takes its time before the manifest
          const body = imageManifest(config, layers)
          await putManifest(t.url, `gc/busy${i % 3}`, `t${i}`, body, OCI_MANIFEST)
          pushed.push({ tag: `gc/busy${i % 3}:t${i}`, image: { digest: sha256(body), body, blobs: [config, ...layers] } })
        }
      } finally {
        pushing = false
      }
    })()
    let runs = 0
    while (pushing && runs < 20) {
      await gcOk(t, ['--grace', '2s', ...(runs % 2 ? ['--delete-untagged'] : [])])
      runs++
    }
    await pusher
    expect(runs).toBeGreaterThan(0)
    expect(pushed).toHaveLength(12)
    for (const p of pushed) {
      const [repo, tag] = p.tag.split(':') as [string, string]
      await expectPullable(t.url, repo, tag, p.image)
    }
    // And once everything is older than the grace period, a run finds them all still in use.
    await sleep(3100)
    const after = await gcOk(t, ['--grace', '2s', '--delete-untagged'])
    for (const p of pushed) for (const b of p.image.blobs) expect(after.stdout).not.toContain(b.digest)
  })

  it('--delete-untagged removes untagged manifests but not the children of a tagged index', async () => {
    const t = target()
    const lone = await pushImage(t.url, 'gc/untagged', 'digest')
    const amd64 = await pushImage(t.url, 'gc/untagged', 'digest')
    const arm64 = await pushImage(t.url, 'gc/untagged', 'digest')
    const index = JSON.stringify({
      schemaVersion: 2, mediaType: OCI_INDEX,
      manifests: [amd64, arm64].map((m, i) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: Buffer.byteLength(m.body), platform: { architecture: ['amd64', 'arm64'][i], os: 'linux' } })),
    })
    await putManifest(t.url, 'gc/untagged', 'multi', index, OCI_INDEX)

    const kept = await gcOk(t, ['--grace', '0s'])
    expect(kept.stdout).not.toContain(lone.digest)
    await expectPullable(t.url, 'gc/untagged', lone.digest, lone)

    const run = await gcOk(t, ['--grace', '0s', '--delete-untagged'])
    expect(run.stdout).toContain(`deleting manifest gc/untagged@${lone.digest}`)
    expect((await fetch(`${t.url}/v2/gc/untagged/manifests/${lone.digest}`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } })).status).toBe(404)
    for (const b of lone.blobs) expect(await headBlob(t.url, 'gc/untagged', b.digest)).toBe(404)
    const ix = await getBytes(`${t.url}/v2/gc/untagged/manifests/multi`, { Accept: OCI_INDEX })
    expect(ix.bytes.toString()).toBe(index)
    await expectPullable(t.url, 'gc/untagged', amd64.digest, amd64)
    await expectPullable(t.url, 'gc/untagged', arm64.digest, arm64)
  })

  it('referrers of a kept manifest are kept with it', async () => {
    const t = target()
    const subject = await pushImage(t.url, 'gc/signed', 'v1')
    const signature = await pushImage(t.url, 'gc/signed', 'digest', {
      artifactType: 'application/vnd.example.signature',
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: Buffer.byteLength(subject.body) },
    })
    await gcOk(t, ['--grace', '0s', '--delete-untagged'])
    await expectPullable(t.url, 'gc/signed', 'v1', subject)
    await expectPullable(t.url, 'gc/signed', signature.digest, signature)
    const referrers = (await (await fetch(`${t.url}/v2/gc/signed/referrers/${subject.digest}`)).json()) as { manifests: { digest: string }[] }
    expect(referrers.manifests.map((m) => m.digest)).toEqual([signature.digest])

    // Once the subject is untagged, both go.
    expect((await fetch(`${t.url}/v2/gc/signed/manifests/v1`, { method: 'DELETE' })).status).toBe(202)
    const run = await gcOk(t, ['--grace', '0s', '--delete-untagged'])
    expect(run.stdout).toContain(`deleting manifest gc/signed@${signature.digest}`)
    expect(run.stdout).toContain(`deleting manifest gc/signed@${subject.digest}`)
  })

  it('retention: keep the last N, keep by pattern, drop pull-request tags by age', { timeout: 150_000 }, async () => {
    const t = target()
    const repo = 'gc/ci'
    const images: Record<string, { digest: string; body: string; blobs: Blob[] }> = {}
    for (const tag of ['pr-1', 'pr-2', 'release-1', 'main-1', 'main-2']) images[tag] = await pushImage(t.url, repo, tag)
    // The first five are 11 s old when GC runs; the last two are pushed just before the real run.
    await sleep(11_000)
    const config = join(t.dir, `retention-${Date.now()}.yml`)
    writeFileSync(config, [
      'retention:',
      `  - repositories: "gc/c*"`,
      '    tags: "pr-*"',
      '    olderthan: 10s',
      '  - repositories: "gc/ci"', // never reached: the first matching policy applies
      '    keeplast: 0',
      '  - repositories: "*"',
      '    keeplast: 1',
      '',
    ].join('\n'))
    const dry = await gcOk(t, [config, '--dry-run', '--grace', '0s', '--delete-untagged'])
    expect(dry.stdout.split('\n').filter((l) => l.startsWith('would delete tag')).map((l) => l.split(' ')[3]).sort()).toEqual(['gc/ci:pr-1', 'gc/ci:pr-2'])
    expect(((await (await fetch(`${t.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags).toHaveLength(5)

    for (const tag of ['pr-3', 'main-3']) images[tag] = await pushImage(t.url, repo, tag)
    await gcOk(t, [config, '--grace', '0s', '--delete-untagged'])
    const tags = ((await (await fetch(`${t.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags
    expect(tags.sort()).toEqual(['main-1', 'main-2', 'main-3', 'pr-3', 'release-1'])
    for (const tag of tags) await expectPullable(t.url, repo, tag, images[tag]!)
    for (const gone of ['pr-1', 'pr-2']) for (const b of images[gone]!.blobs) expect(await headBlob(t.url, repo, b.digest)).toBe(404)

    // A second policy set: in gc/keep, the last one pushed and every release-* stay.
    for (const tag of ['release-1', 'a', 'b']) {
      // S3 keeps whole seconds: "pushed last" must be a second later to be told apart.
      if (tag === 'b') await sleep(1_100)
      images[`keep:${tag}`] = await pushImage(t.url, 'gc/keep', tag)
    }
    writeFileSync(config, 'retention:\n  - repositories: "gc/keep"\n    keep: ["/release-.*/"]\n    keeplast: 1\n')
    await gcOk(t, [config, '--grace', '0s'])
    expect(((await (await fetch(`${t.url}/v2/gc/keep/tags/list`)).json()) as { tags: string[] }).tags.sort()).toEqual(['b', 'release-1'])
  })

  it('reports a bad option clearly', async () => {
    const t = target()
    const run = await runGc(t, ['--grace', 'soon'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--grace needs a duration')
  })
}
