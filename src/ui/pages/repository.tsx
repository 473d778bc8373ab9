/** @module A repository: its tags by push time (or name), one page of rows with digest, size, platforms and age. */
import type { ManifestView } from '../data.js'
import { shortDigest } from '../format.js'
import { Command, Empty, href, Layout, manifestHref, Pager, repoHref, Size, tagHref, type View, When } from './layout.js'

export interface TagRow {
  tag: string
  pushedAt?: Date
  manifest?: ManifestView
}

export interface RepositoryProps {
  v: View
  name: string
  q: string
  sort: 'pushed' | 'name'
  page: number
  pageSize: number
  total: number
  tagCount: number
  rows: TagRow[]
  now: number
  canDelete: boolean
  notice?: string
}

export const Kind = (p: { m: ManifestView }) => {
  const { m } = p
  if (m.kind === 'index') return <span class="badge gray">index</span>
  if (m.kind === 'artifact') return <span class="badge warn" title={m.artifactType}>{artifactLabel(m.artifactType)}</span>
  if (m.kind === 'unknown') return <span class="badge gray">{m.mediaType || 'unknown'}</span>
  return null
}

/** A short name for an artifact type: "sigstore bundle", "SBOM", "helm chart"… or the type itself. */
export function artifactLabel(type: string | undefined): string {
  if (!type) return 'artifact'
  if (/sigstore|cosign|signature|notary/i.test(type)) return 'signature'
  if (/spdx|cyclonedx|sbom|syft/i.test(type)) return 'SBOM'
  if (/in-toto|attestation|provenance|slsa/i.test(type)) return 'attestation'
  if (/helm/i.test(type)) return 'helm chart'
  if (/geranos|disk|vm/i.test(type)) return 'VM disk'
  if (/model|gguf|onnx|safetensors/i.test(type)) return 'model'
  return type.length > 40 ? `${type.slice(0, 40)}…` : type
}

export function RepositoryPage(p: RepositoryProps) {
  const { v, name } = p
  const query = (over: Record<string, string | number | undefined>) => {
    const all = { q: p.q || undefined, sort: p.sort === 'pushed' ? undefined : p.sort, page: undefined as number | undefined, ...over }
    const params = new URLSearchParams(Object.entries(all).filter(([, x]) => x !== undefined && x !== '' && !(typeof x === 'number' && x <= 1)).map(([k, x]) => [k, String(x)]))
    const s = params.toString()
    return `${repoHref(v, name)}${s ? `?${s}` : ''}`
  }
  return (
    <Layout v={v} title={name}>
      <div class="crumbs"><a href={href(v, '/')}>Repositories</a> / </div>
      <h1>{name}</h1>
      <p class="sub">{p.tagCount.toLocaleString('en-US')} {p.tagCount === 1 ? 'tag' : 'tags'}</p>
      {p.notice && <div class="notice ok" role="status">{p.notice}</div>}
      <div class="panel pad cmds">
        <Command label="docker" text={`docker pull ${v.host}/${name}:${p.rows[0]?.tag ?? 'latest'}`} />
        <Command label="podman" text={`podman pull ${v.host}/${name}:${p.rows[0]?.tag ?? 'latest'}`} />
      </div>
      <h2>Tags</h2>
      <form class="toolbar" method="get" action={repoHref(v, name)} role="search">
        <label class="sr" for="q">Filter tags</label>
        <input id="q" type="search" name="q" value={p.q} placeholder="Filter tags   ( / )" autocomplete="off" />
        <label class="sr" for="sort">Sort</label>
        <select id="sort" name="sort" class="button">
          <option value="pushed" selected={p.sort === 'pushed'}>Newest first</option>
          <option value="name" selected={p.sort === 'name'}>By name</option>
        </select>
        <button type="submit">Apply</button>
      </form>
      <div class="panel">
        {p.rows.length === 0
          ? <Empty title={p.q ? `No tag matches “${p.q}”` : 'No tags'}><p>{p.q ? 'Try another part of the tag.' : 'Manifests pushed by digest only are still here; push a tag to list it.'}</p></Empty>
          : (
            <div class="scroll">
              <table>
                <thead><tr><th>Tag</th><th>Digest</th><th>Platforms</th><th class="num">Size</th><th class="num opt">Pushed</th>{p.canDelete && <th class="num"><span class="sr">Actions</span></th>}</tr></thead>
                <tbody>
                  {p.rows.map((r) => (
                    <tr>
                      <td class="name"><a href={tagHref(v, name, r.tag)}>{r.tag}</a></td>
                      <td class="nowrap mono">{r.manifest ? <a href={manifestHref(v, name, r.manifest.digest)} title={r.manifest.digest}>{shortDigest(r.manifest.digest)}</a> : <span class="muted">—</span>}</td>
                      <td>{r.manifest && <Kind m={r.manifest} />}{r.manifest?.platforms.map((pl) => <span class="badge">{pl}</span>)}</td>
                      <td class="num"><Size bytes={r.manifest?.size} /></td>
                      <td class="num opt"><When at={r.pushedAt} now={p.now} /></td>
                      {p.canDelete && <td class="num"><a class="button small danger" href={`${repoHref(v, name)}/-/delete?tag=${encodeURIComponent(r.tag)}`} aria-label={`Delete tag ${r.tag}`}>Delete</a></td>}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        {p.total > 0 && <Pager page={p.page} pageSize={p.pageSize} total={p.total} link={(page) => query({ page })} />}
      </div>
    </Layout>
  )
}
