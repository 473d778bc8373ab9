/**
 * @module A manifest or index: platforms, layers, the image config, annotations, referrers by
 * artifact type, pull commands. Every string here comes from the registry's content and is
 * rendered as text by JSX; nothing is ever inserted as HTML.
 */
import type { Descriptor } from '../../oci/manifest.js'
import type { ManifestView } from '../data.js'
import { shortDigest } from '../format.js'
import { Command, Empty, href, Layout, manifestHref, repoHref, Size, type View, When } from './layout.js'
import { artifactLabel, Kind } from './repository.js'

export interface ManifestProps {
  v: View
  name: string
  tag?: string
  m: ManifestView
  referrers: Descriptor[]
  now: number
  canDelete: boolean
}

const Kv = (p: { rows: [string, unknown][] }) => (
  <dl class="kv">
    {p.rows.filter(([, value]) => value !== undefined && value !== null && value !== '').map(([k, value]) => (
      <><dt>{k}</dt><dd>{value as string}</dd></>
    ))}
  </dl>
)

const list = (v: string[] | null | undefined) => (v && v.length > 0 ? <code>{JSON.stringify(v)}</code> : undefined)

function Annotations(p: { values: Record<string, string>; title?: string }) {
  const entries = Object.entries(p.values)
  if (entries.length === 0) return null
  return (
    <>
      <h2>{p.title ?? 'Annotations'}</h2>
      <div class="panel scroll">
        <table>
          <thead><tr><th>Key</th><th>Value</th></tr></thead>
          <tbody>{entries.map(([k, value]) => <tr><td class="mono name">{k}</td><td>{value}</td></tr>)}</tbody>
        </table>
      </div>
    </>
  )
}

function Config(p: { m: ManifestView; now: number }) {
  const c = p.m.imageConfig
  if (!c) return null
  const cfg = c.config ?? {}
  const created = c.created ? new Date(c.created) : undefined
  return (
    <>
      <h2>Configuration</h2>
      <div class="panel pad">
        <Kv rows={[
          ['Platform', p.m.platforms[0]],
          ['Created', created && !Number.isNaN(created.getTime()) ? <When at={created} now={p.now} /> : c.created],
          ['Author', c.author],
          ['Entrypoint', list(cfg.Entrypoint)],
          ['Command', list(cfg.Cmd)],
          ['Working dir', cfg.WorkingDir ? <code>{cfg.WorkingDir}</code> : undefined],
          ['User', cfg.User ? <code>{cfg.User}</code> : undefined],
          ['Exposed ports', cfg.ExposedPorts && Object.keys(cfg.ExposedPorts).length > 0 ? Object.keys(cfg.ExposedPorts).map((port) => <span class="badge gray">{port}</span>) : undefined],
          ['Environment', cfg.Env && cfg.Env.length > 0 ? <div>{cfg.Env.map((e) => <div><code>{e}</code></div>)}</div> : undefined],
        ]} />
      </div>
      {cfg.Labels && <Annotations title="Labels" values={cfg.Labels} />}
      {c.history && c.history.length > 0 && (
        <>
          <h2>History</h2>
          <div class="panel">
            <ul class="history">
              {c.history.map((h) => (
                <li>
                  <code>{h.created_by ?? h.comment ?? ''}</code>
                  {h.empty_layer && <span class="badge gray">no layer</span>}
                </li>
              ))}
            </ul>
          </div>
        </>
      )}
    </>
  )
}

