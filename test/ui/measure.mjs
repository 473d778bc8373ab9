// Render times of the web UI's heaviest pages, from its Server-Timing header (not part of npm test;
// benchmarks never assert timings): the repository list with 10,000 repositories (first page and a
// later one) and a repository with 1,000 tags (by push time and by name), on the filesystem store
// and on S3 (a throwaway Ceph RGW, as `npm run bench -- --store s3` starts); and the API's
// `/v2/_catalog?n=100` and `tags/list?n=100` pages (first, middle, last: time to the answer, as a
// client sees it). The store is seeded with its catalog index, as enlil writes it; `--unindexed`
// seeds a store written before the index (the first requests walk it while its index is built).
//
//   npm run build && node test/ui/measure.mjs [--store filesystem|s3] [--repositories 10000] [--tags 1000] [--unindexed]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { seedRepositories, serverTiming, sha256 } from './fixtures.mjs'
import { createBucket, startRgw, stopRgwSync, REGION } from '../bench/rgw.mjs'

const ROOT = resolve(import.meta.dirname, '../..')
const { values } = parseArgs({ options: { store: { type: 'string' }, repositories: { type: 'string', default: '10000' }, tags: { type: 'string', default: '1000' }, unindexed: { type: 'boolean', default: false }, base: { type: 'string' } } })
/** Another checkout (its dist/ built) measured on the same store first, e.g. --base /work/main: its column is `<store> (base)`. */
const builds = values.base ? [['base', resolve(values.base)], ['', ROOT]] : [['', ROOT]]
const INDEXED = !values.unindexed
const stores = values.store ? [values.store] : ['filesystem', 's3']
const REPOS = Number(values.repositories)
const TAGS = Number(values.tags)
const names = Array.from({ length: REPOS }, (_, i) => `team-${String(i % 100).padStart(2, '0')}/service-${String(i).padStart(5, '0')}`)
const tags = Array.from({ length: TAGS }, (_, i) => `build-${String(i).padStart(4, '0')}`)

const freePort = () => new Promise((ok) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)) })
})

/** The objects seedRepositories writes, as S3 keys: one small image linked into every repository. */
function layoutObjects() {
  const V2 = 'docker/registry/v2'
  const layer = gzipSync(Buffer.from('seeded layer\n'.repeat(5000)))
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } }))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }))
  const objects = [config, layer, manifest].map((b) => ({ key: `${V2}/blobs/sha256/${sha256(b).slice(7, 9)}/${sha256(b).slice(7)}/data`, body: b }))
  const repo = (name, tagList) => [
    { key: `${V2}/repositories/${name}/_layers/sha256/${sha256(layer).slice(7)}/link`, body: sha256(layer) },
    { key: `${V2}/repositories/${name}/_manifests/revisions/sha256/${sha256(manifest).slice(7)}/link`, body: sha256(manifest) },
    ...tagList.map((t) => ({ key: `${V2}/repositories/${name}/_manifests/tags/${t}/current/link`, body: sha256(manifest) })),
  ]
  const index = INDEXED
    ? [...names, 'big/tags'].map((n) => ({ key: `${V2}/_enlil/catalog/${n.replaceAll('/', '.~')}`, body: '' })).concat([{ key: `${V2}/_enlil/catalog-built`, body: '{}' }])
    : []
  return [...objects, ...names.flatMap((n) => repo(n, ['latest'])), ...repo('big/tags', tags), ...index]
}

