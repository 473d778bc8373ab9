/**
 * @module The storage layout: the only file that knows where things live.
 *
 * Compatible with distribution 2.x/3.x, so a folder or bucket that `registry:2` filled is served as is:
 *
 * ```
 * <root>/docker/registry/v2/
 *   blobs/<alg>/<first 2 hex>/<hex>/data                        the bytes, stored once (dedup)
 *   repositories/<name>/
 *     _layers/<alg>/<hex>/link                                  "alg:hex": blob is visible in this repository
 *     _manifests/revisions/<alg>/<hex>/link                     manifest is in this repository (bytes in blobs/)
 *     _manifests/tags/<tag>/current/link                        the digest the tag points to
 *     _manifests/tags/<tag>/index/<alg>/<hex>/link              distribution's history of the tag: never read (by
 *                                                               distribution either), so enlil doesn't write it; GC
 *                                                               removes the entries of a manifest it deletes
 *     _uploads/<uuid>/startedat                                 upload session exists (RFC 3339 time)
 *     _uploads/<uuid>/data                                      the bytes received so far
 *     _uploads/<uuid>/writer-<offset>-<gen>                     enlil's: a request writing from <offset> holds the
 *                                                               session (upload-writers.ts)
 *     _referrers/<alg>/<subject hex>/<alg>-<hex>                enlil's: descriptor JSON of a manifest whose
 *                                                               subject is <subject>; GET referrers lists one folder
 *   _enlil/readonly                                             enlil's: present while `enlil readonly on` holds
 *   _enlil/gc/runs/<run>                                        enlil's: a GC run and its lease (gc-protocol.ts)
 *   _enlil/gc/<run>/keep/<alg>-<hex>                            a push used the blob while the run was active
 *   _enlil/gc/<run>/batches/<n>                                 JSON list of digests GC means to delete (written before
 *                                                               it reads keep/)
 *   _enlil/gc/<run>/batches/<n>.decided                         JSON list of the batch's digests GC keeps (a push used them)
 *   _enlil/gc/<run>/batches/<n>.done                            the deletions of batch <n> are finished
 *   _enlil/gc/last-run.json                                     the summary of the last GC run
 *   _enlil/instances/<id>                                       enlil's: a live process and its internal address (lease)
 *   _enlil/readyz                                               enlil's: rewritten by readiness checks (is the store writable?)
 *   _enlil/mirror/leases/<key>/<generation>                     enlil's: who fetches a blob or manifest from an upstream
 *                                                               (mirror/leases.ts), created once, renewed while it runs
 *   _enlil/mirror/fetching/<id>                                 enlil's: a blob being fetched, before it is verified
 *   _enlil/mirror/repositories/<name>/_pulled                   enlil's: a mirrored repository; its time is the last pull
 *   _enlil/catalog/<name, "/" written ".~">                     enlil's: the catalog index, one empty object per repository
 *                                                               (catalog-index.ts); flat, in the names' order
 *   _enlil/catalog-built                                        enlil's: the index holds every repository of the store
 * ```
 * The root directory prefix is the driver's business (a folder, or a key prefix in the bucket).
 */
import type { Digest } from '../oci/digest.js'

const V2 = 'docker/registry/v2'
export const REPOSITORIES = `${V2}/repositories`
/** Holds `<alg>/<first 2 hex>/<hex>/data`: listed by garbage collection, summed by the total quota. */
export const BLOBS = `${V2}/blobs`

