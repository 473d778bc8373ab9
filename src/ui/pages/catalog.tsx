/** @module The repository list: filter, one page of rows with their details, pager. */
import type { RepositoryRow } from '../data.js'
import { Command, Empty, href, Layout, Pager, repoHref, Size, type View, When } from './layout.js'

export interface CatalogProps {
  v: View
  q: string
  page: number
  pageSize: number
  total: number
  /** Repositories in the registry the visitor may see, before the filter. */
  visible: number
  rows: RepositoryRow[]
  now: number
  /** Set when the visitor may not list anything (an external issuer without anonymous catalog access). */
  refused?: string
}

export function CatalogPage(p: CatalogProps) {
  const { v } = p
  const link = (page: number) => `${href(v, '/')}?${new URLSearchParams({ ...(p.q ? { q: p.q } : {}), ...(page > 1 ? { page: String(page) } : {}) })}`
  return (
    <Layout v={v} title="Repositories">
      <h1>Repositories</h1>
      <p class="sub">{p.refused ? 'Browsing needs a login.' : `${p.visible.toLocaleString('en-US')} ${p.visible === 1 ? 'repository' : 'repositories'}${v.account || v.kind === 'open' ? '' : ' visible without logging in'}`}</p>
      {p.refused
        ? <div class="panel"><Empty title="Nothing to show without a login">
            <p>{p.refused}</p>
          </Empty></div>
        : (
          <>
            <form class="toolbar" method="get" action={href(v, '/')} role="search">
              <label class="sr" for="q">Filter repositories by name</label>
              <input id="q" type="search" name="q" value={p.q} placeholder="Filter by name   ( / )" autocomplete="off" />
              <button type="submit">Filter</button>
              {p.q && <a href={href(v, '/')}>Clear</a>}
            </form>
            <div class="panel">
              {p.rows.length === 0
                ? p.q
                  ? <Empty title={`No repository matches “${p.q}”`}><p>Try part of the name, e.g. the team or project.</p></Empty>
                  : <Empty title="No repositories yet">
                      <p>{v.account || v.kind === 'open' ? 'Push an image and it shows up here:' : 'Nothing here is public. Log in to see the repositories you may pull, or push one:'}</p>
                      <div class="cmds">
                        <Command label="docker" text={`docker push ${v.host}/my-image:latest`} />
                      </div>
                    </Empty>
                : (
                  <div class="scroll">
                    <table>
                      <thead><tr><th>Name</th><th class="num">Tags</th><th class="num">Size</th><th class="num opt">Last push</th></tr></thead>
                      <tbody>
                        {p.rows.map((r) => (
                          <tr>
                            <td class="name"><a href={repoHref(v, r.name)}>{r.name}</a></td>
                            <td class="num">{r.tags.toLocaleString('en-US')}</td>
                            <td class="num"><Size bytes={r.bytes} /></td>
                            <td class="num opt">{r.lastPushSkipped ? <span class="muted" title="too many tags to read here: open the repository">—</span> : <When at={r.lastPush} now={p.now} />}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                )}
              {p.total > 0 && <Pager page={p.page} pageSize={p.pageSize} total={p.total} link={link} />}
            </div>
          </>
        )}
    </Layout>
  )
}
