/**
 * GC against pushers, as users run them: `enlil gc` in a loop with a short grace period while four
 * clients push images over several workers or instances, delete old ones, and re-use old,
 * unreferenced layers the way docker and skopeo do (HEAD says it exists: skip the upload; or a
 * cross-repository mount), then PUT the manifest. Afterwards every acknowledged manifest is pulled
 * and every blob's digest checked. Each store's test file calls `gcAgainstPushers`.
 */
import { expect } from 'vitest'
import { runGc, type GcTarget } from './gc-scenarios.js'
import { type Blob, getBytes, imageManifest, OCI_MANIFEST, pushBlobChunked, putManifest, randomBlob, sha256 } from './oci-client.js'

export interface RaceTarget {
  /** Base URLs of the registry: workers behind one port, or instances on one store. */
  urls: string[]
  /** The environment that points `enlil gc` at the store. */
  env: Record<string, string>
  dir: string
  /** What the registry logged, shown when something fails. */
  logs: () => string
}

interface Acknowledged {
  repo: string
  tag: string
  digest: string
  body: string
  blobs: Blob[]
}

/** GC runs while the clients push (each takes the protocol's 5 s settle time at least). */
const RUNS = 4
/** Images each client pushes at least, however fast the runs go. */
const MIN_IMAGES = 6
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms))

export async function gcAgainstPushers(target: RaceTarget): Promise<void> {
  let turn = 0
  /** Each request goes to the next URL: a push's requests land on different instances. */
  const url = () => target.urls[turn++ % target.urls.length]!
  const gcTarget: GcTarget = { url: target.urls[0]!, env: target.env, dir: target.dir }

  // Layers pushed long enough ago to be candidates, referenced by no manifest.
  const pool: { blob: Blob; repo: string }[] = []
  for (let i = 0; i < 16; i++) {
    const blob = randomBlob(2_000 + i)
    await pushBlobChunked(url(), 'race/pool', blob)
    pool.push({ blob, repo: 'race/pool' })
  }
  await sleep(4_500) // older than the grace period (2 s) and its 2 s of slack

  const acknowledged = new Map<string, Acknowledged>()
  const told = { head: 0, mount: 0, uploadedAgain: 0 }
  const refusedAfterYes: string[] = []
  let gcRuns = 0
  let deleted = 0
  let pushing = true

  async function reuse(repo: string, layer: { blob: Blob; repo: string }, viaHead: boolean): Promise<void> {
    if (viaHead) {
      const head = await fetch(`${url()}/v2/${repo}/blobs/${layer.blob.digest}`, { method: 'HEAD' })
      if (head.status === 200) {
        told.head++
        return
      }
    }
    const mount = await fetch(`${url()}/v2/${repo}/blobs/uploads/?mount=${layer.blob.digest}&from=${layer.repo}`, { method: 'POST' })
    await mount.arrayBuffer()
    if (mount.status === 201) {
      told.mount++
      return
    }
    told.uploadedAgain++
    await pushBlobChunked(url(), repo, layer.blob)
  }

  async function pusher(p: number): Promise<void> {
    const repo = `race/p${p}`
    const mine: Acknowledged[] = []
    for (let i = 0; i < 200 && (pushing || i < MIN_IMAGES); i++) {
      const config = randomBlob(150)
      const fresh = randomBlob(3_000 + i)
      for (const b of [config, fresh]) await pushBlobChunked(url(), repo, b)
      const old = pool[(p * 7 + i * 5) % pool.length]!
      await reuse(repo, old, i % 2 === 0)
      const body = imageManifest(config, [fresh, old.blob])
      const tag = `t${i}`
      const res = await fetch(`${url()}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body, headers: { 'Content-Type': OCI_MANIFEST } })
      const text = await res.text()
      // Every layer was just stored, mounted or said to exist: the PUT must succeed.
      if (res.status !== 201) refusedAfterYes.push(`${repo}:${tag} → ${res.status} ${text}`)
      else {
        const image = { repo, tag, digest: sha256(body), body, blobs: [config, fresh, old.blob] }
        acknowledged.set(`${repo}:${tag}`, image)
        mine.push(image)
      }
      pool.push({ blob: fresh, repo })
      // Now and then an old image goes: its layers become garbage that others may still re-use.
      if (i % 3 === 2 && mine.length > 2) {
        const gone = mine.shift()!
        const del = await fetch(`${url()}/v2/${repo}/manifests/${gone.digest}`, { method: 'DELETE' })
        await del.arrayBuffer()
        expect(del.status).toBe(202)
        acknowledged.delete(`${gone.repo}:${gone.tag}`)
      }
      await sleep(150 + ((p + i) % 4) * 100)
    }
  }

  const pushers = Promise.all([0, 1, 2, 3].map(pusher))
  const collector = (async () => {
    try {
      for (let run = 0; run < RUNS; run++) {
        const out = await runGc(gcTarget, ['--grace', '2s', ...(run % 2 ? ['--delete-untagged'] : [])])
        expect(out.code, out.stderr).toBe(0)
        gcRuns++
        deleted += Number(/deleted (\d+) blobs/.exec(out.stderr)?.[1] ?? 0)
      }
    } finally {
      pushing = false
    }
  })()
  await Promise.all([pushers, collector])

  expect(refusedAfterYes, target.logs().slice(-6000)).toEqual([])
  expect(gcRuns).toBe(RUNS)
  // Not a vacuous run: GC deleted garbage while clients were told layers exist and skipped them.
  expect(deleted).toBeGreaterThan(0)
  expect(told.head + told.mount).toBeGreaterThan(10)
  expect(acknowledged.size).toBeGreaterThanOrEqual(4 * (MIN_IMAGES - 2))

  const lost: string[] = []
  for (const image of acknowledged.values()) {
    const m = await getBytes(`${url()}/v2/${image.repo}/manifests/${image.tag}`, { Accept: OCI_MANIFEST })
    if (m.status !== 200 || m.bytes.toString() !== image.body) lost.push(`${image.repo}:${image.tag} manifest ${m.status}`)
    for (const b of image.blobs) {
      const res = await getBytes(`${url()}/v2/${image.repo}/blobs/${b.digest}`)
      if (res.status !== 200 || sha256(res.bytes) !== b.digest) lost.push(`${image.repo}:${image.tag} blob ${b.digest} ${res.status}`)
    }
  }
  expect(lost, `${lost.length} lost of ${acknowledged.size} images (told exists ${told.head} HEAD, ${told.mount} mounts; ${told.uploadedAgain} uploaded again; ${deleted} blobs deleted in ${gcRuns} runs)`).toEqual([])
}
