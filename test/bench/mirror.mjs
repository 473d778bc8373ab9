#!/usr/bin/env node
// The pull-through cache's benchmark (`npm run bench:mirror`): issue 20's two ratios, measured in one run.
//
//   warm  = a pull through the cache of an image it holds  vs  a pull of the same image pushed to enlil
//   cold  = a pull through the cache of an image it lacks  vs  a pull straight from the upstream
//
// The upstream is Debian's docker-registry (distribution 2.8.2), started here without auth on a fresh
// folder; enlil mirrors it under the prefix `hub`. Each repetition pushes a new image of random layers
// (by default 5 layers, 168 MiB in all) to the upstream, so every cold pull is really cold. A pull is
// what docker does: GET /v2/, HEAD the manifest by tag, GET it by digest, then the config and layers,
// 3 at a time (dockerd's max-concurrent-downloads), each digest verified while it streams. The two
// pulls of a pair run back to back, in alternating order from one repetition to the next; the table
// gives medians. Node built-ins only. It asserts nothing: these machines are shared and noisy, the
// ratios within one run are what it reports.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';
const USAGE = `usage: npm run bench:mirror -- [options]     (or: node test/bench/mirror.mjs [options])

  --layers 64,48,32,16,8   layer sizes in MiB (default: 168 MiB in 5 layers)
  --repeat N               repetitions, each with a new image (default 3); medians are reported
  --concurrency N          blobs fetched at once by the client (default 3, as dockerd)
  --workers N              enlil serve --workers N (default 1)
  --upstream-rate MB/s     the upstream behind a link of this speed (both pulls go through it), as a
                           registry across a network is; default: loopback, no limit
  --json FILE              also write the figures as JSON
  --keep                   keep the temporary folders (logs, stores)`;

function parseArgs(argv) {
  const o = { layers: [64, 48, 32, 16, 8], repeat: 3, concurrency: 3, workers: 1, json: undefined, keep: false, upstreamRate: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    const count = (v) => {
      if (!/^[1-9]\d*$/.test(v)) fail(`${a}: expected a whole number above 0, got ${v}`);
      return Number(v);
    };
    if (a === '--layers') o.layers = value().split(',').map(count);
    else if (a === '--repeat') o.repeat = count(value());
    else if (a === '--concurrency') o.concurrency = count(value());
    else if (a === '--workers') o.workers = count(value());
    else if (a === '--upstream-rate') o.upstreamRate = count(value());
    else if (a === '--json') o.json = value();
    else if (a === '--keep') o.keep = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else fail(`unknown option ${a}`);
  }
  return o;
}

function fail(message) {
  console.error(`bench:mirror: ${message}\n${USAGE}`);
  process.exit(2);
}

const OPT = parseArgs(process.argv.slice(2));
const log = (m) => process.stderr.write(`${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function freePort() {
  return new Promise((ok, ko) => {
    const s = net.createServer();
    s.on('error', ko);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** One request; the body is streamed into `sink(chunk)` when given, else collected. */
function exchange(agent, method, url, { headers = {}, body, sink } = {}) {
  return new Promise((ok, ko) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        if (sink) sink(c);
        else chunks.push(c);
      });
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), size }));
      res.on('error', ko);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${url}: no answer within 120 s`)));
    req.on('error', ko);
    req.end(body);
  });
}

// --- the registries ---

const CHILDREN = [];
const DIRS = [];