export const paths = {
  readOnlyMarker: `${V2}/_enlil/readonly`,
  gcRuns: `${V2}/_enlil/gc/runs`,
  gcRun: (run: string) => `${V2}/_enlil/gc/runs/${run}`,
  gcRunFolder: (run: string) => `${V2}/_enlil/gc/${run}`,
  gcKeeps: (run: string) => `${V2}/_enlil/gc/${run}/keep`,
  gcKeep: (run: string, key: string) => `${V2}/_enlil/gc/${run}/keep/${key}`,
  gcBatches: (run: string) => `${V2}/_enlil/gc/${run}/batches`,
  gcBatch: (run: string, batch: string) => `${V2}/_enlil/gc/${run}/batches/${batch}`,
  gcBatchDone: (run: string, batch: string) => `${V2}/_enlil/gc/${run}/batches/${batch}.done`,
  gcBatchDecided: (run: string, batch: string) => `${V2}/_enlil/gc/${run}/batches/${batch}.decided`,
  gcLastRun: `${V2}/_enlil/gc/last-run.json`,
  readinessProbe: `${V2}/_enlil/readyz`,
  instances: `${V2}/_enlil/instances`,
  instance: (id: string) => `${V2}/_enlil/instances/${id}`,
  mirrorLeases: (key: string) => `${V2}/_enlil/mirror/leases/${key}`,
  mirrorLease: (key: string, generation: number) => `${V2}/_enlil/mirror/leases/${key}/${generation}`,
  mirrorFetching: (id: string) => `${V2}/_enlil/mirror/fetching/${id}`,
  mirrorPulled: (name: string) => `${V2}/_enlil/mirror/repositories/${name}/_pulled`,
  catalogIndex: `${V2}/_enlil/catalog`,
  catalogBuilt: `${V2}/_enlil/catalog-built`,
  blob: (d: Digest) => `${V2}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`,
  blobData: (d: Digest) => `${V2}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`,

  repository: (name: string) => `${REPOSITORIES}/${name}`,
  layer: (name: string, d: Digest) => `${REPOSITORIES}/${name}/_layers/${d.algorithm}/${d.hex}`,
  layerLink: (name: string, d: Digest) => `${REPOSITORIES}/${name}/_layers/${d.algorithm}/${d.hex}/link`,
  layers: (name: string) => `${REPOSITORIES}/${name}/_layers`,

  revision: (name: string, d: Digest) => `${REPOSITORIES}/${name}/_manifests/revisions/${d.algorithm}/${d.hex}`,
  revisionLink: (name: string, d: Digest) => `${REPOSITORIES}/${name}/_manifests/revisions/${d.algorithm}/${d.hex}/link`,
  revisions: (name: string) => `${REPOSITORIES}/${name}/_manifests/revisions`,
  tags: (name: string) => `${REPOSITORIES}/${name}/_manifests/tags`,
  tag: (name: string, tag: string) => `${REPOSITORIES}/${name}/_manifests/tags/${tag}`,
  tagCurrentLink: (name: string, tag: string) => `${REPOSITORIES}/${name}/_manifests/tags/${tag}/current/link`,
  tagIndexLink: (name: string, tag: string, d: Digest) =>
    `${REPOSITORIES}/${name}/_manifests/tags/${tag}/index/${d.algorithm}/${d.hex}/link`,

  uploads: (name: string) => `${REPOSITORIES}/${name}/_uploads`,
  upload: (name: string, id: string) => `${REPOSITORIES}/${name}/_uploads/${id}`,
  uploadStartedAt: (name: string, id: string) => `${REPOSITORIES}/${name}/_uploads/${id}/startedat`,
  uploadData: (name: string, id: string) => `${REPOSITORIES}/${name}/_uploads/${id}/data`,
  uploadWriter: (name: string, id: string, offset: number, gen: number) => `${REPOSITORIES}/${name}/_uploads/${id}/writer-${offset}-${gen}`,

  referrersRoot: (name: string) => `${REPOSITORIES}/${name}/_referrers`,
  referrers: (name: string, subject: Digest) => `${REPOSITORIES}/${name}/_referrers/${subject.algorithm}/${subject.hex}`,
  referrer: (name: string, subject: Digest, d: Digest) =>
    `${REPOSITORIES}/${name}/_referrers/${subject.algorithm}/${subject.hex}/${d.algorithm}-${d.hex}`,
} as const

/** Folders inside a repository folder that mark it as a repository (distribution's catalog does the same). */
export const REPOSITORY_MARKERS = new Set(['_layers', '_manifests', '_uploads'])
