/**
 * @module The web UI's sub-app, mounted by server/app.ts at `ui.path`: server-rendered pages, a
 * session cookie and CSRF token per visitor, the same rights as the API (ui/access.ts), strict
 * security headers on every answer, and a Server-Timing header on every page.
 */
import { randomBytes } from 'node:crypto'
import { type Context, Hono } from 'hono'
import { getCookie } from 'hono/cookie'
import { bodyLimit } from 'hono/body-limit'
import type { JSX } from 'hono/jsx/jsx-runtime'
import type { AppEnv } from '../http/env.js'
import { baseUrl } from '../http/headers.js'
import { publishEvent } from '../http/events.js'
import type { RouteDeps } from '../http/routes/deps.js'
import type { Registry } from '../registry/index.js'
import { BLOBS, paths } from '../registry/paths.js'
import { collectGarbage } from '../registry/gc.js'
import type { RetentionPolicy } from '../registry/retention.js'
import type { QuotaRule } from '../registry/quotas.js'
import { isRegistryError } from '../oci/errors.js'
import { isName, isTag } from '../oci/names.js'
import { tryParseDigest } from '../oci/digest.js'
import { patternMatches } from '../oci/name-patterns.js'
import type { Notifier } from '../observe/notifications.js'
import { InvalidCredentialsError } from '../auth/accounts.js'
import type { Right, UiAccess } from './access.js'
import { SCRIPT, STYLE } from './assets.js'
import { clearSession, CSRF_COOKIE, type CookieOptions, csrfCookie, newCsrfToken, openSession, sameString, type Session, SESSION_COOKIE, SESSION_MS, writeSession } from './session.js'
import { manifestView, repositoryBytes, repositoryRows, tagEntries, tagTarget } from './data.js'
import { ErrorPage, type View } from './pages/layout.js'
import { CatalogPage } from './pages/catalog.js'
import { RepositoryPage, type TagRow } from './pages/repository.js'
import { ManifestPage } from './pages/manifest.js'
import { ConfirmDeletePage } from './pages/confirm.js'
import { type GcRun, StoragePage } from './pages/storage.js'
import { LoginPage } from './pages/login.js'
import { mapLimit } from '../registry/parallel.js'

export interface UiOptions {
  registry: Registry
  access: UiAccess
  /** Where the UI is mounted, e.g. /ui. */
  path: string
  deleteEnabled: boolean
  publicUrl?: string
  notifier?: Notifier
  gc: { graceMs: number; deleteUntagged: boolean; retention: readonly RetentionPolicy[] }
  quotas: { total?: number; repositories: readonly QuotaRule[] }
}

interface UiRequest {
  started: number
  nonce: string
  account: string
  session?: Session
  csrf: string
  cookies: CookieOptions
  form?: Record<string, string>
}

type UiEnv = { Bindings: AppEnv['Bindings']; Variables: AppEnv['Variables'] & { ui: UiRequest } }
type C = Context<UiEnv>

const PAGE_SIZE = 50