function cleanup() {
  for (const c of CHILDREN) if (c.exitCode === null) c.kill('SIGKILL');
  if (!OPT.keep) for (const d of DIRS) fs.rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function findDockerRegistry() {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', 'docker-registry');
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

async function waitReady(name, url, child, logFile) {
  const agent = new http.Agent();
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited before it was ready:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    const up = await exchange(agent, 'GET', `${url}/v2/`).then((r) => r.status === 200, () => false);
    if (up) return agent.destroy();
    await sleep(100);
  }
  throw new Error(`${name} did not answer within 30 s:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
}

/** `launch(port)` gives the command's arguments and environment. */
async function start(name, command, launch, dir) {
  const port = await freePort();
  const logFile = path.join(dir, `${name}.log`);
  const out = fs.openSync(logFile, 'a');
  const { args, env } = launch(port);
  const child = spawn(command, args, { cwd: dir, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  CHILDREN.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(name, url, child, logFile);
  return { name, url, pid: child.pid };
}

/** The environment without the shell's registry settings. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && !k.startsWith('ENLIL_')));

function startUpstream(bin, dir) {
  const config = path.join(dir, 'upstream.yml');
  return start('upstream', bin, (port) => {
    fs.writeFileSync(config, [
      'version: 0.1',
      'log: { level: warn, accesslog: { disabled: true } }',
      `storage: { filesystem: { rootdirectory: ${path.join(dir, 'upstream')} }, cache: { blobdescriptor: inmemory }, maintenance: { uploadpurging: { enabled: false } } }`,
      `http: { addr: "127.0.0.1:${port}", secret: ${crypto.randomBytes(8).toString('hex')} }`,
      'health: { storagedriver: { enabled: false } }',
      '',
    ].join('\n'));
    const env = cleanEnv();
    delete env.AWS_CA_BUNDLE;
    return { args: ['serve', config], env };
  }, dir);
}

function startEnlil(upstream, dir) {
  const config = path.join(dir, 'enlil.yml');
  // The upstream as a user would configure Docker Hub: a prefix, and docker's registry-mirrors path.
  fs.writeFileSync(config, `mirror:\n  upstreams:\n    - { prefix: hub, url: "${upstream.url}", registrymirror: true }\nmetrics: { public: true }\n`);
  return start('enlil', process.execPath, (port) => ({
    args: [path.join(REPO_ROOT, 'dist/main.js'), 'serve', config, '--workers', String(OPT.workers)],
    env: {
      ...cleanEnv(),
      REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: path.join(dir, 'enlil'),
      REGISTRY_LOG_LEVEL: 'warn',
      REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
      REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'false',
    },
  }), dir);
}

/**
 * A link of `mbps` MB/s in front of the upstream: every response body shares one byte budget, as the
 * clients of a remote registry share the way to it. Requests pass as they are.
 */
function startLink(target, mbps) {
  const to = new URL(target);
  let free = 0;
  const server = http.createServer((req, res) => {
    const up = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.on('data', (chunk) => {
        const now = performance.now();
        free = Math.max(now, free) + (chunk.length / (mbps * MiB)) * 1000;
        const ahead = free - now;
        // Sleeps in steps of tens of ms (timers are coarse); a socket that is full waits for its drain.
        if (!res.write(chunk)) {
          answer.pause();
          res.once('drain', () => (ahead > 20 ? setTimeout(() => answer.resume(), ahead) : answer.resume()));
        } else if (ahead > 20) {
          answer.pause();
          setTimeout(() => answer.resume(), ahead);
        }
      });
      answer.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ name: 'link', url: `http://127.0.0.1:${server.address().port}` })));
}

// --- pushing and pulling as clients do ---

async function pushBlob(agent, base, repo, bytes, digest) {
  const post = await exchange(agent, 'POST', `${base}/v2/${repo}/blobs/uploads/`, { headers: { 'Content-Length': '0' } });
  if (post.status !== 202) throw new Error(`POST upload to ${base}/${repo}: ${post.status} ${post.body}`);
  const loc = new URL(post.headers.location, base);
  loc.searchParams.set('digest', digest);
  const put = await exchange(agent, 'PUT', loc, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) }, body: bytes });
  if (put.status !== 201) throw new Error(`PUT blob to ${base}/${repo}: ${put.status} ${put.body}`);
}

/** A fresh image of random (incompressible) layers: its blobs and manifest. */
function makeImage(label) {
  const layers = OPT.layers.map((mib) => {
    const bytes = crypto.randomBytes(mib * MiB);
    return { bytes, digest: sha256(bytes) };
  });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: { Labels: { bench: label } } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.bytes.length })),
  }));
  return { blobs: [{ bytes: config, digest: sha256(config) }, ...layers], manifest };
}

async function pushImage(base, repo, image) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    await Promise.all(image.blobs.map((b) => pushBlob(agent, base, repo, b.bytes, b.digest)));
    const put = await exchange(agent, 'PUT', `${base}/v2/${repo}/manifests/1`, { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: image.manifest });
    if (put.status !== 201) throw new Error(`PUT manifest to ${base}/${repo}: ${put.status} ${put.body}`);
  } finally {
    agent.destroy();
  }
}

/** A pull as dockerd makes it; returns the seconds and bytes, after checking every digest. */
async function pull(base, repo) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: OPT.concurrency + 1 });
  const t0 = performance.now();
  try {
    const ping = await exchange(agent, 'GET', `${base}/v2/`);
    if (ping.status !== 200) throw new Error(`GET ${base}/v2/: ${ping.status}`);
    const head = await exchange(agent, 'HEAD', `${base}/v2/${repo}/manifests/1`, { headers: { Accept: ACCEPT } });
    const digest = head.headers['docker-content-digest'];
    if (head.status !== 200 || !digest) throw new Error(`HEAD ${base}/v2/${repo}/manifests/1: ${head.status}`);
    const got = await exchange(agent, 'GET', `${base}/v2/${repo}/manifests/${digest}`, { headers: { Accept: ACCEPT } });
    if (got.status !== 200 || sha256(got.body) !== digest) throw new Error(`GET manifest ${repo}@${digest}: ${got.status}`);
    const m = JSON.parse(got.body.toString());
    const queue = [m.config, ...m.layers];
    let bytes = got.body.length;
    const worker = async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const hash = crypto.createHash('sha256');
        const res = await exchange(agent, 'GET', `${base}/v2/${repo}/blobs/${d.digest}`, { sink: (c) => hash.update(c) });
        const actual = `sha256:${hash.digest('hex')}`;
        if (res.status !== 200 || res.size !== d.size || actual !== d.digest) throw new Error(`GET blob ${repo}@${d.digest}: ${res.status}, ${res.size} bytes of ${actual}`);
        bytes += res.size;
      }
    };
    await Promise.all(Array.from({ length: OPT.concurrency }, worker));
    return { seconds: (performance.now() - t0) / 1000, bytes };
  } finally {
    agent.destroy();
  }
}

