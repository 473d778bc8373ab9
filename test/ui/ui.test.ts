/**
 * The web UI in a real headless Chromium (Debian's, driven by puppeteer-core), against a real enlil
 * in token mode with ACL rules, filled by skopeo and @sigstore/oci: log in, find a repository, open
 * a tag and see its platforms, layers, config and signature; delete a tag and the API agrees;
 * hostile labels and annotations render as text; forms without the CSRF token, anonymous visitors
 * and accounts without delete rights are refused; htpasswd logins and an external issuer's anonymous
 * rights; 10,000 repositories page quickly (Server-Timing).
 * One browser for the whole file.
 */
import { generateKeyPairSync } from 'node:crypto'
import { createServer } from 'node:http'
import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { exportJWK, SignJWT } from 'jose'
import type { Browser, Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requirePart, removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'
import { RegistryClient, scopes } from '../e2e/client.js'
import {
  attachSignature, chromiumInstalled, scratchDir, launchBrowser, seedRepositories, serverTiming, skopeoCopy, writeAppLayout, writeArtifactLayout, XSS_ANNOTATION, XSS_LABEL,
} from './fixtures.mjs'

const available = requirePart(chromiumInstalled(), 'Debian\'s chromium (the web UI tests\' browser)', 'apt-get install --no-install-recommends chromium fonts-dejavu-core')
  && requirePart(existsSync('/usr/bin/skopeo'), 'skopeo', 'apt-get install skopeo')

const ALICE = { user: 'alice', password: 'alice web password' }
const BOB = { user: 'bob', password: 'bob web password' }

describe.skipIf(!available)('web UI in Chromium', () => {
  let dir: string
  let enlil: Running
  let browser: Browser
  let page: Page
  let host: string
  let app: { digest: string; children: string[] }
  let signature: string
  const ui = (path = '') => `${enlil.url}/ui${path}`

  beforeAll(async () => {
    dir = tempDir('ui')
    writeFileSync(join(dir, 'users'), `${ALICE.user}:${bcrypt.hashSync(ALICE.password, 8)}\n${BOB.user}:${bcrypt.hashSync(BOB.password, 8)}\n`)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
    writeFileSync(join(dir, 'config.yml'), [
      'auth:',
      '  token:',
      `    users: ${join(dir, 'users')}`,
      `    signingkey: ${join(dir, 'key.pem')}`,
      '  acl:',
      '    - match: {account: "alice"}',
      '      actions: ["*"]',
      '    - match: {account: "bob"}',
      '      actions: ["pull"]',
      '    - match: {account: "", name: "public/*"}',
      '      actions: ["pull"]',
      '',
    ].join('\n'))
    const [running, launched] = await Promise.all([
      startEnlil(join(dir, 'data'), { REGISTRY_CONFIG: join(dir, 'config.yml'), ENLIL_WORKERS: '1' }),
      launchBrowser(join(dir, 'chromium')),
    ])
    enlil = running
    browser = launched
    host = new URL(enlil.url).host
    const creds = `${ALICE.user}:${ALICE.password}`
    const layout = writeAppLayout(join(dir, 'app'), 'v1.2.0', {
      labels: { 'com.example.hostile': XSS_LABEL }, annotations: { 'com.example.note': XSS_ANNOTATION },
    })
    const old = writeAppLayout(join(dir, 'old'), 'old', { seed: 'old' })
    await skopeoCopy(layout, host, 'private/app:v1.2.0', creds, dir)
    await skopeoCopy(old, host, 'private/app:old', creds, dir)
    await skopeoCopy(writeAppLayout(join(dir, 'web'), '1.0', { seed: 'web' }), host, 'public/web:1.0', creds, dir)
    await skopeoCopy(writeArtifactLayout(join(dir, 'model'), 'v1'), host, 'public/model:v1', creds, dir)
    app = layout
    signature = (await attachSignature(host, 'private/app', layout.digest, { username: ALICE.user, password: ALICE.password })).signature
    page = await browser.newPage()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await enlil?.stop()
    if (dir) removeDir(dir)
  })

  const text = () => page.evaluate(() => document.body.innerText)
  const logIn = async (who: { user: string; password: string }) => {
    await page.goto(ui('/login'))
    await page.type('#user', who.user)
    await page.type('#password', who.password)
    await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')])
  }
  const logOut = async () => {
    await page.goto(ui())
    const button = await page.$('form[action$="/logout"] button')
    if (button) await Promise.all([page.waitForNavigation(), button.click()])
  }
  /** A POST from inside the page (same origin, the visitor's cookies): what a forged form would send. */
  const postFromPage = (path: string, fields: Record<string, string>) => page.evaluate(async (url, body) => {
    const res = await fetch(url, { method: 'POST', body: new URLSearchParams(body), redirect: 'manual' })
    return res.status
  }, ui(path), fields)

  it('shows anonymous visitors only what anonymous may pull', async () => {
    const res = await page.goto(ui())
    expect(res!.status()).toBe(200)
    const body = await text()
    expect(body).toContain('public/web')
    expect(body).toContain('public/model')
    expect(body).not.toContain('private/app')
    expect(await page.$('a[href$="/login"]')).not.toBeNull()
    const hidden = await page.goto(ui('/r/private/app'))
    expect(hidden!.status()).toBe(404)
    expect(await text()).toMatch(/may be private: log in/)
    // The same page as an existing-but-forbidden one: nothing tells the two apart.
    const missing = await page.goto(ui('/r/private/nothing'))
    expect(missing!.status()).toBe(404)
  })

  it('serves every page with a strict CSP, no framing and nosniff', async () => {
    const res = await page.goto(ui())
    const headers = res!.headers()
    expect(headers['content-security-policy']).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'/)
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(headers['content-security-policy']).not.toContain('unsafe-inline')
    expect(headers['x-content-type-options']).toBe('nosniff')
    // Opening the registry's address in a browser lands on the UI.
    expect((await page.goto(enlil.url))!.url()).toBe(ui())
  })

  it('logs in, finds the repository, opens the tag: platforms, layers, config and the signature', async () => {
    await logIn(ALICE)
    expect(page.url()).toBe(ui())
    expect(await text()).toContain('Signed in as alice')
    await page.type('#q', 'app')
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')])
    const listed = await page.$$eval('td.name a', (as) => as.map((a) => a.textContent))
    expect(listed).toEqual(['private/app'])
    await Promise.all([page.waitForNavigation(), page.click('td.name a')])
    const repo = await text()
    expect(repo).toContain('v1.2.0')
    expect(repo).toContain('old')
    expect(repo).toContain('linux/amd64')
    await Promise.all([page.waitForNavigation(), page.click('a[href$="/-/tags/v1.2.0"]')])
    const tag = await text()
    expect(tag).toContain('Multi-platform index')
    expect(tag).toContain('linux/amd64')
    expect(tag).toContain('linux/arm64')
    expect(tag).toContain(`docker pull ${host}/private/app:v1.2.0`)
    expect(tag).toContain('signed')
    expect(tag).toContain('application/vnd.dev.sigstore.bundle.v0.3+json')
    expect(tag).toContain('SBOM')
    expect(await page.$(`a[href$="/-/manifests/${signature}"]`)).not.toBeNull()
    // The amd64 image: its layers, its config.
    await Promise.all([page.waitForNavigation(), page.click(`a[href$="/-/manifests/${app.children[0]}"]`)])
    const image = await text()
    expect(image).toContain('application/vnd.oci.image.layer.v1.tar+gzip')
    expect(image).toContain('["/usr/bin/app"]')
    expect(image).toContain('APP_MODE=production')
    expect(image).toContain('8080/tcp')
    expect(image).toContain('COPY ./dist /srv # buildkit')
    expect(image).toContain('org.opencontainers.image.source')
  })

  it('renders hostile labels and annotations as text, never as markup', async () => {
    await page.goto(ui(`/r/private/app/-/manifests/${app.children[0]}`))
    const body = await text()
    expect(body).toContain(XSS_LABEL)
    expect(body).toContain(XSS_ANNOTATION)
    expect(await page.title()).not.toMatch(/pwned/)
    expect(await page.$('img[src="x"]')).toBeNull()
    expect(await page.$$eval('script', (s) => s.filter((x) => x.textContent?.includes('pwned')).length)).toBe(0)
  })

  it('shows an artifact that is not an image as one', async () => {
    await page.goto(ui('/r/public/model/-/tags/v1'))
    const body = await text()
    expect(body).toContain('Artifact (model)')
    expect(body).toContain('model.safetensors')
  })

  it('refuses a POST without the CSRF token', async () => {
    await page.goto(ui('/r/private/app'))
    expect(await postFromPage('/r/private/app/-/delete', { tag: 'old' })).toBe(403)
    expect(await postFromPage('/r/private/app/-/delete', { tag: 'old', _csrf: 'forged-token-of-24-chars' })).toBe(403)
    const client = new RegistryClient(enlil.url, ALICE)
    const tags = await client.fetch('/v2/private/app/tags/list', { scope: scopes('private/app').pull })
    expect(((await tags.json()) as { tags: string[] }).tags.sort()).toEqual(['old', 'v1.2.0'])
  })

  it('deletes a tag after showing what goes, and the API agrees', async () => {
    await page.goto(ui('/r/private/app'))
    await Promise.all([page.waitForNavigation(), page.click('a[aria-label="Delete tag old"]')])
    expect(await text()).toContain('Delete tag old?')
    await Promise.all([page.waitForNavigation(), page.click('form button.danger')])
    expect(await text()).toContain('Deleted tag old.')
    const client = new RegistryClient(enlil.url, ALICE)
    const tags = await client.fetch('/v2/private/app/tags/list', { scope: scopes('private/app').pull })
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual(['v1.2.0'])
    const gone = await client.fetch('/v2/private/app/manifests/old', { scope: scopes('private/app').pull, method: 'HEAD' })
    expect(gone.status).toBe(404)
  })

  it('gives an account without delete rights no delete button, and refuses its forged request', async () => {
    await logOut()
    await logIn(BOB)
    await page.goto(ui('/r/private/app'))
    expect(await text()).toContain('v1.2.0')
    expect(await page.$('a.danger')).toBeNull()
    await page.goto(ui(`/r/private/app/-/tags/v1.2.0`))
    expect(await text()).not.toContain('Danger zone')
    // Bob's own, valid CSRF token (from the logout form) does not make the delete his right.
    const csrf = await page.$eval('form[action$="/logout"] input[name=_csrf]', (i) => (i as HTMLInputElement).value)
    expect(await postFromPage('/r/private/app/-/delete', { tag: 'v1.2.0', _csrf: csrf })).toBe(403)
    expect((await page.goto(ui('/r/private/app/-/delete?tag=v1.2.0')))!.status()).toBe(403)
    const client = new RegistryClient(enlil.url, ALICE)
    const head = await client.fetch('/v2/private/app/manifests/v1.2.0', { scope: scopes('private/app').pull, method: 'HEAD' })
    expect(head.status).toBe(200)
    // The GC preview is for administrators only.
    await page.goto(ui('/storage'))
    expect(await page.$('form[action$="/storage/gc-preview"]')).toBeNull()
    expect(await postFromPage('/storage/gc-preview', { _csrf: csrf })).toBe(403)
    await logOut()
  })

  it('shows storage and runs the GC preview for an administrator', async () => {
    await logIn(ALICE)
    await page.goto(ui('/storage'))
    expect(await text()).toContain('No garbage collection recorded yet')
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/storage/gc-preview"] button')])
    const body = await text()
    expect(body).toContain('Would free')
    expect(body).toMatch(/Scanned\s+3 repositories/)
    await logOut()
  })

  it('logs htpasswd accounts in the same way, with a signed HttpOnly cookie that ends with a changed password', async () => {
    const other = scratchDir('ui-htpasswd')
    const htpasswd = join(other, 'htpasswd')
    writeFileSync(htpasswd, `carol:${bcrypt.hashSync('carol pw', 8)}\n`)
    seedRepositories(join(other, 'data'), ['team/one', 'team/two'])
    const registry = await startEnlil(join(other, 'data'), { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: htpasswd, ENLIL_WORKERS: '1' })
    try {
      // Without ACL rules anonymous may pull nothing: the list is empty and says why.
      await page.goto(`${registry.url}/ui`)
      expect(await text()).toContain('Nothing here is public')
      await page.goto(`${registry.url}/ui/login`)
      await page.type('#user', 'carol')
      await page.type('#password', 'wrong')
      await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')])
      expect(await text()).toContain('Wrong user name or password.')
      await page.type('#password', 'carol pw')
      await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')])
      expect(await page.$$eval('td.name a', (as) => as.map((a) => a.textContent))).toEqual(['team/one', 'team/two'])
      const session = (await page.cookies(`${registry.url}/ui`)).find((c) => c.name === 'enlil_session')!
      expect(session.httpOnly).toBe(true)
      expect(session.sameSite).toBe('Lax')
      expect(session.secure).toBe(false) // plain HTTP here; Secure behind TLS
      // A cookie changed by hand is no session.
      await page.setCookie({ ...session, value: session.value.replace(/^./, (ch) => (ch === 'e' ? 'f' : 'e')) })
      await page.goto(`${registry.url}/ui`)
      expect(await text()).not.toContain('Signed in as carol')
      await page.setCookie(session)
      await page.goto(`${registry.url}/ui`)
      expect(await text()).toContain('Signed in as carol')
      // A new password ends the sessions of the old one (the file is re-read within a second).
      writeFileSync(htpasswd, `carol:${bcrypt.hashSync('carol new pw', 8)}\n`)
      await new Promise((r) => setTimeout(r, 1100))
      await page.goto(`${registry.url}/ui`)
      expect(await text()).not.toContain('Signed in as carol')
    } finally {
      await page.deleteCookie(...(await page.cookies(`${registry.url}/ui`)))
      await registry.stop()
      removeDir(other)
    }
  })

  it('browses with an external issuer\'s anonymous rights, and says that logging in happens elsewhere', async () => {
    const other = scratchDir('ui-external')
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    writeFileSync(join(other, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }))
    // The token server: anonymous clients may pull public/*, and get nothing else (no catalog).
    const issuer = createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://issuer')
      const access = url.searchParams.getAll('scope').map((s) => s.split(':')).filter(([type, name]) => type === 'repository' && name!.startsWith('public/'))
        .map(([type, name]) => ({ type, name, actions: ['pull'] }))
      const token = await new SignJWT({ access }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('test issuer').setAudience('test registry')
        .setSubject('').setIssuedAt().setExpirationTime('5m').sign(privateKey)
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token }))
    })
    await new Promise<void>((ok) => issuer.listen(0, '127.0.0.1', ok))
    seedRepositories(join(other, 'data'), ['public/tools', 'private/secret'])
    const registry = await startEnlil(join(other, 'data'), {
      REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_REALM: `http://127.0.0.1:${(issuer.address() as { port: number }).port}/token`,
      REGISTRY_AUTH_TOKEN_SERVICE: 'test registry', REGISTRY_AUTH_TOKEN_ISSUER: 'test issuer', ENLIL_AUTH_TOKEN_JWKS: join(other, 'jwks.json'), ENLIL_WORKERS: '1',
    })
    try {
      await page.goto(`${registry.url}/ui`)
      expect(await text()).toContain('Nothing to show without a login')
      expect((await page.goto(`${registry.url}/ui/r/public/tools`))!.status()).toBe(200)
      expect(await text()).toContain('latest')
      expect((await page.goto(`${registry.url}/ui/r/private/secret`))!.status()).toBe(404)
      expect(await text()).toContain('through its token service')
      await page.goto(`${registry.url}/ui/login`)
      expect(await text()).toContain('managed by an external token service')
      expect(await page.$('input[type=password]')).toBeNull()
    } finally {
      await registry.stop()
      await new Promise((ok) => issuer.close(ok))
      removeDir(other)
    }
  })

  it('pages 10,000 repositories and 1,000 tags quickly (Server-Timing)', async () => {
    const big = scratchDir('ui-big')
    const names = Array.from({ length: 10_000 }, (_, i) => `team-${String(i % 100).padStart(2, '0')}/service-${String(i).padStart(5, '0')}`)
    seedRepositories(join(big, 'data'), names)
    seedRepositories(join(big, 'data'), ['big/tags'], Array.from({ length: 1000 }, (_, i) => `build-${String(i).padStart(4, '0')}`))
    const open = await startEnlil(join(big, 'data'), { ENLIL_WORKERS: '1' })
    try {
      const catalog = await page.goto(`${open.url}/ui`)
      expect(await text()).toContain('10,001 repositories')
      expect(await text()).toContain('1–50 of 10,001')
      const second = await page.goto(`${open.url}/ui?page=2`)
      expect(await page.$$eval('td.name a', (as) => as[0]?.textContent)).toBe('team-00/service-04900')
      const repo = await page.goto(`${open.url}/ui/r/big/tags`)
      expect(await text()).toContain('1,000 tags')
      // Newest first: build-0000 was pushed last.
      expect(await page.$$eval('td.name a', (as) => as[0]?.textContent)).toBe('build-0000')
      const timings = {
        catalog: serverTiming(catalog!.headers()['server-timing']),
        catalogPage2: serverTiming(second!.headers()['server-timing']),
        repository1000Tags: serverTiming(repo!.headers()['server-timing']),
      }
      console.log(`web UI Server-Timing (filesystem, ms): ${JSON.stringify(timings)}`)
      expect(timings.catalog.total).toBeGreaterThan(0)
    } finally {
      await open.stop()
      // ~80,000 files take longer to remove than to browse: removed in the background.
      spawn('rm', ['-rf', big], { detached: true, stdio: 'ignore' }).unref()
    }
  }, 120_000)
})