async function startEnlil(env, root = ROOT) {
  const port = await freePort()
  const child = spawn(process.execPath, [join(root, 'dist/main.js'), 'serve'], {
    env: { ...process.env, ...env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'warn', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { url, stop: () => new Promise((ok) => { child.once('exit', ok); child.kill('SIGTERM') }) }
}

/** The median Server-Timing `total` of `runs` requests (the first one warms nothing: no listing is cached). */
async function measure(url, runs = 3) {
  const totals = []
  for (let i = 0; i < runs; i++) {
    const res = await fetch(url)
    await res.text()
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`)
    totals.push(serverTiming(res.headers.get('server-timing')).total)
  }
  return totals.sort((a, b) => a - b)[Math.floor(runs / 2)]
}

/** The median time to a whole answer of `runs` GETs of an API page. */
async function timed(url, runs = 3) {
  const times = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    const res = await fetch(url)
    await res.text()
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`)
    times.push(performance.now() - started)
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]
}

/** `last` for page `p` (1-based) of 100 of sorted `all`. */
const lastBefore = (all, p) => (p > 1 ? `&last=${encodeURIComponent([...all].sort()[(p - 1) * 100 - 1])}` : '')

async function pages(url, store) {
  const repoPages = Math.ceil((REPOS + 1) / 100)
  const tagPages = Math.ceil(TAGS / 100)
  const api = {
    [`/v2/_catalog?n=100, page 1 of ${repoPages}`]: await timed(`${url}/v2/_catalog?n=100`),
    [`/v2/_catalog?n=100, page ${Math.ceil(repoPages / 2)}`]: await timed(`${url}/v2/_catalog?n=100${lastBefore([...names, 'big/tags'], Math.ceil(repoPages / 2))}`),
    [`/v2/_catalog?n=100, page ${repoPages}`]: await timed(`${url}/v2/_catalog?n=100${lastBefore([...names, 'big/tags'], repoPages)}`),
    [`tags/list?n=100, ${TAGS.toLocaleString('en-US')} tags, page 1`]: await timed(`${url}/v2/big/tags/tags/list?n=100`),
    [`tags/list?n=100, page ${tagPages}`]: await timed(`${url}/v2/big/tags/tags/list?n=100${lastBefore(tags, tagPages)}`),
  }
  const found = {
    ...api,
    [`repository list, ${REPOS.toLocaleString('en-US')} repositories, page 1`]: await measure(`${url}/ui`),
    [`repository list, page ${Math.ceil(REPOS / 50 / 2)}`]: await measure(`${url}/ui?page=${Math.ceil(REPOS / 50 / 2)}`),
    [`repository list filtered ("service-0999")`]: await measure(`${url}/ui?q=service-0999`),
    [`repository, ${TAGS.toLocaleString('en-US')} tags, newest first`]: await measure(`${url}/ui/r/big/tags`),
    [`repository, ${TAGS.toLocaleString('en-US')} tags, by name`]: await measure(`${url}/ui/r/big/tags?sort=name`),
  }
  console.error(`${store}: ${JSON.stringify(found)}`)
  return found
}

const results = {}
for (const store of stores) {
  if (store === 'filesystem') {
    const dir = mkdtempSync(join(tmpdir(), 'enlil-ui-measure-'))
    try {
      seedRepositories(join(dir, 'data'), names, ['latest'], { indexed: INDEXED })
      seedRepositories(join(dir, 'data'), ['big/tags'], tags, { indexed: INDEXED })
      for (const [label, root] of builds) {
        const enlil = await startEnlil({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'data') }, root)
        try {
          results[`filesystem${label ? ` (${label})` : ''}`] = await pages(enlil.url, `filesystem${label ? ` (${label})` : ''}`)
        } finally {
          await enlil.stop()
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  } else {
    const rgw = await startRgw({ script: join(ROOT, 'test/support/ceph-rgw.sh'), s3Port: await freePort() })
    try {
      const bucket = 'ui-measure'
      await createBucket(rgw, bucket)
      const client = new S3Client({ region: REGION, endpoint: rgw.endpoint, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' })
      const objects = layoutObjects()
      let next = 0
      const started = Date.now()
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (next < objects.length) {
          const o = objects[next++]
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: o.body }))
        }
      }))
      console.error(`seeded ${objects.length} objects into RGW in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      for (const [label, root] of builds) {
        const enlil = await startEnlil({
          REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: bucket, REGISTRY_STORAGE_S3_ACCESSKEY: rgw.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: rgw.secretKey,
          REGISTRY_STORAGE_S3_REGION: REGION, REGISTRY_STORAGE_S3_REGIONENDPOINT: rgw.endpoint, REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
        }, root)
        try {
          results[`s3${label ? ` (${label})` : ''}`] = await pages(enlil.url, `s3${label ? ` (${label})` : ''}`)
        } finally {
          await enlil.stop()
        }
      }
    } finally {
      stopRgwSync(rgw, false)
    }
  }
}

console.log('| page | ' + Object.keys(results).join(' | ') + ' |')
console.log('|---|' + Object.keys(results).map(() => '---:').join('|') + '|')
for (const page of Object.keys(Object.values(results)[0] ?? {})) {
  console.log(`| ${page} | ${Object.values(results).map((r) => `${Math.round(r[page])} ms`).join(' | ')} |`)
}
