/** @module The frame of every page, and the small pieces pages share (sizes, times, pager, empty states). */
import type { Child } from 'hono/jsx'
import { SCRIPT_VERSION, STYLE_VERSION } from '../assets.js'
import { exactBytes, humanBytes, relativeTime } from '../format.js'

/** What every page knows about the request. */
export interface View {
  base: string
  /** The account ('' anonymous). */
  account: string
  csrf: string
  nonce: string
  kind: 'open' | 'accounts' | 'external'
  realm?: string
  /** Accounts are S3 key pairs (access key ID and secret key), not user names and passwords. */
  s3Keys?: boolean
  /** The registry's host (and port) as clients address it: `docker pull <host>/<name>`. */
  host: string
  section: 'repositories' | 'storage' | 'login' | 'none'
}

/** A UI path; the home page is the mount path itself (`/ui`). */
export const href = (v: View, path = '') => (path === '/' ? v.base : `${v.base}${path}`)
export const repoHref = (v: View, name: string) => `${v.base}/r/${name}`
export const tagHref = (v: View, name: string, tag: string) => `${v.base}/r/${name}/-/tags/${encodeURIComponent(tag)}`
export const manifestHref = (v: View, name: string, digest: string) => `${v.base}/r/${name}/-/manifests/${digest}`

const Logo = () => (
  <svg viewBox="0 0 24 24" fill="none" aria-hidden="true">
    <rect x="2" y="4" width="20" height="16" rx="3" stroke="currentColor" stroke-width="1.8" />
    <path d="M6 9h12M6 12h8M6 15h10" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" />
  </svg>
)

export function Layout(props: { v: View; title: string; children?: Child }) {
  const { v } = props
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{props.title} · enlil</title>
        <link rel="stylesheet" href={`${v.base}/assets/style.css?v=${STYLE_VERSION}`} />
        <script nonce={v.nonce} src={`${v.base}/assets/app.js?v=${SCRIPT_VERSION}`} defer></script>
      </head>
      <body>
        <header class="top">
          <div class="in">
            <a class="brand" href={href(v, '/')}><Logo />enlil</a>
            <nav class="main" aria-label="Main">
              <a href={href(v, '/')} aria-current={v.section === 'repositories' ? 'page' : undefined}>Repositories</a>
              <a href={href(v, '/storage')} aria-current={v.section === 'storage' ? 'page' : undefined}>Storage</a>
            </nav>
            <div class="who">
              {v.account
                ? (
                  <>
                    <span>Signed in as <strong>{v.account}</strong></span>
                    <form method="post" action={href(v, '/logout')}>
                      <input type="hidden" name="_csrf" value={v.csrf} />
                      <button class="small" type="submit">Log out</button>
                    </form>
                  </>
                )
                : v.kind === 'accounts'
                  ? <a class="button small" href={href(v, '/login')}>Log in</a>
                  : v.kind === 'external' ? <span>Browsing anonymously</span> : <span>No authentication</span>}
            </div>
          </div>
        </header>
        <main id="main">{props.children}</main>
        <footer>enlil · OCI registry at <span class="mono">{v.host}</span></footer>
      </body>
    </html>
  )
}

export const Size = (p: { bytes: number | undefined }) =>
  p.bytes === undefined ? <span class="muted">—</span> : <span title={exactBytes(p.bytes)}>{humanBytes(p.bytes)}</span>

export const When = (p: { at: Date | undefined; now: number }) =>
  p.at ? <time datetime={p.at.toISOString()} title={p.at.toISOString()}>{relativeTime(p.at, p.now)}</time> : <span class="muted">—</span>

export const Empty = (p: { title: string; children?: Child }) => (
  <div class="empty">
    <svg viewBox="0 0 24 24" fill="none" aria-hidden="true"><path d="M3 7l9-4 9 4-9 4-9-4zm0 0v10l9 4 9-4V7" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" /></svg>
    <h2>{p.title}</h2>
    {p.children}
  </div>
)

/** "1–50 of 10,000" with previous and next links; `link(page)` builds the URL of a page. */
export function Pager(p: { page: number; pageSize: number; total: number; link: (page: number) => string }) {
  const first = (p.page - 1) * p.pageSize + 1
  const last = Math.min(p.total, p.page * p.pageSize)
  const pages = Math.max(1, Math.ceil(p.total / p.pageSize))
  return (
    <div class="pager">
      <span>{p.total === 0 ? 'none' : `${first.toLocaleString('en-US')}–${last.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')}`}</span>
      {pages > 1 && (
        <span class="links">
          {p.page > 1 ? <a class="button small" rel="prev" href={p.link(p.page - 1)}>← Previous</a> : <span class="button small muted" aria-disabled="true">← Previous</span>}
          <span class="muted">page {p.page} of {pages.toLocaleString('en-US')}</span>
          {p.page < pages ? <a class="button small" rel="next" href={p.link(p.page + 1)}>Next →</a> : <span class="button small muted" aria-disabled="true">Next →</span>}
        </span>
      )}
    </div>
  )
}

export const Csrf = (p: { v: View }) => <input type="hidden" name="_csrf" value={p.v.csrf} />

/** A command with a copy button (added by the script); selectable text without it. */
export const Command = (p: { label: string; text: string }) => (
  <div class="cmd" data-copy={p.text}><span class="label">{p.label}</span><code>{p.text}</code></div>
)

export function ErrorPage(p: { v: View; status: number; title: string; message: string; children?: Child }) {
  return (
    <Layout v={p.v} title={p.title}>
      <div class="error-page">
        <div class="code">{p.status}</div>
        <h1>{p.title}</h1>
        <p class="sub">{p.message}</p>
        {p.children}
        <p><a class="button" href={href(p.v, '/')}>Back to repositories</a></p>
      </div>
    </Layout>
  )
}
