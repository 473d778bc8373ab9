/**
 * The web UI's login with S3 key pairs as accounts (token mode, auth.token.s3keys, on the s3 store):
 * in a real headless Chromium, a key pair created at the store (Ceph RGW, radosgw-admin) logs in
 * through the form and sees the repositories its ACL rules let it pull; a wrong secret is refused
 * on the page. One browser, one enlil, one bucket.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from '../support/processes.js'
import { createBucket, deleteBucket, enlilS3Environment, requireS3, rgwAdmin } from '../support/s3.js'
import { chromiumInstalled, launchBrowser } from './fixtures.mjs'

const browserInstalled = requirePart(chromiumInstalled(), 'Debian\'s chromium (the web UI tests\' browser)', 'apt-get install --no-install-recommends chromium fonts-dejavu-core')
const s3 = requireS3()

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

/** Pushes a one-layer image to `repo:tag` through the API, with a token the key pair gets from enlil. */
async function pushImage(url: string, key: { access: string; secret: string }, repo: string, tag: string): Promise<void> {
  const got = await fetch(`${url}/auth/token?service=enlil&scope=repository:${repo}:pull,push`, { headers: { Authorization: basic(key.access, key.secret) } })
  if (got.status !== 200) throw new Error(`token for ${repo}: ${got.status} ${await got.text()}`)
  const auth = { Authorization: `Bearer ${((await got.json()) as { token: string }).token}` }
  const blob = async (bytes: Buffer) => {
    const digest = digestOf(bytes)
    const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth })
    if (start.status !== 202) throw new Error(`upload to ${repo}: ${start.status}`)
    const location = new URL(start.headers.get('location')!, url)
    location.searchParams.set('digest', digest)
    const put = await fetch(location, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: bytes })
    if (put.status !== 201) throw new Error(`blob to ${repo}: ${put.status} ${await put.text()}`)
    return { digest, size: bytes.length }
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } }))
  const layer = randomBytes(2048)
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await blob(config)) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await blob(layer)) }],
  })
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest })
  if (res.status !== 201) throw new Error(`manifest to ${repo}: ${res.status} ${await res.text()}`)
}

describe.skipIf(!browserInstalled || !s3)('web UI login with S3 key pairs, in Chromium', () => {
  const bucket = `ui-s3keys-${randomBytes(4).toString('hex')}`
  // Two key pairs of the test run's RGW user: both read the bucket; the ACL rules tell them apart.
  const admin = { access: `AKIAUIADMIN${randomBytes(4).toString('hex').toUpperCase()}`, secret: randomBytes(20).toString('hex') }
  const reader = { access: `AKIAUIREAD${randomBytes(4).toString('hex').toUpperCase()}`, secret: randomBytes(20).toString('hex') }
  let dir: string
  let enlil: Running
  let browser: Browser
  let page: Page
  const ui = (path = '') => `${enlil.url}/ui${path}`
  const text = () => page.evaluate(() => document.body.innerText)
  const submitLogin = async (user: string, password: string) => {
    await page.goto(ui('/login'))
    await page.type('#user', user)
    await page.type('#password', password)
    const [response] = await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')])
    return response!
  }

  beforeAll(async () => {
    dir = tempDir('ui-s3keys')
    for (const key of [admin, reader]) rgwAdmin('key', 'create', '--uid=enlil-tests', '--key-type=s3', `--access-key=${key.access}`, `--secret-key=${key.secret}`)
    await createBucket(bucket)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
    writeFileSync(join(dir, 'config.yml'), [
      'auth:',
      '  token:',
      '    s3keys: true',
      `    signingkey: ${join(dir, 'key.pem')}`,
      '  acl:',
      `    - match: {account: "${admin.access}"}`,
      '      actions: ["*"]',
      `    - match: {account: "${reader.access}", name: "team/*"}`,
      '      actions: ["pull"]',
      '',
    ].join('\n'))
    const [running, launched] = await Promise.all([
      startEnlil('/nonexistent', { ...enlilS3Environment(bucket), REGISTRY_CONFIG: join(dir, 'config.yml'), ENLIL_WORKERS: '1' }),
      launchBrowser(join(dir, 'chromium')),
    ])
    enlil = running
    browser = launched
    for (const repo of ['team/api', 'team/web', 'ops/secrets']) await pushImage(enlil.url, admin, repo, 'v1')
    page = await browser.newPage()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await enlil?.stop()
    for (const key of [admin, reader]) {
      try {
        rgwAdmin('key', 'rm', '--uid=enlil-tests', '--key-type=s3', `--access-key=${key.access}`)
      } catch {
        // the RGW of the run is going away with it
      }
    }
    if (s3) await deleteBucket(bucket)
    if (dir) removeDir(dir)
  })

  it('asks for an access key ID and a secret key', async () => {
    await page.goto(ui('/login'))
    expect(await page.$eval('label[for=user]', (l) => l.textContent)).toBe('Access key ID')
    expect(await page.$eval('label[for=password]', (l) => l.textContent)).toBe('Secret key')
    expect(await text()).toContain('S3 access key ID')
  })

  it('refuses a wrong secret on the page, and keeps no session', async () => {
    const refused = await submitLogin(reader.access, 'not the secret')
    expect(refused.status()).toBe(401)
    expect(await page.$eval('[role=alert]', (e) => e.textContent)).toBe('Wrong access key ID or secret key, or a key that may not read this registry\'s bucket.')
    // The access key ID stays in the form for a second try; the secret does not.
    expect(await page.$eval('#user', (i) => (i as HTMLInputElement).value)).toBe(reader.access)
    expect(await page.$eval('#password', (i) => (i as HTMLInputElement).value)).toBe('')
    expect((await page.cookies(ui())).find((c) => c.name === 'enlil_session' && c.value)).toBeUndefined()
    // An access key the store doesn't know is refused in the same words.
    expect((await submitLogin('AKIAUNKNOWNKEY', reader.secret)).status()).toBe(401)
    expect(await page.$eval('[role=alert]', (e) => e.textContent)).toMatch(/^Wrong access key ID or secret key/)
    await page.goto(ui())
    expect(await text()).not.toContain('Signed in as')
  })

  it('logs a key pair in through the form and lists only the repositories its ACL lets it pull', async () => {
    await submitLogin(reader.access, reader.secret)
    expect(page.url()).toBe(ui())
    expect(await text()).toContain(`Signed in as ${reader.access}`)
    expect(await page.$$eval('td.name a', (as) => as.map((a) => a.textContent))).toEqual(['team/api', 'team/web'])
    await Promise.all([page.waitForNavigation(), page.click('td.name a[href$="/r/team/api"]')])
    expect(await text()).toContain('v1')
    // Pull only: no delete button, and the repository the rules keep from it is not there.
    expect(await page.$('a.danger')).toBeNull()
    expect((await page.goto(ui('/r/ops/secrets')))!.status()).toBe(404)
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/logout"] button')])
  })

  it('shows the administrator key everything, with delete rights', async () => {
    await submitLogin(admin.access, admin.secret)
    expect(await text()).toContain(`Signed in as ${admin.access}`)
    expect(await page.$$eval('td.name a', (as) => as.map((a) => a.textContent))).toEqual(['ops/secrets', 'team/api', 'team/web'])
    await page.goto(ui('/r/ops/secrets'))
    expect(await page.$('a.danger')).not.toBeNull()
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/logout"] button')])
  })
})
