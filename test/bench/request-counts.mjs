// S3 requests per registry operation: a counting proxy in front of the S3 server, and a fixed
// sequence of registry operations measured through it. Used by `bench.mjs --count-requests` (enlil
// and distribution on the same RGW) and by test/s3-request-counts.test.ts (upper bounds for enlil).
// Plain Node ESM, built-in modules only.

import http from 'node:http';
import crypto from 'node:crypto';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'expect', 'proxy-connection', 'upgrade']);

/**
 * The S3 API call a request is, from its method, query and headers (path-style addressing: the
 * first path segment is the bucket). The SDK also says it in `x-id`; distribution's Go SDK doesn't.
 */
export function s3Operation(method, url, headers) {
  const u = new URL(url, 'http://proxy');
  const q = u.searchParams;
  const hasKey = u.pathname.replace(/^\/+/, '').includes('/');
  const copy = headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'HEAD': return hasKey ? 'HeadObject' : 'HeadBucket';
    case 'GET':
      if (q.has('uploads')) return 'ListMultipartUploads';
      if (q.has('uploadId')) return 'ListParts';
      if (q.get('list-type') === '2') return 'ListObjectsV2';
      return hasKey ? 'GetObject' : 'ListObjects';
    case 'PUT':
      if (q.has('partNumber') && q.has('uploadId')) return copy ? 'UploadPartCopy' : 'UploadPart';
      return copy ? 'CopyObject' : hasKey ? 'PutObject' : 'CreateBucket';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      if (q.has('delete')) return 'DeleteObjects';
      return 'PostObject';
    case 'DELETE': return q.has('uploadId') ? 'AbortMultipartUpload' : hasKey ? 'DeleteObject' : 'DeleteBucket';
    default: return method;
  }
}

/**
 * enlil's requests made on a clock, not per registry operation: the listing of GC runs (at most
 * once a second, gc-protocol.ts) and the read-only marker (at most once in 3 s). Marked so: they
 * land on whatever operation runs at the time.
 */
const PERIODIC = [[/\/_enlil\/gc\/runs(\/|$)/, 'GC runs'], [/\/_enlil\/readonly$/, 'read-only marker']];

/** The S3 call of a request, with ` [what]` added to enlil's periodic ones. */
export function countedOperation(method, url, headers) {
  const op = s3Operation(method, url, headers);
  const u = new URL(url, 'http://proxy');
  const keys = [decodeURIComponent(u.pathname), u.searchParams.get('prefix') ?? ''];
  const periodic = PERIODIC.find(([re]) => keys.some((k) => re.test(k)));
  return periodic ? `${op} [${periodic[1]}]` : op;
}

/**
 * A proxy that forwards every request unchanged (the Host header too, so SigV4 signatures hold) and
 * counts them by S3 operation. Resolves to { url, counts: Map op → n, snapshot(), close() }.
 */
