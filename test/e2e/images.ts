/**
 * Test images built offline, as OCI image layouts on disk (what skopeo, podman and buildah read with
 * `oci:<dir>:<tag>`): a runnable static busybox, a multi-arch index, a many-layer image and an
 * image with one large layer of random data.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'

export const BUSYBOX = '/bin/busybox'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { architecture: string; os: string }
  annotations?: Record<string, string>
}

/** An OCI image layout being written: blobs go in as they come, index.json at the end. */
export class Layout {
  private readonly refs: Descriptor[] = []
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs/sha256'), { recursive: true })
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  }

  blob(bytes: Buffer, mediaType: string): Descriptor {
    const hex = createHash('sha256').update(bytes).digest('hex')
    writeFileSync(join(this.dir, 'blobs/sha256', hex), bytes)
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length }
  }

  /** A layer of `size` random bytes, streamed to disk (never all in memory). */
  async randomLayer(size: number): Promise<Descriptor> {
    const tmp = join(this.dir, `tmp-${randomBytes(4).toString('hex')}`)
    const out = createWriteStream(tmp)
    const hash = createHash('sha256')
    for (let written = 0; written < size;) {
      const chunk = randomBytes(Math.min(1 << 20, size - written))
      hash.update(chunk)
      written += chunk.length
      if (!out.write(chunk)) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
    const hex = hash.digest('hex')
    renameSync(tmp, join(this.dir, 'blobs/sha256', hex))
    return { mediaType: LAYER_TAR, digest: `sha256:${hex}`, size }
  }

  /** An image manifest over `layers` with a config whose diff_ids name them (layers are uncompressed tars). */
  image(layers: Descriptor[], platform = { architecture: 'amd64', os: 'linux' }, cmd?: string[]): Descriptor {
    const config = Buffer.from(JSON.stringify({
      ...platform, created: '2026-11-22T00:00:00Z',
      config: cmd ? { Cmd: cmd, Env: ['PATH=/bin'] } : {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }))
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: this.blob(config, 'application/vnd.oci.image.config.v1+json'),
      layers,
    }))
    return { ...this.blob(manifest, OCI_MANIFEST), platform }
  }

  index(manifests: Descriptor[]): Descriptor {
    return this.blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })), OCI_INDEX)
  }

  /** Names a manifest or index in index.json, as `oci:<dir>:<tag>` refers to it. */
  tag(descriptor: Descriptor, tag: string): void {
    const { platform: _platform, ...plain } = descriptor
    this.refs.push({ ...plain, annotations: { 'org.opencontainers.image.ref.name': tag } })
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.refs }))
  }

  read(digest: string): Buffer {
    return readFileSync(join(this.dir, 'blobs/sha256', digest.slice('sha256:'.length)))
  }
}

/** A tar (bytes) of a folder, deterministic: sorted, mtime 0, root-owned. */
function tarOf(dir: string): Buffer {
  return execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', '-', '-C', dir, '.'], { maxBuffer: 64 << 20 })
}

/** A root filesystem with the static busybox as /bin/sh, echo, cat, ls, and a file of `text`. */
export function busyboxLayer(layout: Layout, work: string, text: string): Descriptor {
  const root = join(work, `rootfs-${randomBytes(3).toString('hex')}`)
  mkdirSync(join(root, 'bin'), { recursive: true })
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'))
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'true']) symlinkSync('busybox', join(root, 'bin', applet))
  mkdirSync(join(root, 'etc'))
  writeFileSync(join(root, 'etc/greeting'), `${text}\n`)
  return layout.blob(tarOf(root), LAYER_TAR)
}

/** A one-file layer (small, distinct). */
export function fileLayer(layout: Layout, work: string, name: string, content: string | Buffer): Descriptor {
  const root = join(work, `layer-${randomBytes(3).toString('hex')}`)
  mkdirSync(root, { recursive: true })
  writeFileSync(join(root, name), content)
  return layout.blob(tarOf(root), LAYER_TAR)
}

export interface Fixtures {
  layout: Layout
  /** busybox:1 — runs `cat /etc/greeting` by default, printing `greeting`. */
  busybox: Descriptor
  greeting: string
  /** multi:1 — an index of amd64 (busybox) and arm64 images. */
  multi: Descriptor
  /** layers:1 — an image of 12 small layers. */
  manyLayers: Descriptor
  /** large:1 — one layer of `largeSize` random bytes. */
  large?: Descriptor
}

export const busyboxAvailable = () => existsSync(BUSYBOX)

/** Writes the fixtures into `<work>/layout`. */
export async function writeFixtures(work: string, options: { largeSize?: number } = {}): Promise<Fixtures> {
  const layout = new Layout(join(work, 'layout'))
  const greeting = `hello from busybox on enlil ${randomBytes(4).toString('hex')}`
  const base = busyboxLayer(layout, work, greeting)
  const busybox = layout.image([base], undefined, ['cat', '/etc/greeting'])
  layout.tag(busybox, 'busybox')
  const arm = layout.image([fileLayer(layout, work, 'arch', 'arm64\n')], { architecture: 'arm64', os: 'linux' })
  const multi = layout.index([busybox, arm])
  layout.tag(multi, 'multi')
  const many = Array.from({ length: 12 }, (_, i) => fileLayer(layout, work, `f${i}`, randomBytes(2000 + i * 100)))
  const manyLayers = layout.image(many)
  layout.tag(manyLayers, 'layers')
  let large: Descriptor | undefined
  if (options.largeSize) {
    large = layout.image([await layout.randomLayer(options.largeSize)])
    layout.tag(large, 'large')
  }
  return { layout, busybox, greeting, multi, manyLayers, large }
}