function Layers(p: { m: ManifestView }) {
  const { m } = p
  const rows = [...(m.kind === 'artifact' && m.config ? [{ d: m.config, what: 'config' }] : []), ...m.layers.map((d, i) => ({ d, what: `${i + 1}` }))]
  if (rows.length === 0) return null
  return (
    <>
      <h2>{m.kind === 'artifact' ? 'Contents' : 'Layers'}</h2>
      <div class="panel scroll">
        <table>
          <thead><tr><th class="num">#</th><th>{m.kind === 'artifact' ? 'File / media type' : 'Media type'}</th><th>Digest</th><th class="num">Size</th></tr></thead>
          <tbody>
            {rows.map(({ d, what }) => (
              <tr>
                <td class="num muted">{what}</td>
                <td>{d.annotations?.['org.opencontainers.image.title'] && <div><strong>{d.annotations['org.opencontainers.image.title']}</strong></div>}<span class="mono">{d.mediaType}</span></td>
                <td class="mono nowrap" title={d.digest}>{shortDigest(d.digest)}</td>
                <td class="num"><Size bytes={d.size} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}

export function ManifestPage(p: ManifestProps) {
  const { v, m, name } = p
  const ref = p.tag ? `${name}:${p.tag}` : `${name}@${m.digest}`
  const byType = new Map<string, Descriptor[]>()
  for (const r of p.referrers) {
    const type = r.artifactType ?? r.mediaType
    byType.set(type, [...(byType.get(type) ?? []), r])
  }
  const created = m.imageConfig?.created ? new Date(m.imageConfig.created) : undefined
  return (
    <Layout v={v} title={ref}>
      <div class="crumbs"><a href={href(v, '/')}>Repositories</a> / <a href={repoHref(v, name)}>{name}</a> /</div>
      <h1>{p.tag ?? shortDigest(m.digest)} <Kind m={m} />{p.referrers.some((r) => artifactLabel(r.artifactType) === 'signature') && <span class="badge ok">signed</span>}</h1>
      <p class="sub mono" title={m.digest}>{m.digest}</p>
      <div class="two">
        <div class="panel pad">
          <Kv rows={[
            ['Kind', m.kind === 'index' ? 'Multi-platform index' : m.kind === 'image' ? 'Image' : m.kind === 'artifact' ? `Artifact (${artifactLabel(m.artifactType)})` : 'Unknown'],
            ['Media type', <code>{m.mediaType}</code>],
            ['Artifact type', m.kind === 'artifact' && m.artifactType ? <code>{m.artifactType}</code> : undefined],
            ['Platforms', m.platforms.length > 0 ? m.platforms.map((pl) => <span class="badge">{pl}</span>) : undefined],
            ['Size', <Size bytes={m.size} />],
            ['Created', created && !Number.isNaN(created.getTime()) ? <When at={created} now={p.now} /> : undefined],
            ['Subject', m.subject ? <a class="mono" href={manifestHref(v, name, m.subject)}>{shortDigest(m.subject)}</a> : undefined],
          ]} />
        </div>
        <div class="panel pad cmds">
          {p.tag && <Command label="docker" text={`docker pull ${v.host}/${name}:${p.tag}`} />}
          <Command label="digest" text={`docker pull ${v.host}/${name}@${m.digest}`} />
          <Command label="podman" text={`podman pull ${v.host}/${ref}`} />
          <Command label="skopeo" text={`skopeo inspect docker://${v.host}/${name}@${m.digest}`} />
        </div>
      </div>
      {m.kind === 'index' && (
        <>
          <h2>Platforms</h2>
          <div class="panel scroll">
            <table>
              <thead><tr><th>Platform</th><th>Digest</th><th>Media type</th><th class="num">Manifest size</th></tr></thead>
              <tbody>
                {m.children.map((c) => (
                  <tr>
                    <td>{c.platform ? <span class="badge">{c.platform}</span> : <span class="muted">{artifactLabel(c.descriptor.artifactType)}</span>}</td>
                    <td class="mono nowrap"><a href={manifestHref(v, name, c.descriptor.digest)} title={c.descriptor.digest}>{shortDigest(c.descriptor.digest)}</a></td>
                    <td class="mono">{c.descriptor.mediaType}</td>
                    <td class="num"><Size bytes={c.descriptor.size} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <Config m={m} now={p.now} />
      <Layers m={m} />
      <Annotations values={m.annotations} />
      <h2>Referrers</h2>
      <div class="panel">
        {p.referrers.length === 0
          ? <Empty title="No referrers"><p>No signature, SBOM or attestation refers to this manifest.</p></Empty>
          : (
            <div class="scroll">
              <table>
                <thead><tr><th>Kind</th><th>Artifact type</th><th>Digest</th><th class="num">Size</th></tr></thead>
                <tbody>
                  {[...byType].flatMap(([type, items]) => items.map((r) => (
                    <tr>
                      <td><span class="badge ok">{artifactLabel(type)}</span></td>
                      <td class="mono">{type}</td>
                      <td class="mono nowrap"><a href={manifestHref(v, name, r.digest)} title={r.digest}>{shortDigest(r.digest)}</a></td>
                      <td class="num"><Size bytes={r.size} /></td>
                    </tr>
                  )))}
                </tbody>
              </table>
            </div>
          )}
      </div>
      <h2>Manifest</h2>
      <div class="panel pad">
        <details>
          <summary>Show the manifest as stored ({m.manifestBytes.toLocaleString('en-US')} bytes)</summary>
          <pre class="raw">{pretty(m.raw)}</pre>
        </details>
      </div>
      {p.canDelete && (
        <>
          <h2>Danger zone</h2>
          <div class="panel pad toolbar">
            <span class="grow">Delete this manifest{p.tag ? ' (and every tag pointing to it)' : ''} from <strong>{name}</strong>.</span>
            {p.tag && <a class="button danger" href={`${repoHref(v, name)}/-/delete?tag=${encodeURIComponent(p.tag)}`}>Delete tag {p.tag}</a>}
            <a class="button danger" href={`${repoHref(v, name)}/-/delete?digest=${encodeURIComponent(m.digest)}`}>Delete manifest</a>
          </div>
        </>
      )}
    </Layout>
  )
}

function pretty(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2)
  } catch {
    return raw
  }
}

export const NoManifest = (p: { v: View; name: string; reference: string }) => (
  <Layout v={p.v} title="Not found">
    <div class="panel"><Empty title={`No manifest ${p.reference} in ${p.name}`}><p><a href={repoHref(p.v, p.name)}>Back to {p.name}</a></p></Empty></div>
  </Layout>
)
