/** @module What a delete will remove, shown before it is done (a manifest's tags and referrers first). */
import type { Descriptor } from '../../oci/manifest.js'
import { shortDigest } from '../format.js'
import { Csrf, Layout, manifestHref, repoHref, type View } from './layout.js'
import { artifactLabel } from './repository.js'

export interface ConfirmProps {
  v: View
  name: string
  tag?: string
  digest: string
  /** For a manifest: the tags that go with it, and the referrers that point at it. */
  tags: string[]
  referrers: Descriptor[]
}

export function ConfirmDeletePage(p: ConfirmProps) {
  const { v, name } = p
  const what = p.tag ? `tag ${p.tag}` : `manifest ${shortDigest(p.digest)}`
  return (
    <Layout v={v} title={`Delete ${what}`}>
      <div class="crumbs"><a href={repoHref(v, name)}>{name}</a> /</div>
      <h1>Delete {what}?</h1>
      <div class="panel pad">
        {p.tag
          ? <p>The tag <strong>{p.tag}</strong> will no longer point to <a class="mono" href={manifestHref(v, name, p.digest)}>{shortDigest(p.digest)}</a>. The manifest stays, reachable by its digest and by other tags, until it is deleted or garbage-collected.</p>
          : (
            <>
              <p>The manifest <span class="mono">{p.digest}</span> will be removed from <strong>{name}</strong>; pulls by its digest will fail.</p>
              {p.referrers.length > 0 && (
                <>
                  <p><strong>{p.referrers.length} {p.referrers.length === 1 ? 'referrer points' : 'referrers point'} to it</strong> and will be left without their subject:</p>
                  <ul>{p.referrers.map((r) => <li><span class="badge ok">{artifactLabel(r.artifactType)}</span> <a class="mono" href={manifestHref(v, name, r.digest)}>{shortDigest(r.digest)}</a> <span class="muted mono">{r.artifactType ?? r.mediaType}</span></li>)}</ul>
                </>
              )}
              {p.tags.length > 0
                ? <p>These tags point to it and are deleted with it: {p.tags.map((t) => <span class="badge gray">{t}</span>)}</p>
                : <p class="muted">No tag points to it.</p>}
            </>
          )}
        <form method="post" action={`${repoHref(v, name)}/-/delete`} class="toolbar">
          <Csrf v={v} />
          {p.tag ? <input type="hidden" name="tag" value={p.tag} /> : <input type="hidden" name="digest" value={p.digest} />}
          <button class="danger solid" type="submit">Delete {what}</button>
          <a class="button" href={p.tag ? repoHref(v, name) : manifestHref(v, name, p.digest)}>Cancel</a>
        </form>
      </div>
    </Layout>
  )
}
