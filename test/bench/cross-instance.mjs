#!/usr/bin/env node
// Cross-instance chunked push on a throwaway Ceph RGW: one blob pushed as POST + N PATCHes + PUT,
// (a) all on one enlil process, (b) on three processes with every request on another than the
// previous one and forwarding on (cluster.secret), (c) the same without forwarding (each process
// finishes alone: the digest is read back from the bucket). A counting proxy between enlil and RGW
// sums the bytes of GETs of upload data (`_uploads/<id>/data` and its tail): what was read back.
//
//   node test/bench/cross-instance.mjs [--chunk-mib 100] [--chunks 10] [--repeat 1] [--only single,rotate,rotate-off]
//
// Needs the build (npx tsc -p tsconfig.json) and Ceph (see rgw.mjs). Prints one line per run and a summary.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBucket, startRgw, stopRgwSync, REGION } from './rgw.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const CHUNK = Number(arg('chunk-mib', '100')) * 1024 * 1024;
const CHUNKS = Number(arg('chunks', '10'));
const REPEAT = Number(arg('repeat', '1'));
const ONLY = arg('only', 'single,rotate,rotate-off').split(',');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** A pass-through proxy to RGW that counts response bytes of GETs on upload keys. */
async function countingProxy(target) {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const counts = { readBack: 0, gets: 0 };
  const server = http.createServer((req, res) => {
    const up = http.request({ hostname: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      // An upload's data and its tail, not its small `data.state` record.
      if (req.method === 'GET' && /\/_uploads\/[^/]+\/data(\.tail[^/?]*)?(\?|$)/.test(req.url)) {
        counts.gets++;
        r.on('data', (c) => { counts.readBack += c.length; });
      }
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, close: () => new Promise((ok) => server.close(ok)) };
}

async function startEnlil(env) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/main.js'), 'serve'], {
    env: { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, REGISTRY_LOG_LEVEL: 'warn', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true', ENLIL_WORKERS: '1', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/v2/`)).ok) return { url, child };
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('enlil did not start');
}

function send(url, method, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'Content-Length': body ? body.length : 0 } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function push(bases, chunk, repo) {
  const digest = createHash('sha256');
  for (let i = 0; i < CHUNKS; i++) digest.update(chunk);
  const hex = digest.digest('hex');
  let n = 0;
  const next = () => bases[n++ % bases.length];
  const started = process.hrtime.bigint();
  let res = await send(`${next()}/v2/${repo}/blobs/uploads/`, 'POST');
  if (res.status !== 202) throw new Error(`POST ${res.status} ${res.text}`);
  let location = new URL(res.headers.location);
  for (let i = 0; i < CHUNKS; i++) {
    res = await send(`${next()}${location.pathname}${location.search}`, 'PATCH', chunk, { 'Content-Range': `${i * CHUNK}-${(i + 1) * CHUNK - 1}`, 'Content-Type': 'application/octet-stream' });
    if (res.status !== 202) throw new Error(`PATCH ${res.status} ${res.text}`);
    location = new URL(res.headers.location);
  }
  const q = location.search ? `${location.search}&` : '?';
  res = await send(`${next()}${location.pathname}${q}digest=sha256:${hex}`, 'PUT');
  if (res.status !== 201) throw new Error(`PUT ${res.status} ${res.text}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main() {
  const rgw = await startRgw({ script: path.join(ROOT, 'test/support/ceph-rgw.sh'), s3Port: await freePort() });
  const proxy = await countingProxy(rgw.endpoint);
  const chunk = randomBytes(CHUNK);
  const results = {};
  try {
    for (let r = 0; r < REPEAT; r++) {
      for (const scenario of ONLY) {
        const bucket = `xi-${scenario}-${r}-${randomBytes(3).toString('hex')}`;
        await createBucket(rgw, bucket);
        const env = {
          REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: bucket, REGISTRY_STORAGE_S3_REGION: REGION,
          REGISTRY_STORAGE_S3_REGIONENDPOINT: proxy.url, REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
          REGISTRY_STORAGE_S3_ACCESSKEY: rgw.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: rgw.secretKey,
          ...(scenario === 'rotate' ? { ENLIL_CLUSTER_SECRET: randomBytes(32).toString('hex') } : {}),
        };
        const nodes = await Promise.all(Array.from({ length: scenario === 'single' ? 1 : 3 }, () => startEnlil(env)));
        const before = proxy.counts.readBack;
        try {
          const seconds = await push(nodes.map((n) => n.url), chunk, `bench/${scenario}`);
          const readBack = proxy.counts.readBack - before;
          const mbs = (CHUNK * CHUNKS) / seconds / 1e6;
          (results[scenario] ??= []).push({ seconds, mbs, readBack });
          console.log(`${scenario.padEnd(11)} run ${r + 1}: ${seconds.toFixed(2)} s, ${mbs.toFixed(1)} MB/s, ${readBack} bytes read back from the bucket`);
        } finally {
          for (const n of nodes) n.child.kill('SIGKILL');
        }
      }
    }
  } finally {
    await proxy.close();
    stopRgwSync(rgw);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const single = results.single && median(results.single.map((x) => x.seconds));
  for (const [scenario, runs] of Object.entries(results)) {
    const s = median(runs.map((x) => x.seconds));
    console.log(`${scenario.padEnd(11)} median ${s.toFixed(2)} s${single ? `, ${(s / single).toFixed(2)}x the single-process time` : ''}, read back ${runs.map((x) => x.readBack).join('/')} bytes`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
