// `npm run ui:screenshots`: starts enlil (token auth, quotas) on a scratch folder, fills it the way
// the UI tests do (skopeo, @sigstore/oci, seeded repositories, a recorded GC run), and writes PNGs
// of the main pages, light and dark, into test/ui/screenshots/ with Debian's headless Chromium.
import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import bcrypt from 'bcryptjs'
import {
  attachSignature, chromiumInstalled, launchBrowser, seedRepositories, skopeoCopy, writeAppLayout, writeArtifactLayout,
} from './fixtures.mjs'

const ROOT = resolve(import.meta.dirname, '../..')
const OUT = join(import.meta.dirname, 'screenshots')
if (!chromiumInstalled()) {
  console.error('needs Debian\'s chromium: apt-get install --no-install-recommends chromium fonts-dejavu-core')
  process.exit(1)
}

const port = await new Promise((ok) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)) })
})
const dir = mkdtempSync(join(tmpdir(), 'enlil-screenshots-'))
const data = join(dir, 'data')
const user = { name: 'alice', password: 'screenshot password' }
writeFileSync(join(dir, 'users'), `${user.name}:${bcrypt.hashSync(user.password, 8)}\n`)
writeFileSync(join(dir, 'key.pem'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
writeFileSync(join(dir, 'config.yml'), [
  'auth:',
  '  token:',
  `    users: ${join(dir, 'users')}`,
  `    signingkey: ${join(dir, 'key.pem')}`,
  '  acl:',
  '    - match: {account: "alice"}',
  '      actions: ["*"]',
  '    - match: {account: "", name: "public/*"}',
  '      actions: ["pull"]',
  'quotas:',
  '  total: 2GiB',
  '  repositories:',
  '    - {match: "acme/*", limit: 3MB}',
  '',
].join('\n'))

// Repositories a registry collects over time, written in distribution's layout before start.
const seeded = ['acme/api', 'acme/billing', 'acme/frontend', 'acme/worker', 'data/etl', 'data/notebooks', 'infra/caddy', 'infra/postgres-backup', 'ml/embeddings', 'platform/ci-runner', 'platform/docs', 'public/busybox', 'tools/kubectl']
seedRepositories(data, seeded, ['latest', 'v2.4.1', 'v2.4.0', 'v2.3.9'])
mkdirSync(join(data, 'docker/registry/v2/_enlil/gc'), { recursive: true })
const finished = new Date(Date.now() - 5 * 3600_000)
writeFileSync(join(data, 'docker/registry/v2/_enlil/gc/last-run.json'), JSON.stringify({
  dryRun: false, repositories: 16, manifests: 58, blobsScanned: 143, blobsDeleted: 37, bytesFreed: 1_284_511_744, blobsInGrace: 2,
  tagsDeleted: 12, manifestsDeleted: 9, layerLinksDeleted: 41, durationMs: 8_412,
  startedAt: new Date(finished.getTime() - 8_412).toISOString(), finishedAt: finished.toISOString(),
}))

const enlil = spawn(process.execPath, [join(ROOT, 'dist/main.js'), 'serve'], {
  env: { ...process.env, REGISTRY_CONFIG: join(dir, 'config.yml'), REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: data, ENLIL_WORKERS: '1', REGISTRY_LOG_LEVEL: 'warn', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true' },
  stdio: ['ignore', 'inherit', 'inherit'],
})
const url = `http://127.0.0.1:${port}`
for (let i = 0; i < 100; i++) {
  try {
    if ((await fetch(`${url}/healthz`)).ok) break
  } catch { /* starting */ }
  await new Promise((r) => setTimeout(r, 100))
}

let browser
try {
  const host = `127.0.0.1:${port}`
  const creds = `${user.name}:${user.password}`
  const app = writeAppLayout(join(dir, 'app'), 'v1.2.0', { labels: { 'org.opencontainers.image.title': 'acme app' } })
  await skopeoCopy(app, host, 'acme/app:v1.2.0', creds, dir)
  await skopeoCopy(writeAppLayout(join(dir, 'app2'), 'v1.1.0', { seed: 'v1.1' }), host, 'acme/app:v1.1.0', creds, dir)
  await skopeoCopy(writeAppLayout(join(dir, 'app3'), 'latest', { seed: 'latest' }), host, 'acme/app:latest', creds, dir)
  await skopeoCopy(writeArtifactLayout(join(dir, 'model'), 'v3'), host, 'ml/sentiment-model:v3', creds, dir)
  await attachSignature(host, 'acme/app', app.digest, { username: user.name, password: user.password })

  browser = await launchBrowser(join(dir, 'chromium'))
  const page = await browser.newPage()
  await page.setViewport({ width: 1280, height: 860 })
  await page.goto(`${url}/ui/login`)
  await page.type('#user', user.name)
  await page.type('#password', user.password)
  await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')])

  const shots = [
    { name: 'repositories', path: '/ui' },
    { name: 'repository', path: '/ui/r/acme/app' },
    { name: 'index', path: '/ui/r/acme/app/-/tags/v1.2.0', fullPage: true },
    { name: 'image', path: `/ui/r/acme/app/-/manifests/${app.children[0]}`, fullPage: true },
    { name: 'storage', path: '/ui/storage', fullPage: true },
  ]
  mkdirSync(OUT, { recursive: true })
  for (const scheme of ['light', 'dark']) {
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }])
    for (const shot of shots) {
      await page.goto(`${url}${shot.path}`)
      await page.screenshot({ path: join(OUT, `${shot.name}-${scheme}.png`), fullPage: shot.fullPage ?? false })
      console.log(`wrote test/ui/screenshots/${shot.name}-${scheme}.png`)
    }
  }
  // A phone-sized repository list, and the login page of a visitor.
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }])
  await page.setViewport({ width: 390, height: 780, deviceScaleFactor: 1 })
  await page.goto(`${url}/ui`)
  await page.screenshot({ path: join(OUT, 'repositories-phone-light.png') })
  console.log('wrote test/ui/screenshots/repositories-phone-light.png')
} finally {
  await browser?.close()
  enlil.kill('SIGTERM')
  await new Promise((r) => enlil.once('exit', r))
  rmSync(dir, { recursive: true, force: true })
}