export async function startCountingProxy(target) {
  const to = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const counts = new Map();
  const server = http.createServer((req, res) => {
    const op = countedOperation(req.method ?? 'GET', req.url ?? '/', req.headers);
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    const upstream = http.request({
      protocol: to.protocol, hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers, agent,
    }, (up) => {
      const out = {};
      for (const [name, value] of Object.entries(up.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    snapshot: () => new Map(counts),
    async close() {
      server.closeAllConnections();
      await new Promise((ok) => server.close(() => ok()));
      agent.destroy();
    },
  };
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json`;
const sha256 = (buf) => `sha256:${crypto.createHash('sha256').update(buf).digest('hex')}`;
const blobOf = (buf) => ({ buf, digest: sha256(buf), size: buf.length });

/** The registry operations measured, in the order they run (also the rows of the table). */
export const OPERATIONS = [
  'manifest GET by tag', 'manifest HEAD by tag', 'manifest GET by digest', 'manifest HEAD by digest',
  'blob HEAD', 'blob GET', 'mount', 'small monolithic push', 'chunked push (POST+PATCH+PUT)', 'manifest PUT', 'tags list',
];

async function call(method, url, { headers = {}, body, expect }) {
  const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(60_000) });
  await res.arrayBuffer();
  if (!expect.includes(res.status)) throw new Error(`${method} ${url}: ${res.status}, expected ${expect.join(' or ')}`);
  return res;
}

/**
 * Runs each operation `repeat` times in a row against a registry whose store requests `proxy`
 * counts, after one untimed run of each (warm caches), and resolves to
 * { [operation]: { requests, periodic, calls: { [S3 call]: n } } }, means per operation:
 * `requests` those the operation sent, `periodic` enlil's clocked ones that fell into it.
 * Blob GETs are not followed to the store (a redirect's presigned GET is the client's, not the
 * registry's). `prefix` names the repositories (a fresh one per run); `operations`, a subset of OPERATIONS.
 */
export async function measureRequestCounts({ url, proxy, repeat = 10, prefix = `counts/${Date.now().toString(36)}`, operations = OPERATIONS }) {
  const repo = `${prefix}/app`;
  const v2 = (r, p) => `${url}/v2/${r}/${p}`;
  const uploadUrl = (res) => new URL(res.headers.get('location'), url).href;
  const withDigest = (loc, digest) => {
    const u = new URL(loc);
    u.searchParams.set('digest', digest);
    return u.href;
  };
  const pushMono = async (r, blob) => {
    const post = await call('POST', v2(r, 'blobs/uploads/'), { headers: { 'content-length': '0' }, expect: [202] });
    await call('PUT', withDigest(uploadUrl(post), blob.digest), {
      headers: { 'content-type': 'application/octet-stream' }, body: blob.buf, expect: [201],
    });
  };
  const pushChunked = async (r, blob) => {
    const post = await call('POST', v2(r, 'blobs/uploads/'), { headers: { 'content-length': '0' }, expect: [202] });
    const patch = await call('PATCH', uploadUrl(post), { headers: { 'content-type': 'application/octet-stream' }, body: blob.buf, expect: [202] });
    await call('PUT', withDigest(uploadUrl(patch), blob.digest), { expect: [201] });
  };
  const config = blobOf(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: prefix })));
  const layer = blobOf(crypto.randomBytes(4096));
  const manifestOf = (label) => blobOf(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
    annotations: { 'enlil.counts': label },
  })));
  const putManifest = (r, ref, m) => call('PUT', v2(r, `manifests/${ref}`), { headers: { 'content-type': OCI_MANIFEST }, body: m.buf, expect: [201] });
  // docker's re-push: HEAD each blob (200: skipped), then the manifest.
  const headBlobs = () => Promise.all([config, layer].map((b) => call('HEAD', v2(repo, `blobs/${b.digest}`), { expect: [200, 307] })));

  await pushMono(repo, config);
  await pushMono(repo, layer);
  const main = manifestOf('main');
  await putManifest(repo, 'v1', main);

  let n = 0;
  const fresh = () => `${prefix}-${n++}`;
  /** Each operation: an untimed `before` (not counted), then the counted `run`. */
  const ops = {
    'manifest GET by tag': { run: () => call('GET', v2(repo, 'manifests/v1'), { headers: { accept: ACCEPT }, expect: [200] }) },
    'manifest HEAD by tag': { run: () => call('HEAD', v2(repo, 'manifests/v1'), { headers: { accept: ACCEPT }, expect: [200] }) },
    'manifest GET by digest': { run: () => call('GET', v2(repo, `manifests/${main.digest}`), { headers: { accept: ACCEPT }, expect: [200] }) },
    'manifest HEAD by digest': { run: () => call('HEAD', v2(repo, `manifests/${main.digest}`), { headers: { accept: ACCEPT }, expect: [200] }) },
    'blob HEAD': { run: () => call('HEAD', v2(repo, `blobs/${layer.digest}`), { expect: [200, 307] }) },
    'blob GET': { run: () => call('GET', v2(repo, `blobs/${layer.digest}`), { expect: [200, 307] }) },
    mount: { before: () => call('HEAD', v2(repo, `blobs/${layer.digest}`), { expect: [200, 307] }), run: () => call('POST', v2(`${fresh()}/app`, `blobs/uploads/?mount=${layer.digest}&from=${repo}`), { headers: { 'content-length': '0' }, expect: [201] }) },
    'small monolithic push': { run: () => pushMono(repo, blobOf(crypto.randomBytes(4096))) },
    'chunked push (POST+PATCH+PUT)': { run: () => pushChunked(repo, blobOf(crypto.randomBytes(4096))) },
    'manifest PUT': { before: headBlobs, run: () => putManifest(repo, `t${n++}`, manifestOf(fresh())) },
    'tags list': { run: () => call('GET', v2(repo, 'tags/list'), { expect: [200] }) },
  };

  const results = {};
  for (const name of operations) {
    const op = ops[name];
    await op.before?.();
    await op.run(); // warm
    const calls = {};
    let requests = 0;
    let periodic = 0;
    for (let i = 0; i < repeat; i++) {
      await op.before?.();
      const before = proxy.snapshot();
      await op.run();
      for (const [call, count] of proxy.counts) {
        const d = count - (before.get(call) ?? 0);
        if (d === 0) continue;
        calls[call] = (calls[call] ?? 0) + d;
        if (call.includes('[')) periodic += d;
        else requests += d;
      }
    }
    for (const call of Object.keys(calls)) calls[call] = Math.round((calls[call] / repeat) * 10) / 10;
    results[name] = { requests: Math.round((requests / repeat) * 10) / 10, periodic: Math.round((periodic / repeat) * 10) / 10, calls };
  }
  return results;
}

/** The table: one row per operation, a column per registry, with the S3 calls behind each count. */
export function renderRequestCounts(byTarget) {
  const names = Object.keys(byTarget);
  const callsOf = (r) => Object.entries(r?.calls ?? {}).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ') || '-';
  const rows = [['registry operation', ...names.map((t) => `${t} requests`), ...names.map((t) => `${t}: S3 calls`)]];
  for (const op of OPERATIONS) {
    const count = (r) => (r ? `${r.requests}${r.periodic ? ` (+${r.periodic})` : ''}` : '?');
    rows.push([op, ...names.map((t) => count(byTarget[t][op])), ...names.map((t) => callsOf(byTarget[t][op]))]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
