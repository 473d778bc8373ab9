/** @module Storage: usage against quotas, read-only state, the last garbage collection, the GC preview. */
import { humanBytes } from '../format.js'
import { Csrf, Empty, href, Layout, Pager, repoHref, Size, type View, When } from './layout.js'

export interface GcRun {
  dryRun?: boolean
  repositories?: number
  manifests?: number
  blobsScanned?: number
  blobsDeleted?: number
  bytesFreed?: number
  blobsInGrace?: number
  tagsDeleted?: number
  manifestsDeleted?: number
  layerLinksDeleted?: number
  durationMs?: number
  startedAt?: string
  finishedAt?: string
}

export interface StorageProps {
  v: View
  total: number
  totalQuota?: number
  readOnly?: string
  deleteEnabled: boolean
  lastGc?: GcRun
  /** The last run's file exists but is not readable JSON. */
  lastGcUnreadable?: boolean
  preview?: GcRun
  isAdmin: boolean
  rows: { name: string; bytes: number; limit?: number }[]
  page: number
  pageSize: number
  repositories: number
  now: number
}

const Usage = (p: { bytes: number; limit?: number }) => {
  if (p.limit === undefined) return <Size bytes={p.bytes} />
  const share = p.limit > 0 ? p.bytes / p.limit : 1
  return (
    <div>
      <Size bytes={p.bytes} /> <span class="muted">of {humanBytes(p.limit)} ({Math.round(share * 100)}%)</span>
      <meter class="bar" min={0} max={Math.max(1, p.limit)} low={p.limit * 0.75} high={p.limit * 0.9} optimum={0} value={Math.min(p.bytes, p.limit)} aria-label={`${Math.round(share * 100)}% of the quota`}></meter>
    </div>
  )
}

function GcSummaryView(p: { run: GcRun; now: number }) {
  const r = p.run
  const finished = r.finishedAt ? new Date(r.finishedAt) : undefined
  return (
    <dl class="kv">
      {finished && !Number.isNaN(finished.getTime()) && <><dt>Finished</dt><dd><When at={finished} now={p.now} /></dd></>}
      <dt>{r.dryRun ? 'Would free' : 'Freed'}</dt><dd><strong><Size bytes={r.bytesFreed ?? 0} /></strong> in {(r.blobsDeleted ?? 0).toLocaleString('en-US')} blobs</dd>
      <dt>Scanned</dt><dd>{(r.repositories ?? 0).toLocaleString('en-US')} repositories, {(r.manifests ?? 0).toLocaleString('en-US')} manifests, {(r.blobsScanned ?? 0).toLocaleString('en-US')} blobs</dd>
      <dt>Retention</dt><dd>{(r.tagsDeleted ?? 0).toLocaleString('en-US')} tags, {(r.manifestsDeleted ?? 0).toLocaleString('en-US')} manifests {r.dryRun ? 'would go' : 'removed'}</dd>
      <dt>In grace period</dt><dd>{(r.blobsInGrace ?? 0).toLocaleString('en-US')} unreferenced blobs kept (too recent)</dd>
      {r.durationMs !== undefined && <><dt>Took</dt><dd>{(r.durationMs / 1000).toFixed(1)} s</dd></>}
    </dl>
  )
}

export function StoragePage(p: StorageProps) {
  const { v } = p
  return (
    <Layout v={v} title="Storage">
      <h1>Storage</h1>
      <p class="sub">What the registry holds, and what garbage collection freed.</p>
      {p.readOnly && <div class="notice warn" role="status"><strong>Read-only:</strong> {p.readOnly}</div>}
      <div class="grid">
        <div class="panel pad stat">
          <div class="label">Stored blobs</div>
          <div class="value"><Size bytes={p.total} /></div>
          {p.totalQuota !== undefined ? <Usage bytes={p.total} limit={p.totalQuota} /> : <div class="muted">no total quota</div>}
        </div>
        <div class="panel pad stat">
          <div class="label">Writes</div>
          <div class="value">{p.readOnly ? 'Read-only' : 'Open'}</div>
          <div class="muted">{p.deleteEnabled ? 'deletes enabled' : 'deletes disabled (storage.delete.enabled)'}</div>
        </div>
        <div class="panel pad stat">
          <div class="label">Repositories</div>
          <div class="value">{p.repositories.toLocaleString('en-US')}</div>
          <div class="muted">visible to you</div>
        </div>
      </div>
      <h2>Last garbage collection</h2>
      <div class="panel pad">
        {p.lastGc ? <GcSummaryView run={p.lastGc} now={p.now} /> : <p class="muted">{p.lastGcUnreadable ? 'The record of the last run could not be read.' : 'No garbage collection recorded yet.'} Run <code>enlil gc</code>, or set <code>gc.schedule.interval</code>.</p>}
      </div>
      {p.isAdmin && (
        <>
          <h2>Garbage collection preview</h2>
          <div class="panel pad">
            {p.preview
              ? <GcSummaryView run={p.preview} now={p.now} />
              : <p class="muted">A dry run: decides what retention and garbage collection would delete now, and deletes nothing.</p>}
            <form method="post" action={href(v, '/storage/gc-preview')} class="toolbar">
              <Csrf v={v} />
              <button type="submit">{p.preview ? 'Run the preview again' : 'Preview garbage collection'}</button>
            </form>
          </div>
        </>
      )}
      <h2>Usage per repository</h2>
      <div class="panel">
        {p.rows.length === 0
          ? <Empty title="No repositories" />
          : (
            <div class="scroll">
              <table>
                <thead><tr><th>Repository</th><th>Linked blobs</th></tr></thead>
                <tbody>{p.rows.map((r) => <tr><td class="name"><a href={repoHref(v, r.name)}>{r.name}</a></td><td><Usage bytes={r.bytes} limit={r.limit} /></td></tr>)}</tbody>
              </table>
            </div>
          )}
        <Pager page={p.page} pageSize={p.pageSize} total={p.repositories} link={(page) => `${href(v, '/storage')}${page > 1 ? `?page=${page}` : ''}`} />
      </div>
    </Layout>
  )
}