async function upstreamRequests(enlil) {
  const text = (await exchange(undefined, 'GET', `${enlil.url}/metrics`)).body.toString();
  let n = 0;
  for (const m of text.matchAll(/^enlil_mirror_upstream_requests_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

// --- the run ---

const mbps = (r) => r.bytes / MiB / r.seconds;

async function main() {
  const bin = findDockerRegistry();
  if (!bin) {
    console.error('bench:mirror: Debian\'s docker-registry is the upstream: apt-get install docker-registry');
    process.exit(2);
  }
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist/main.js'))) fail('dist/main.js is missing: npm run build (npm run bench:mirror does)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enlil-bench-mirror-'));
  DIRS.push(dir);
  const registry = await startUpstream(bin, dir);
  // Pushes go straight in; pulls, direct or through enlil, over the link when there is one.
  const upstream = OPT.upstreamRate ? await startLink(registry.url, OPT.upstreamRate) : registry;
  const enlil = await startEnlil(upstream, dir);
  const total = OPT.layers.reduce((a, b) => a + b, 0);
  log(`upstream ${registry.url} (docker-registry${OPT.upstreamRate ? `, behind a ${OPT.upstreamRate} MB/s link at ${upstream.url}` : ''}), enlil ${enlil.url} (${OPT.workers} worker${OPT.workers > 1 ? 's' : ''}); image: ${OPT.layers.length} layers, ${total} MiB; ${OPT.repeat} repetitions`);

  const rows = [];
  for (let i = 0; i < OPT.repeat; i++) {
    const image = makeImage(`rep-${i}`);
    const repo = `bench/img-${i}`;
    await pushImage(registry.url, repo, image);
    // Cold: the image is new to enlil. The order of the pair alternates between repetitions.
    const pair = async (first, second) => {
      if (i % 2 === 0) return [await first(), await second()];
      const b = await second();
      return [await first(), b];
    };
    const [direct, cold] = await pair(() => pull(upstream.url, repo), () => pull(enlil.url, `hub/${repo}`));
    // The cold pull's last bytes reach the store just after the client has them.
    await sleep(500);
    await pushImage(enlil.url, `local/img-${i}`, image);
    const before = await upstreamRequests(enlil);
    const [local, warm] = await pair(() => pull(enlil.url, `local/img-${i}`), () => pull(enlil.url, `hub/${repo}`));
    const warmUpstream = (await upstreamRequests(enlil)) - before;
    const row = { direct: mbps(direct), cold: mbps(cold), local: mbps(local), warm: mbps(warm), warmUpstreamRequests: warmUpstream };
    rows.push(row);
    log(`#${i + 1}: upstream ${row.direct.toFixed(0)} MB/s, cold through enlil ${row.cold.toFixed(0)} MB/s (${(row.cold / row.direct).toFixed(2)}x); local ${row.local.toFixed(0)} MB/s, warm through enlil ${row.warm.toFixed(0)} MB/s (${(row.warm / row.local).toFixed(2)}x; upstream requests during it: ${warmUpstream})`);
  }
  const med = (k) => median(rows.map((r) => r[k]));
  const coldRatio = median(rows.map((r) => r.cold / r.direct));
  const warmRatio = median(rows.map((r) => r.warm / r.local));
  const result = {
    image: { layers: OPT.layers.map((m) => m * MiB), totalMiB: total },
    repeat: OPT.repeat, concurrency: OPT.concurrency, workers: OPT.workers, upstreamRate: OPT.upstreamRate ?? null, node: process.version, cpus: os.cpus().length,
    mb_s: { upstream: med('direct'), cold: med('cold'), local: med('local'), warm: med('warm') },
    ratios: { cold: coldRatio, warm: warmRatio }, targets: { cold: 0.8, warm: 0.95 }, rows,
  };
  console.log(`\n| pull (${total} MiB, ${OPT.layers.length} layers, ${OPT.concurrency} at a time; median of ${OPT.repeat}) | MB/s | ratio | target |`);
  console.log('|---|---|---|---|');
  console.log(`| straight from the upstream (docker-registry${OPT.upstreamRate ? `, ${OPT.upstreamRate} MB/s link` : ', loopback'}) | ${med('direct').toFixed(0)} | | |`);
  console.log(`| cold, through enlil's cache | ${med('cold').toFixed(0)} | ${coldRatio.toFixed(2)}x the upstream | 0.8x |`);
  console.log(`| pushed to enlil | ${med('local').toFixed(0)} | | |`);
  console.log(`| warm, through enlil's cache | ${med('warm').toFixed(0)} | ${warmRatio.toFixed(2)}x the pushed copy | 0.95x |`);
  if (OPT.json) fs.writeFileSync(OPT.json, `${JSON.stringify(result, null, 2)}\n`);
}

main().then(() => process.exit(0), (err) => {
  console.error(`bench:mirror: ${err.stack ?? err}`);
  process.exit(1);
});
