/**
 * @module What the pages show, read from the registry: the details of one page of catalog rows (tag counts, sizes, push times, platforms), manifests with their
 * config and referrers. Only digest-addressed facts are cached (manifests, configs); tags, push
 * times and listings are read from the store on every page, so any instance shows the same thing.
 */
import type { Registry } from '../registry/index.js'
import { paths } from '../registry/paths.js'
import { mapLimit } from '../registry/parallel.js'
import { type Scan, scanKeys } from '../registry/scan.js'
import { LruCache } from '../registry/cache.js'
import { type Digest, tryParseDigest } from '../oci/digest.js'
import type { Descriptor } from '../oci/manifest.js'

/** Store requests in flight for one page. */
const CONCURRENCY = 32
/** Catalog rows read at once (each holds a few requests in flight). */
const ROW_CONCURRENCY = 16
/** Past this many tags, a catalog row does not stat them all for its "last push". */
const LAST_PUSH_MAX_TAGS = 1000
/** Image configs larger than this are not read (they are JSON of a few KiB). */
const CONFIG_MAX_BYTES = 4 * 1024 * 1024

const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'])
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])

export interface RepositoryRow {
  name: string
  tags: number
  /** Bytes of the blobs linked in the repository (what it holds, counted once per blob). */
  bytes: number
  lastPush?: Date
  /** More tags than LAST_PUSH_MAX_TAGS: the last push was not computed. */
  lastPushSkipped?: boolean
}

export interface TagEntry {
  tag: string
  pushedAt?: Date
}

export interface ImageConfig {
  os?: string
  architecture?: string
  variant?: string
  created?: string
  author?: string
  config?: {
    Entrypoint?: string[] | null
    Cmd?: string[] | null
    Env?: string[] | null
    Labels?: Record<string, string> | null
    ExposedPorts?: Record<string, unknown> | null
    WorkingDir?: string
    User?: string
  }
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[]
}

export interface ManifestView {
  digest: string
  mediaType: string
  /** Bytes of the manifest itself. */
  manifestBytes: number
  kind: 'index' | 'image' | 'artifact' | 'unknown'
  artifactType?: string
  /** Config + layers; for an index, the sum over its children. */
  size: number
  platforms: string[]
  annotations: Record<string, string>
  config?: Descriptor
  layers: Descriptor[]
  children: { descriptor: Descriptor; platform?: string }[]
  subject?: string
  imageConfig?: ImageConfig
  raw: string
}

const views = new LruCache<string, ManifestView>(20_000)
const configs = new LruCache<string, ImageConfig | null>(20_000)

/** The tags of a repository with their push times (when the tag's link was last written). */
export async function tagEntries(registry: Registry, name: string, withTimes: boolean): Promise<TagEntry[]> {
  if (withTimes && registry.driver.scan) return (await scannedTags(registry.driver.scan.bind(registry.driver), name)).tags
  const tags = (await registry.driver.list(paths.tags(name))).sort()
  if (!withTimes) return tags.map((tag) => ({ tag }))
  return mapLimit(tags, CONCURRENCY, async (tag) => {
    const info = await registry.driver.stat(paths.tagCurrentLink(name, tag), 'file')
    return { tag, pushedAt: info?.modifiedAt }
  })
}

/** Tags with push times from a flat listing: the times come with the keys (a request per thousand tags). */
async function scannedTags(scan: Scan, name: string): Promise<{ tags: TagEntry[]; lastPush: number }> {
  const tags: TagEntry[] = []
  let lastPush = 0
  for await (const e of scanKeys(scan, paths.tags(name))) {
    const [tag, current, link] = e.key.split('/')
    if (current !== 'current' || link !== 'link' || !tag) continue
    tags.push({ tag, pushedAt: e.modifiedAt })
    lastPush = Math.max(lastPush, e.modifiedAt.getTime())
  }
  return { tags: tags.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0)), lastPush }
}

/** Digests linked in the repository (`_layers/<alg>/<hex>/link`). */
async function layerDigests(registry: Registry, name: string): Promise<Digest[]> {
  const out: Digest[] = []
  if (registry.driver.scan) {
    for await (const { key } of scanKeys(registry.driver.scan.bind(registry.driver), paths.layers(name))) {
      const [algorithm, hex, link] = key.split('/')
      const d = link === 'link' ? tryParseDigest(`${algorithm}:${hex}`) : undefined
      if (d) out.push(d)
    }
    return out
  }
  for (const algorithm of await registry.driver.list(paths.layers(name))) {
    for (const hex of await registry.driver.list(`${paths.layers(name)}/${algorithm}`)) {
      const d = tryParseDigest(`${algorithm}:${hex}`)
      if (d) out.push(d)
    }
  }
  return out
}

/** Bytes of the blobs linked in the repository, as the repository quotas count them (sizes are cached: digests never change). */
export async function repositoryBytes(registry: Registry, name: string): Promise<number> {
  const sizes = await mapLimit(await layerDigests(registry, name), CONCURRENCY, (d) => registry.blobs.size(d))
  return sizes.reduce<number>((total, s) => total + (s ?? 0), 0)
}

/**
 * The details of the catalog rows shown: tag count, size, last push. On S3 a row is two flat
 * listings (tags with their times, layers) plus the sizes of blobs not seen before, rows in parallel.
 */
