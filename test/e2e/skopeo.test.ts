/**
 * skopeo against enlil in every cell of the matrix: login, copy of single and multi-arch images both
 * ways (--all, --preserve-digests), a large random layer, inspect (--raw, --config), list-tags,
 * delete, registry-to-registry copy with a cross-repository mount stored once.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, requirePart, tempDir } from '../support/processes.js'
import { type Fixtures, writeFixtures } from './images.js'
import { type Registry, runnableCells, startRegistry } from './registry.js'

const run = promisify(execFile)
const available = requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')
/** Size of the large random layer; ENLIL_E2E_LARGE_MIB raises it for a manual run. */
const LARGE = Number(process.env.ENLIL_E2E_LARGE_MIB ?? 200) * 1024 * 1024

describe.skipIf(!available)('skopeo', () => {
  let work: string
  let fixtures: Fixtures
  beforeAll(async () => {
    work = tempDir('e2e-skopeo')
    fixtures = await writeFixtures(work, { largeSize: LARGE })
  })
  afterAll(() => removeDir(work))

  describe.each(runnableCells())('$store, auth $auth', (cell) => {
    let registry: Registry
    const skopeo = async (args: string[], input?: string) => {
      const p = run('skopeo', args, { env: { ...process.env, HOME: registry.dir, REGISTRY_AUTH_FILE: join(registry.dir, 'auth.json') }, timeout: 300_000, maxBuffer: 16 << 20 })
      if (input !== undefined) p.child.stdin!.end(input)
      return (await p).stdout
    }
    const src = (tag: string) => `oci:${fixtures.layout.dir}:${tag}`
    const ref = (repo: string) => `docker://${registry.host}/${repo}`
    beforeAll(async () => {
      registry = await startRegistry(cell, 'e2e-skopeo-cell')
    })
    afterAll(() => registry?.stop())

    it('logs in (or needs no login)', async () => {
      if (!registry.credentials) {
        expect(await skopeo(['list-tags', '--tls-verify=false', ref('nothing/here')]).catch((e: Error) => e.message)).toMatch(/name unknown|not found/i)
        return
      }
      await expect(skopeo(['login', '--tls-verify=false', '-u', registry.credentials.user, '--password-stdin', registry.host], 'wrong\n')).rejects.toThrow(/unauthorized|invalid/i)
      await expect(skopeo(['copy', '--dest-tls-verify=false', src('busybox'), ref('e2e/anonymous:1')])).rejects.toThrow(/unauthorized|authentication required|denied/i)
      expect(await skopeo(['login', '--tls-verify=false', '-u', registry.credentials.user, '--password-stdin', registry.host], `${registry.credentials.password}\n`)).toContain('Login Succeeded')
    })

    it('copies single, multi-arch, many-layer and large images in, digests preserved', async () => {
      await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', src('busybox'), ref('e2e/busybox:1')])
      await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', src('busybox'), ref('e2e/busybox:2')])
      await skopeo(['copy', '--dest-tls-verify=false', '--all', '--preserve-digests', src('multi'), ref('e2e/multi:1')])
      await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', src('layers'), ref('e2e/layers:1')])
      await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', src('large'), ref('e2e/large:1')])
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', ref('e2e/multi:1')])
      expect(Buffer.from(raw).equals(fixtures.layout.read(fixtures.multi.digest))).toBe(true)
      const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', ref('e2e/busybox:1')])) as { Digest: string; Layers: string[] }
      expect(inspected.Digest).toBe(fixtures.busybox.digest)
      const config = JSON.parse(await skopeo(['inspect', '--config', '--tls-verify=false', ref('e2e/busybox:1')])) as { config: { Cmd: string[] } }
      expect(config.config.Cmd).toEqual(['cat', '/etc/greeting'])
      const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', ref('e2e/busybox')])) as { Tags: string[] }
      expect(tags.Tags).toEqual(['1', '2'])
    })

    it('copies them back out byte for byte (--all, --preserve-digests)', async () => {
      const out = join(registry.dir, 'out')
      await skopeo(['copy', '--src-tls-verify=false', '--all', '--preserve-digests', ref('e2e/multi:1'), `oci:${out}:multi`])
      await skopeo(['copy', '--src-tls-verify=false', '--preserve-digests', ref('e2e/large:1'), `oci:${out}:large`])
      const index = JSON.parse(fixtures.layout.read(fixtures.multi.digest).toString()) as { manifests: { digest: string }[] }
      const large = JSON.parse(fixtures.layout.read(fixtures.large!.digest).toString()) as { config: { digest: string }; layers: { digest: string }[] }
      const expected = [fixtures.multi.digest, ...index.manifests.map((m) => m.digest), fixtures.large!.digest, large.config.digest, ...large.layers.map((l) => l.digest)]
      for (const digest of expected) {
        const pulled = readFileSync(join(out, 'blobs/sha256', digest.slice(7)))
        expect(pulled.equals(fixtures.layout.read(digest)), digest).toBe(true)
      }
    })

    it('copies between repositories by mounting: every layer is stored once', async () => {
      const before = await registry.storedBlobs()
      await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--all', '--preserve-digests', ref('e2e/multi:1'), ref('team/copy:1')])
      await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ref('e2e/large:1'), ref('team/large:1')])
      const after = await registry.storedBlobs()
      expect(after.sort()).toEqual(before.sort())
      expect(new Set(after).size).toBe(after.length)
      const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', ref('team/large:1')])) as { Digest: string }
      expect(inspected.Digest).toBe(fixtures.large!.digest)
    })

    it('deletes a manifest: its tag goes, other repositories keep theirs', async () => {
      await skopeo(['delete', '--tls-verify=false', ref('e2e/layers:1')])
      await expect(skopeo(['inspect', '--raw', '--tls-verify=false', ref('e2e/layers:1')])).rejects.toThrow(/manifest unknown|not found/i)
      const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', ref('e2e/multi')])) as { Tags: string[] }
      expect(tags.Tags).toEqual(['1'])
      if (registry.credentials) {
        await skopeo(['logout', registry.host])
        await expect(skopeo(['inspect', '--raw', '--tls-verify=false', ref('e2e/multi:1')])).rejects.toThrow(/unauthorized|authentication required|denied/i)
      }
    })
  })
})