export function uiRoutes(options: UiOptions): Hono<AppEnv> {
  const { registry, access } = options
  const base = options.path
  const deps: RouteDeps = { registry, deleteEnabled: options.deleteEnabled, manifestMaxSize: 0, publicUrl: options.publicUrl, notifier: options.notifier }
  const app = new Hono<UiEnv>()

  const view = (c: C, section: View['section']): View => ({
    // An error before the first middleware finished has no visitor yet: it is anonymous.
    base, account: c.var.ui?.account ?? '', csrf: c.var.ui?.csrf ?? '', nonce: c.var.ui?.nonce ?? '', kind: access.kind,
    ...(access.realm ? { realm: access.realm } : {}),
    ...(access.s3Keys ? { s3Keys: true } : {}),
    host: new URL(baseUrl(options.publicUrl, c.req.url, c.req.raw.headers)).host, section,
  })

  /** Renders a page; Server-Timing says how long the data took (`data`) and the whole page (`total`). */
  async function render(c: C, node: JSX.Element, status = 200) {
    const dataDone = performance.now()
    const html = `<!doctype html>${await node.toString()}`
    const end = performance.now()
    const started = c.var.ui?.started ?? dataDone
    c.header('Server-Timing', `data;dur=${(dataDone - started).toFixed(1)}, render;dur=${(end - dataDone).toFixed(1)}, total;dur=${(end - started).toFixed(1)}`)
    return c.html(html, status as 200)
  }

  const errorPage = (c: C, status: number, title: string, message: string) =>
    render(c, <ErrorPage v={view(c, 'none')} status={status} title={title} message={message} />, status)

  // Security headers first, on every answer (DESIGN: set before next(), never after).
  app.use(async function uiHeaders(c, next) {
    const nonce = randomBytes(16).toString('base64')
    c.header('Content-Security-Policy', `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`)
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('X-Frame-Options', 'DENY')
    c.header('Referrer-Policy', 'same-origin')
    c.header('Cache-Control', 'no-store')
    const secure = baseUrl(options.publicUrl, c.req.url, c.req.raw.headers).startsWith('https:')
    const cookies = { path: base, secure }
    let session: Session | undefined
    if (access.kind === 'accounts') {
      session = openSession(await access.sessionKey(), getCookie(c, SESSION_COOKIE))
      // A changed password or a removed account ends its sessions.
      if (session && access.credential && access.credential(session.account) !== session.credential) session = undefined
    }
    c.set('ui', { started: performance.now(), nonce, account: session?.account ?? '', ...(session ? { session } : {}), csrf: '', cookies })
    await next()
  })

  app.get('/assets/style.css', (c) => c.body(STYLE, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=31536000, immutable' }))
  app.get('/assets/app.js', (c) => c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=31536000, immutable' }))

  // Pages get a CSRF token: the session's, or the visitor's own cookie (double submit).
  app.use(async function csrfToken(c, next) {
    const ui = c.var.ui
    ui.csrf = ui.session?.csrf ?? csrfCookie(c, ui.cookies)
    await next()
  })

  // Every state-changing request carries the CSRF token of its visitor; other sites' forms never do.
  app.use(bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.text('form too large', 413) }))
  app.use(async function csrfCheck(c, next) {
    if (c.req.method !== 'POST') return next()
    const ui = c.var.ui
    const expected = ui.session?.csrf ?? getCookie(c, CSRF_COOKIE)
    const body = await c.req.parseBody().catch(() => ({}))
    const form = Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'))
    if (c.req.header('sec-fetch-site') === 'cross-site' || !expected || !form._csrf || !sameString(form._csrf, expected)) {
      return errorPage(c, 403, 'Request refused', 'This form was not sent from this registry\'s pages, or your session changed. Reload the page and try again.')
    }
    ui.form = form
    await next()
  })

  const rightsOn = async (c: C, name: string): Promise<Set<Right>> => access.rights(c.var.ui.account, name, c.var.clientAddress)

  /** The repositories the visitor may pull (an external issuer's catalog grant shows them all, as the API). */
  async function visibleNames(c: C): Promise<string[]> {
    const names = await registry.catalog.names()
    if (access.kind !== 'accounts') return names
    const account = c.var.ui.account
    const out: string[] = []
    for (const name of names) if ((await access.rights(account, name, c.var.clientAddress)).has('pull')) out.push(name)
    return out
  }

  const pageOf = (c: C) => Math.min(1_000_000, Math.max(1, Number.parseInt(c.req.query('page') ?? '1', 10) || 1))

  app.get('/', async (c) => {
    const v = view(c, 'repositories')
    const now = Date.now()
    const q = (c.req.query('q') ?? '').trim().slice(0, 200)
    const page = pageOf(c)
    if (!(await access.mayList(v.account, c.var.clientAddress))) {
      return render(c, <CatalogPage v={v} q="" page={1} pageSize={PAGE_SIZE} total={0} visible={0} rows={[]} now={now} refused="The token service gives anonymous clients no access to the catalog. Log in with docker login to pull; open a repository by its address, /r/<name>, to see it if it is public." />)
    }
    const visible = await visibleNames(c)
    const needle = q.toLowerCase()
    const matching = needle ? visible.filter((n) => n.includes(needle)) : visible
    // The index may name a repository whose content went since (GC tidies it): never shown.
    const shown = await registry.catalog.existing(matching.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE))
    const rows = await repositoryRows(registry, shown)
    return render(c, <CatalogPage v={v} q={q} page={page} pageSize={PAGE_SIZE} total={matching.length} visible={visible.length} rows={rows} now={now} />)
  })

  app.get('/login', (c) => {
    if (c.var.ui.account) return c.redirect(base, 303)
    return render(c, <LoginPage v={view(c, 'login')} next={safeNext(c.req.query('next'))} />)
  })

  app.post('/login', async (c) => {
    const form = c.var.ui.form!
    const v = view(c, 'login')
    const next = safeNext(form.next)
    if (access.kind !== 'accounts' || !access.login) return render(c, <LoginPage v={v} next={next} />, 400)
    const user = (form.user ?? '').slice(0, 256)
    let account: string
    try {
      account = await access.login(user, form.password ?? '', c.var.clientAddress)
    } catch (err) {
      if (err instanceof InvalidCredentialsError) return render(c, <LoginPage v={v} next={next} user={user} error={access.s3Keys ? 'Wrong access key ID or secret key, or a key that may not read this registry\'s bucket.' : 'Wrong user name or password.'} />, 401)
      if (isRegistryError(err) && err.code === 'TOOMANYREQUESTS') return render(c, <LoginPage v={v} next={next} user={user} error={err.message} />, 429)
      throw err
    }
    if (!account) return render(c, <LoginPage v={v} next={next} user={user} error={access.s3Keys ? 'Enter an access key ID and a secret key.' : 'Enter a user name and a password.'} />, 400)
    const session: Session = { account, credential: access.credential?.(account) ?? '', expires: Date.now() + SESSION_MS, csrf: newCsrfToken() }
    writeSession(c, await access.sessionKey(), session, c.var.ui.cookies)
    return c.redirect(next, 303)
  })

  app.post('/logout', (c) => {
    clearSession(c, c.var.ui.cookies)
    return c.redirect(base, 303)
  })

  /** A relative path inside the UI, never another site (`//evil`, `/\evil`). */
  function safeNext(next: string | undefined): string {
    return next && next.startsWith(`${base}/`) && !/^\/[\\/]|[\\]|\/\//.test(next.slice(base.length)) && !/[\r\n]/.test(next) ? next : base
  }

  /** The repository and what follows `/-/` in a UI path: /r/<name>[/-/<rest>]. */
  function parseRepoPath(c: C): { name: string; rest: string[] } | undefined {
    const path = c.req.path.slice(base.length + '/r/'.length)
    const at = path.indexOf('/-/')
    const name = at < 0 ? path.replace(/\/$/, '') : path.slice(0, at)
    if (!isName(name)) return undefined
    return { name, rest: at < 0 ? [] : path.slice(at + 3).split('/').map((s) => decodeURIComponent(s)) }
  }

  /** A repository the visitor may not pull looks exactly like one that does not exist. */
  async function notVisible(c: C, name: string) {
    const hint = access.kind === 'accounts' && !c.var.ui.account ? ' It may be private: log in to see it.' : access.kind === 'external' ? ' It may be private: this registry\'s accounts log in through its token service (docker login), not here.' : ''
    return errorPage(c, 404, 'Repository not found', `There is no repository ${name} that you may see.${hint}`)
  }

  app.get('/r/*', async (c) => {
    const parsed = parseRepoPath(c)
    if (!parsed) return errorPage(c, 404, 'Not found', 'That is not a repository name.')
    const { name, rest } = parsed
    const rights = await rightsOn(c, name)
    if (!rights.has('pull')) return notVisible(c, name)
    const canDelete = rights.has('delete') && options.deleteEnabled && !(await registry.readOnly.reason())
    const v = view(c, 'repositories')
    const now = Date.now()

    if (rest.length === 0) {
      const sort = c.req.query('sort') === 'name' ? 'name' : 'pushed'
      const q = (c.req.query('q') ?? '').trim().slice(0, 128)
      const page = pageOf(c)
      if ((await registry.manifests.tags(name, { n: 0 })) === undefined) return notVisible(c, name)
      const all = await tagEntries(registry, name, sort === 'pushed')
      const matching = q ? all.filter((t) => t.tag.toLowerCase().includes(q.toLowerCase())) : all
      if (sort === 'pushed') matching.sort((a, b) => (b.pushedAt?.getTime() ?? 0) - (a.pushedAt?.getTime() ?? 0) || (a.tag < b.tag ? -1 : 1))
      const shown = matching.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE)
      const rows: TagRow[] = await mapLimit(shown, 16, async (t) => {
        const digest = await tagTarget(registry, name, t.tag)
        const manifest = digest ? await manifestView(registry, name, digest) : undefined
        return { ...t, ...(manifest ? { manifest } : {}) }
      })
      const deleted = c.req.query('deleted')
      return render(c, <RepositoryPage v={v} name={name} q={q} sort={sort} page={page} pageSize={PAGE_SIZE} total={matching.length} tagCount={all.length} rows={rows} now={now} canDelete={canDelete} {...(deleted ? { notice: `Deleted ${deleted}.` } : {})} />)
    }

    const [what, ref] = rest
    if ((what === 'tags' || what === 'manifests') && ref !== undefined && rest.length === 2) {
      const digest = what === 'tags' ? (isTag(ref) ? await tagTarget(registry, name, ref) : undefined) : tryParseDigest(ref)
      const m = digest ? await manifestView(registry, name, digest) : undefined
      if (!digest || !m) return errorPage(c, 404, 'Manifest not found', `${name} has no ${what === 'tags' ? 'tag' : 'manifest'} ${ref}.`)
      const referrers = (await registry.manifests.referrers(name, digest)).descriptors
      return render(c, <ManifestPage v={v} name={name} {...(what === 'tags' ? { tag: ref } : {})} m={m} referrers={referrers} now={now} canDelete={canDelete} />)
    }

    if (what === 'delete' && rest.length === 1) {
      if (!canDelete) return refusedDelete(c, name, rights)
      const tag = c.req.query('tag')
      const digestParam = c.req.query('digest')
      if (tag !== undefined) {
        const digest = isTag(tag) ? await tagTarget(registry, name, tag) : undefined
        if (!digest) return errorPage(c, 404, 'Tag not found', `${name} has no tag ${tag}.`)
        return render(c, <ConfirmDeletePage v={v} name={name} tag={tag} digest={digest.value} tags={[]} referrers={[]} />)
      }
      const digest = digestParam ? tryParseDigest(digestParam) : undefined
      if (!digest || !(await registry.manifests.get(name, { kind: 'digest', digest }))) return errorPage(c, 404, 'Manifest not found', `${name} has no manifest ${digestParam ?? ''}.`)
      const [entries, referrers] = await Promise.all([tagEntries(registry, name, false), registry.manifests.referrers(name, digest)])
      const targets = await mapLimit(entries, 32, async (t) => ((await tagTarget(registry, name, t.tag))?.value === digest.value ? t.tag : undefined))
      return render(c, <ConfirmDeletePage v={v} name={name} digest={digest.value} tags={targets.filter((t): t is string => t !== undefined)} referrers={referrers.descriptors} />)
    }
    return errorPage(c, 404, 'Not found', 'There is no such page.')
  })

  async function refusedDelete(c: C, name: string, rights: Set<Right>) {
    if (!options.deleteEnabled) return errorPage(c, 405, 'Deleting is disabled', 'This registry does not delete manifests (storage.delete.enabled is false).')
    const readOnly = await registry.readOnly.reason()
    if (readOnly) return errorPage(c, 405, 'The registry is read-only', readOnly)
    const login = !c.var.ui.account && access.kind === 'accounts' ? ' Log in with an account that may.' : ''
    return errorPage(c, 403, 'Not allowed', `${c.var.ui.account ? `Account ${c.var.ui.account}` : 'Anonymous visitors'} may not delete in ${name}.${rights.has('delete') ? '' : login}`)
  }

  app.post('/r/*', async (c) => {
    const parsed = parseRepoPath(c)
    if (!parsed || parsed.rest.join('/') !== 'delete') return errorPage(c, 404, 'Not found', 'There is no such page.')
    const { name } = parsed
    const rights = await rightsOn(c, name)
    if (!rights.has('pull')) return notVisible(c, name)
    if (!rights.has('delete') || !options.deleteEnabled || (await registry.readOnly.reason())) return refusedDelete(c, name, rights)
    const form = c.var.ui.form!
    const ref = form.tag !== undefined
      ? (isTag(form.tag) ? { kind: 'tag' as const, tag: form.tag } : undefined)
      : (() => { const d = tryParseDigest(form.digest ?? ''); return d ? { kind: 'digest' as const, digest: d } : undefined })()
    if (!ref) return errorPage(c, 400, 'Nothing to delete', 'The form named no valid tag or digest.')
    try {
      await registry.manifests.delete(name, ref)
    } catch (err) {
      if (isRegistryError(err) && err.code === 'MANIFEST_UNKNOWN') return errorPage(c, 404, 'Already gone', `${name} has no ${ref.kind === 'tag' ? `tag ${ref.tag}` : `manifest ${ref.digest.value}`} (anymore).`)
      throw err
    }
    c.set('subject', c.var.ui.account)
    publishEvent(c as unknown as Context<AppEnv>, deps, 'delete', 'manifests', { repository: name, ...(ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest.value }) })
    const what = ref.kind === 'tag' ? `tag ${ref.tag}` : `manifest ${ref.digest.value}`
    return c.redirect(`${base}/r/${name}?deleted=${encodeURIComponent(what)}`, 303)
  })

  async function storagePage(c: C, preview?: GcRun) {
    const v = view(c, 'storage')
    const page = pageOf(c)
    const names = (await access.mayList(v.account, c.var.clientAddress)) ? await visibleNames(c) : []
    const shown = await registry.catalog.existing(names.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE))
    const [total, readOnly, lastRaw, bytes] = await Promise.all([
      registry.driver.usage(BLOBS),
      registry.readOnly.reason(),
      registry.driver.getContent(paths.gcLastRun),
      mapLimit(shown, 8, (name) => repositoryBytes(registry, name)),
    ])
    let lastGc: GcRun | undefined
    try {
      lastGc = lastRaw ? (JSON.parse(lastRaw.toString('utf8')) as GcRun) : undefined
    } catch {
      lastGc = undefined
    }
    const rows = shown.map((name, i) => {
      const limit = options.quotas.repositories.find((r) => patternMatches(r.match, name))?.limit
      return { name, bytes: bytes[i] ?? 0, ...(limit !== undefined ? { limit } : {}) }
    })
    return render(c, <StoragePage v={v} total={total} {...(options.quotas.total !== undefined ? { totalQuota: options.quotas.total } : {})}
      {...(readOnly ? { readOnly } : {})} deleteEnabled={options.deleteEnabled}
      {...(lastGc && typeof lastGc === 'object' ? { lastGc } : {})} lastGcUnreadable={lastRaw !== undefined && !lastGc}
      {...(preview ? { preview } : {})} isAdmin={access.isAdmin(v.account, c.var.clientAddress)}
      rows={rows} page={page} pageSize={PAGE_SIZE} repositories={names.length} now={Date.now()} />)
  }

  app.get('/storage', (c) => storagePage(c))
  app.post('/storage/gc-preview', async (c) => {
    if (!access.isAdmin(c.var.ui.account, c.var.clientAddress)) return errorPage(c, 403, 'Not allowed', 'Only administrators (accounts the rules give every action on the registry) may preview garbage collection.')
    const summary = await collectGarbage(registry.driver, { dryRun: true, graceMs: options.gc.graceMs, deleteUntagged: options.gc.deleteUntagged, retention: options.gc.retention })
    return storagePage(c, { ...summary, finishedAt: new Date().toISOString() })
  })

  app.all('*', (c) => errorPage(c, 404, 'Not found', 'There is no such page.'))

  app.onError((err, c) => {
    if (isRegistryError(err) && err.status < 500) return errorPage(c as C, err.status, 'Request refused', err.message)
    c.var.log?.error('web UI request failed', { err })
    const unavailable = isRegistryError(err) && err.status === 503
    return errorPage(c as C, unavailable ? 503 : 500, unavailable ? 'Storage unavailable' : 'Something went wrong', unavailable ? 'The storage backend does not answer; try again shortly.' : `The error was logged with request id ${c.var.requestId ?? ''}.`)
  })

  return app as unknown as Hono<AppEnv>
}