export async function repositoryRows(registry: Registry, names: string[]): Promise<RepositoryRow[]> {
  const scan = registry.driver.scan?.bind(registry.driver)
  return mapLimit(names, ROW_CONCURRENCY, async (name) => {
    if (scan) {
      const [{ tags, lastPush }, bytes] = await Promise.all([scannedTags(scan, name), repositoryBytes(registry, name)])
      return { name, tags: tags.length, bytes, ...(lastPush > 0 ? { lastPush: new Date(lastPush) } : {}) }
    }
    const [tags, bytes] = await Promise.all([registry.driver.list(paths.tags(name)), repositoryBytes(registry, name)])
    if (tags.length > LAST_PUSH_MAX_TAGS) return { name, tags: tags.length, bytes, lastPushSkipped: true }
    const times = await mapLimit(tags, CONCURRENCY, async (tag) => (await registry.driver.stat(paths.tagCurrentLink(name, tag), 'file'))?.modifiedAt.getTime() ?? 0)
    const last = Math.max(0, ...times)
    return { name, tags: tags.length, bytes, ...(last > 0 ? { lastPush: new Date(last) } : {}) }
  })
}

function platformOf(p: unknown): string | undefined {
  if (!p || typeof p !== 'object') return undefined
  const { os, architecture, variant } = p as Record<string, unknown>
  if (typeof os !== 'string' || typeof architecture !== 'string') return undefined
  return `${os}/${architecture}${typeof variant === 'string' && variant ? `/${variant}` : ''}`
}

async function imageConfig(registry: Registry, descriptor: Descriptor): Promise<ImageConfig | undefined> {
  if (!IMAGE_CONFIG_TYPES.has(descriptor.mediaType) || descriptor.size > CONFIG_MAX_BYTES) return undefined
  const cached = configs.get(descriptor.digest)
  if (cached !== undefined) return cached ?? undefined
  const digest = tryParseDigest(descriptor.digest)
  const bytes = digest ? await registry.driver.getContent(paths.blobData(digest)) : undefined
  let parsed: ImageConfig | null = null
  try {
    const json = bytes ? JSON.parse(bytes.toString('utf8')) : null
    parsed = json && typeof json === 'object' && !Array.isArray(json) ? (json as ImageConfig) : null
  } catch {
    parsed = null
  }
  if (bytes) configs.set(descriptor.digest, parsed)
  return parsed ?? undefined
}

const asDescriptors = (v: unknown): Descriptor[] =>
  Array.isArray(v) ? v.filter((d): d is Descriptor => !!d && typeof d === 'object' && typeof d.digest === 'string' && typeof d.mediaType === 'string' && typeof d.size === 'number') : []

const asStrings = (v: unknown): Record<string, string> =>
  v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) as Record<string, string> : {}

/**
 * A manifest of `name` (by digest) as the pages show it; undefined when the repository does not
 * hold it. An index's size and platforms come from its children (read in parallel).
 */
export async function manifestView(registry: Registry, name: string, digest: Digest, depth = 0): Promise<ManifestView | undefined> {
  const stored = await registry.manifests.get(name, { kind: 'digest', digest })
  if (!stored) return undefined
  const cached = views.get(digest.value)
  if (cached) return cached
  const raw = stored.bytes.toString('utf8')
  let json: Record<string, unknown> = {}
  try {
    const parsed = JSON.parse(raw)
    if (parsed && typeof parsed === 'object') json = parsed
  } catch {
    // Shown raw, as an unknown kind.
  }
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : stored.mediaType
  const annotations = asStrings(json.annotations)
  const subject = json.subject && typeof json.subject === 'object' ? String((json.subject as Descriptor).digest ?? '') : undefined
  const artifactType = typeof json.artifactType === 'string' ? json.artifactType : undefined
  const base = { digest: digest.value, mediaType, manifestBytes: stored.bytes.length, annotations, raw, ...(subject ? { subject } : {}), ...(artifactType ? { artifactType } : {}) }
  let view: ManifestView
  if (INDEX_TYPES.has(mediaType) || Array.isArray(json.manifests)) {
    const children = asDescriptors(json.manifests)
    const sizes = depth > 0 ? [] : await mapLimit(children, 8, async (d) => {
      const child = tryParseDigest(d.digest)
      return child ? (await manifestView(registry, name, child, depth + 1))?.size ?? d.size : d.size
    })
    view = {
      ...base, kind: 'index', layers: [],
      children: children.map((descriptor) => ({ descriptor, platform: platformOf(descriptor.platform) })),
      platforms: [...new Set(children.map((d) => platformOf(d.platform)).filter((p): p is string => !!p))],
      size: sizes.reduce((a, b) => a + b, 0),
    }
  } else if (json.config && typeof json.config === 'object') {
    const config = asDescriptors([json.config])[0]
    const layers = asDescriptors(json.layers)
    const image = config ? await imageConfig(registry, config) : undefined
    const platform = image ? platformOf(image) : undefined
    const isImage = !artifactType && config !== undefined && IMAGE_CONFIG_TYPES.has(config.mediaType)
    view = {
      ...base, kind: isImage ? 'image' : 'artifact', layers, children: [],
      ...(config ? { config } : {}), ...(image ? { imageConfig: image } : {}),
      ...(!isImage && !artifactType && config ? { artifactType: config.mediaType } : {}),
      platforms: platform ? [platform] : [],
      size: (config?.size ?? 0) + layers.reduce((a, l) => a + l.size, 0),
    }
  } else {
    view = { ...base, kind: 'unknown', layers: [], children: [], platforms: [], size: 0 }
  }
  // A nested index read as a child has no sizes of its own children: not kept for its own page.
  if (!(view.kind === 'index' && depth > 0)) views.set(digest.value, view)
  return view
}

/** The digest a tag points to now (never cached: tags move). */
export async function tagTarget(registry: Registry, name: string, tag: string): Promise<Digest | undefined> {
  return (await registry.manifests.get(name, { kind: 'tag', tag }))?.digest
}
