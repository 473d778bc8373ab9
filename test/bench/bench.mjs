#!/usr/bin/env node
// enlil's own client-side benchmark. Plain Node ESM; built-in modules only, except the repo's own
// bcryptjs, loaded only with --auth (for enlil's users file).
//
// It starts enlil (node dist/main.js serve) and, when Debian's docker-registry (distribution 2.8.2)
// is installed, that one too, each on 127.0.0.1 with a fresh storage directory (or, with --store s3,
// a fresh bucket on a throwaway Ceph RGW), drives both over HTTP the way docker/containerd do, and
// prints a table with the ratio enlil/distribution. `--url NAME=URL` benches already running
// registries instead. See README.md next to this file.
//
// Exit status: 0 = every request answered as expected, 1 = at least one error, 2 = bad usage or
// no registry could be started/reached.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { setMaxListeners } from 'node:events';
import { spawn, execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AUTH_MODES, ClientAuth, enlilAuthEnv } from './auth.mjs';
import { REGION, compactOsd, createBucket, rgwPids, startRgw, stopRgwSync } from './rgw.mjs';
import { machineInfo, renderMarkdown } from './report.mjs';
import { measureRequestCounts, renderRequestCounts, startCountingProxy } from './request-counts.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCENARIOS = ['push-mono', 'push-chunked', 'push-stream', 'pull-blob', 'pull-range', 'small-concurrent', 'manifests', 'mount'];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const ACCEPT_MANIFESTS = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json`;

const USAGE = `usage: npm run bench -- [options]        (or: node test/bench/bench.mjs [options])

Without --url it starts enlil (node dist/main.js serve) and, if installed, docker-registry
(distribution), each on 127.0.0.1 with a fresh storage dir, and compares them (ratio enlil/dist).

targets
  --url NAME=URL[,pid=PID]  bench a running registry instead (repeatable); the pid (for RSS/CPU) is
                            found from the listening port when not given
  --targets LIST            registries to start: enlil,dist (default: both; dist only if installed)
  --base NAME               the denominator of the ratios (default: dist, else the last target)
  --keep                    keep the temporary storage dirs and logs
  --user U, --password P    credentials for --url targets (Basic, or the realm of a Bearer challenge)
the registries it starts
  --store fs|s3             filesystem (default), or S3: a throwaway Ceph RGW with one fresh bucket per
                            registry, stopped and wiped at the end (needs Debian's ceph packages)
  --s3-redirect on|off      blob GETs answered with a redirect to presigned S3 URLs (on: both
                            registries' default)
  --count-requests          with --store s3: instead of timing, count the S3 requests each registry
                            sends per registry operation (a counting proxy in front of RGW, warm
                            caches, one enlil process) and print them side by side
  --auth none|htpasswd|token  enlil's auth (none); distribution stays without auth as the baseline
  --workers N               enlil serve --workers N (default: one per core, as enlil); RSS is summed over the primary and its workers
scenarios and sizes (defaults, then --quick values)
  --scenarios LIST          ${SCENARIOS.join(',')}
  --repeat N                repetitions; the table shows medians (1)
  --quick                   small sizes, about 20 s for both registries
  --size N                  big blob for push-*/pull-* (256MiB; quick 16MiB)
  --chunk N                 PATCH chunk and Range size (8MiB; quick 4MiB)
  --clients K               small-concurrent clients (32; quick 8)
  --small-count N           small blobs per client (32; quick 8)
  --small-size N            small blob size (4KiB)
  --manifests M             manifests / tags (500; quick 100)
  --page N                  tags/list page size n= (100; quick 25)
  --mounts N                cross-repo mounts (200; quick 40)
  --conc N                  requests in flight for manifests and mount (8)
  --range-conc N            parallel Range GETs in pull-range (4)
  --no-warmup               skip the short untimed warm-up of each registry
  --wait-idle S             before each timed section, wait up to S seconds for the machine to be idle
                            (other work running; waited_idle_s in the JSON)
limits
  --timeout S               idle timeout of one request, seconds (60)
  --scenario-timeout S      hard limit of one timed section, seconds (600; quick 60)
output
  --out FILE                JSON results (default .bench/bench-<timestamp>.json in the repo)
  --ops                     also print p50/p99 per request type
  --markdown                also print the ratio table as Markdown, ready to paste into README.md
  -h, --help
`;

class UsageError extends Error {}

// ------------------------------------------------------------------------------------------------
// command line

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)([kmg]i?b?|b)?$/i.exec(String(s).trim());
  if (!m) throw new UsageError(`bad size ${s}`);
  const unit = (m[2] || '').toLowerCase()[0];
  const mult = unit === 'k' ? KiB : unit === 'm' ? MiB : unit === 'g' ? GiB : 1;
  const n = Math.round(Number(m[1]) * mult);
  if (n < 1) throw new UsageError(`bad size ${s}`);
  return n;
}

function parsePositive(s, name) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} needs a whole number >= 1`);
  return n;
}

function parseUrlSpec(spec) {
  const eq = spec.indexOf('=');
  const schemeAt = spec.indexOf('://');
  let name = null;
  let rest = spec;
  if (eq > 0 && (schemeAt < 0 || eq < schemeAt)) {
    name = spec.slice(0, eq);
    rest = spec.slice(eq + 1);
  }
  const [url, ...attrs] = rest.split(',');
  let pid = null;
  for (const a of attrs) {
    const m = /^pid=(\d+)$/.exec(a);
    if (!m) throw new UsageError(`unknown attribute in --url: ${a}`);
    pid = Number(m[1]);
  }
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`bad URL ${url}`);
  }
  if (u.protocol !== 'http:') throw new UsageError(`only http:// URLs are supported: ${url}`);
  return { name: name || u.host, url: u.origin, pid, started: false };
}

function parseArgs(argv) {
  const o = {
    urls: [], targets: null, base: null, keep: false, scenarios: SCENARIOS.slice(), repeat: 1, quick: false,
    size: 256 * MiB, chunk: 8 * MiB, clients: 32, smallCount: 32, smallSize: 4 * KiB, manifests: 500, page: 100,
    mounts: 200, conc: 8, rangeConc: 4, warmup: true, waitIdle: 0, timeout: 60, scenarioTimeout: 600, out: null, ops: false,
    store: 'fs', s3Redirect: true, countRequests: false, auth: 'none', workers: Math.min(os.availableParallelism(), 64), user: null, password: null, markdown: false,
  };
  const given = new Set();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline = null;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = () => {
      if (inline !== null) return inline;
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    given.add(arg);
    switch (arg) {
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0); break;
      case '--url': o.urls.push(parseUrlSpec(value())); break;
      case '--targets': o.targets = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--base': o.base = value(); break;
      case '--keep': o.keep = true; break;
      case '--scenarios': o.scenarios = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--repeat': o.repeat = parsePositive(value(), arg); break;
      case '--quick': o.quick = true; break;
      case '--size': o.size = parseSize(value()); break;
      case '--chunk': o.chunk = parseSize(value()); break;
      case '--clients': o.clients = parsePositive(value(), arg); break;
      case '--small-count': o.smallCount = parsePositive(value(), arg); break;
      case '--small-size': o.smallSize = parseSize(value()); break;
      case '--manifests': o.manifests = parsePositive(value(), arg); break;
      case '--page': o.page = parsePositive(value(), arg); break;
      case '--mounts': o.mounts = parsePositive(value(), arg); break;
      case '--conc': o.conc = parsePositive(value(), arg); break;
      case '--range-conc': o.rangeConc = parsePositive(value(), arg); break;
      case '--no-warmup': o.warmup = false; break;
      case '--wait-idle': o.waitIdle = parsePositive(value(), arg); break;
      case '--timeout': o.timeout = parsePositive(value(), arg); break;
      case '--scenario-timeout': o.scenarioTimeout = parsePositive(value(), arg); break;
      case '--out': o.out = value(); break;
      case '--ops': o.ops = true; break;
      case '--markdown': o.markdown = true; break;
      case '--store': {
        const v = value();
        if (!['fs', 'filesystem', 's3'].includes(v)) throw new UsageError('--store is fs or s3');
        o.store = v === 's3' ? 's3' : 'fs';
        break;
      }
      case '--s3-redirect': {
        const v = value();
        if (!['on', 'off'].includes(v)) throw new UsageError('--s3-redirect is on or off');
        o.s3Redirect = v === 'on';
        break;
      }
      case '--count-requests': o.countRequests = true; break;
      case '--auth': o.auth = value(); if (!AUTH_MODES.includes(o.auth)) throw new UsageError(`--auth is ${AUTH_MODES.join(', ')}`); break;
      case '--workers': o.workers = parsePositive(value(), arg); break;
      case '--user': o.user = value(); break;
      case '--password': o.password = value(); break;
      default: throw new UsageError(`unknown argument ${argv[i]}`);
    }
  }
  if (o.quick) {
    const quick = { '--size': ['size', 16 * MiB], '--chunk': ['chunk', 4 * MiB], '--clients': ['clients', 8],
      '--small-count': ['smallCount', 8], '--manifests': ['manifests', 100], '--page': ['page', 25],
      '--mounts': ['mounts', 40], '--scenario-timeout': ['scenarioTimeout', 60] };
    for (const [flag, [key, v]] of Object.entries(quick)) if (!given.has(flag)) o[key] = v;
  }
  for (const s of o.scenarios) if (!SCENARIOS.includes(s)) throw new UsageError(`unknown scenario ${s}`);
  if (o.targets) for (const t of o.targets) if (!['enlil', 'dist'].includes(t)) throw new UsageError(`--targets: unknown ${t}`);
  if (o.urls.length && o.targets) throw new UsageError('--url and --targets do not mix');
  if (o.urls.length) {
    for (const f of ['--store', '--s3-redirect', '--auth', '--workers']) if (given.has(f)) throw new UsageError(`${f} applies to the registries the harness starts, not to --url`);
  } else if (given.has('--user') || given.has('--password')) {
    throw new UsageError('--user and --password are for --url targets; --auth makes its own account');
  }
  if (o.workers > 64) throw new UsageError('--workers: at most 64');
  if (given.has('--s3-redirect') && o.store !== 's3') throw new UsageError('--s3-redirect needs --store s3');
  if (o.countRequests) {
    if (o.store !== 's3' || o.urls.length) throw new UsageError('--count-requests needs --store s3 (and the registries the harness starts)');
    if (given.has('--workers') && o.workers !== 1) throw new UsageError('--count-requests counts one enlil process: --workers 1');
    o.workers = 1;
  }
  const names = new Set();
  for (const u of o.urls) {
    if (names.has(u.name)) throw new UsageError(`duplicate target name ${u.name}`);
    names.add(u.name);
  }
  return o;
}

// ------------------------------------------------------------------------------------------------
// small helpers

const sha256 = (buf) => 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(msg + '\n');

function round(x, digits = 1) {
  if (x == null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function median(values) {
  const v = values.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ------------------------------------------------------------------------------------------------
// /proc: peak RSS and CPU of the registry (and any children it has)

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
} catch { /* keep 100 */ }

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return null;
  }
}

function procMem(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key) => Number((new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s) || [])[1] || 0);
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return null;
  }
}

// the pid and its descendants (one pass over /proc)
function processTree(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(entry);
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(entry));
  }
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 1000; i++) out.push(...(children.get(out[i]) || []));
  return out;
}

// CPU seconds used so far by RGW's daemons (--store s3), or null
function s3Cpu() {
  if (!RGW) return null;
  let pids;
  try { pids = rgwPids(RGW); } catch { return null; }
  return pids.reduce((sum, p) => sum + (procStat(p)?.cpu || 0), 0);
}

// busy CPU seconds of the whole machine, to see how much else ran during a section
function hostBusy() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / CLK_TCK;
  } catch {
    return null;
  }
}

// Peak RSS of a registry: the sum over its process tree (the primary and the workers of
// `enlil serve --workers N`) and each process's own peak, so that the figure per worker is known too.
class ProcWatch {
  constructor(pid) {
    this.pids = pid ? processTree(pid) : [];
  }
  start() {
    if (!this.pids.length) return;
    for (const p of this.pids) {
      try { fs.writeFileSync(`/proc/${p}/clear_refs`, '5'); } catch { /* not allowed: rely on sampling */ }
    }
    this.peakOf = new Map(this.pids.map((p) => [p, 0]));
    this.rss0 = this.sampleRss();
    this.peak = this.rss0;
    this.cpu0 = this.cpu();
    this.timer = setInterval(() => { this.peak = Math.max(this.peak, this.sampleRss()); }, 50);
    this.timer.unref();
  }
  sampleRss() {
    let sum = 0;
    for (const p of this.pids) {
      const rss = procMem(p)?.rss || 0;
      if (rss > this.peakOf.get(p)) this.peakOf.set(p, rss);
      sum += rss;
    }
    return sum;
  }
  cpu() {
    let sum = 0;
    for (const p of this.pids) sum += procStat(p)?.cpu || 0;
    return sum;
  }
  stop() {
    if (!this.pids.length) return { rss_peak_mib: null, rss_start_mib: null, rss_worker_peak_mib: null, server_cpu_s: null };
    clearInterval(this.timer);
    const now = this.sampleRss();
    let peak = Math.max(this.peak, now);
    // the kernel's high-water mark (reset at start) catches peaks between two samples
    for (const p of this.pids) this.peakOf.set(p, Math.max(this.peakOf.get(p), procMem(p)?.hwm || 0));
    if (this.pids.length === 1) peak = Math.max(peak, this.peakOf.get(this.pids[0]));
    // with workers, the primary only forks and supervises: "per worker" is the largest child
    const workers = this.pids.length > 1 ? this.pids.slice(1) : this.pids;
    const alive = procStat(this.pids[0]) !== null;
    return {
      rss_start_mib: round(this.rss0 / 1024),
      rss_peak_mib: round(peak / 1024),
      rss_worker_peak_mib: round(Math.max(...workers.map((p) => this.peakOf.get(p))) / 1024),
      processes: this.pids.length,
      server_cpu_s: alive ? round(this.cpu() - this.cpu0, 2) : null,
      server_alive: alive,
    };
  }
}

// find the pid listening on 127.0.0.1:port (for --url targets without pid=)
function pidOfPort(port) {
  const inodes = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10 || c[3] !== '0A') continue; // 0A = LISTEN
      if (parseInt(c[1].split(':')[1], 16) === port) inodes.add(c[9]);
    }
  }
  if (!inodes.size) return null;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${entry}/fd`); } catch { continue; }
    for (const fd of fds.slice(0, 100000)) {
      let link = '';
      try { link = fs.readlinkSync(`/proc/${entry}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return Number(entry);
    }
  }
  return null;
}

// ------------------------------------------------------------------------------------------------
// test data: a big blob generated on the fly (never held in memory), reproducible by range

const BLOCK = MiB;
const NOISE = crypto.randomBytes(BLOCK);

class BigBlob {
  constructor(size, chunk) {
    this.size = size;
    this.chunk = chunk;
    this.salt = crypto.randomBytes(16);
    this.digest = null;
    this.chunkDigests = [];
  }
  // block i: random noise, stamped with the salt and the block number so that every block differs
  block(i) {
    const b = Buffer.allocUnsafe(BLOCK);
    NOISE.copy(b);
    this.salt.copy(b, 0);
    b.writeUInt32BE(i, 16);
    return b;
  }
  *pieces(start, end) {
    let pos = start;
    while (pos < end) {
      const i = Math.floor(pos / BLOCK);
      const off = pos - i * BLOCK;
      const n = Math.min(BLOCK - off, end - pos);
      const b = this.block(i);
      yield off === 0 && n === BLOCK ? b : b.subarray(off, off + n);
      pos += n;
    }
  }
  stream(start = 0, end = this.size) {
    return Readable.from(this.pieces(start, end), { objectMode: false, highWaterMark: 2 * MiB });
  }
  // digests of the whole blob and of every chunk, computed before anything is timed
  prepare() {
    const whole = crypto.createHash('sha256');
    for (let a = 0; a < this.size; a += this.chunk) {
      const part = crypto.createHash('sha256');
      for (const p of this.pieces(a, Math.min(this.size, a + this.chunk))) {
        whole.update(p);
        part.update(p);
      }
      this.chunkDigests.push('sha256:' + part.digest('hex'));
    }
    this.digest = 'sha256:' + whole.digest('hex');
    return this;
  }
}

function smallBlob(size) {
  const buf = crypto.randomBytes(size);
  return { buf, digest: sha256(buf), size };
}

function jsonBlob(obj) {
  const buf = Buffer.from(JSON.stringify(obj));
  return { buf, digest: sha256(buf), size: buf.length };
}

function configBlob(label) {
  return jsonBlob({ architecture: 'amd64', os: 'linux', config: { Labels: { 'enlil.bench': label } },
    rootfs: { type: 'layers', diff_ids: [] } });
}

function manifestOf(config, layers, annotations) {
  const m = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
  };
  if (annotations) m.annotations = annotations;
  return jsonBlob(m);
}

// ------------------------------------------------------------------------------------------------
// HTTP

class CheckError extends Error {}

// One request. body: null | Buffer | () => Readable (streamed; chunked if no content-length header).
// sink(chunk) receives a 2xx response body instead of buffering it; limit caps such a body.
// Resolves once the whole response has been read: { status, headers, body, bytes, ms }.
function exchange(agent, method, url, { headers = {}, body = null, sink = null, limit = null, signal, timeoutMs }) {
  return new Promise((resolve, reject) => {
    let settled = false;
    let source = null;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      const unsent = source && !source.readableEnded;
      if (unsent) source.destroy();
      if (err) {
        req.destroy();
        reject(err);
      } else {
        if (unsent) req.destroy(); // answered before the whole body was sent: this socket cannot be reused
        resolve(value);
      }
    };
    const u = new URL(url);
    const req = http.request(u, { method, headers, agent, signal, timeout: timeoutMs }, (res) => {
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const chunks = [];
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
        if (ok && sink) {
          if (limit != null && bytes > limit) {
            finish(new CheckError(`${method} ${u.pathname}: body longer than ${limit} bytes (status ${res.statusCode})`));
            return;
          }
          sink(c);
        } else if (bytes <= MiB) chunks.push(c);
      });
      res.on('end', () => finish(null, { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), bytes, reused: req.reusedSocket }));
      res.on('error', (e) => finish(e));
      res.on('close', () => { if (!res.complete) finish(new Error(`${method} ${u.pathname}: response cut off`)); });
    });
    req.on('timeout', () => {
      const e = new Error(`${method} ${u.pathname}: no progress for ${timeoutMs / 1000} s`);
      e.timedOut = true;
      req.destroy(e);
    });
    req.on('error', (e) => {
      e.reused = req.reusedSocket;
      finish(e);
    });
    if (body == null) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      source = body();
      source.on('error', (e) => finish(e));
      source.pipe(req);
    }
  });
}

// ------------------------------------------------------------------------------------------------
// one timed section: counts requests, bytes, latencies and errors

const MAX_ERRORS = 20; // a section gives up after this many errors, so a broken registry fails fast

class Section {
  constructor(target, timeoutMs) {
    this.target = target;
    this.ac = new AbortController();
    this.timer = setTimeout(() => this.ac.abort(new Error(`time limit of ${timeoutMs / 1000} s reached`)), timeoutMs);
    this.timer.unref();
    this.signal = AbortSignal.any([this.ac.signal, STOP.signal]);
    setMaxListeners(0, this.signal); // every request in flight listens to it
    this.requests = 0;
    this.challenges = 0;
    this.connections = 0;
    this.bytes = 0;
    this.items = 0;
    this.errors = 0;
    this.errorSamples = [];
    this.latencies = [];
    this.byOp = new Map();
  }

  fail(err) {
    this.errors++;
    const msg = String(err?.message || err);
    if (this.errorSamples.length < 5 && !this.errorSamples.includes(msg)) this.errorSamples.push(msg);
    if (this.errors === MAX_ERRORS) this.ac.abort(new Error(`gave up after ${MAX_ERRORS} errors`));
  }

  done() {
    clearTimeout(this.timer);
  }

  // One exchange, counted and timed; retried once if a kept-alive socket was stale.
  async send(op, method, url, opts) {
    const t0 = performance.now();
    let res;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await exchange(this.target.agent, method, url, { ...opts, signal: this.signal, timeoutMs: OPT.timeout * 1000 });
        break;
      } catch (e) {
        if (attempt === 0 && e.reused && /ECONNRESET|EPIPE|socket hang up/.test(`${e.code} ${e.message}`)) continue;
        this.requests++;
        if (this.signal.aborted) throw new Error(`${op}: ${method} ${new URL(url).pathname}: stopped, ${this.signal.reason?.message || 'aborted'}`);
        // a stuck request: stop the whole section rather than wait for every other one to time out too
        if (e.timedOut) this.ac.abort(new Error('a request timed out'));
        throw new Error(`${op}: ${e.message}`);
      }
    }
    const ms = performance.now() - t0;
    this.requests++;
    if (!res.reused) this.connections++;
    this.latencies.push(ms);
    if (!this.byOp.has(op)) this.byOp.set(op, []);
    this.byOp.get(op).push(ms);
    return res;
  }

  // A request as a client sends it: with credentials or a token for its scope when the registry wants
  // them (the token requests count as requests of this section), redirects followed if opts.follow
  // (without credentials: they go to another host, S3), and a status that must be one of `expect`.
  async call(op, method, url, opts = {}, expect = [200]) {
    const auth = this.target.auth;
    const own = (u) => auth && new URL(u).origin === this.target.url;
    const authHeaders = (u) => (own(u) ? auth.headers(method, u, (realmUrl, headers) => this.send('auth-token', 'GET', realmUrl, { headers })) : {});
    let res = await this.send(op, method, url, { ...opts, headers: { ...opts.headers, ...(await authHeaders(url)) } });
    if (res.status === 401 && own(url) && auth.challenged(res.headers['www-authenticate'], method, url)) {
      this.challenges++; // a client that knows the realm and caches tokens should see few of these
      res = await this.send(op, method, url, { ...opts, headers: { ...opts.headers, ...(await authHeaders(url)) } });
    }
    for (let hop = 0; opts.follow && hop < 4 && [301, 302, 303, 307, 308].includes(res.status); hop++) {
      url = location({ url }, res, `${op} redirect`);
      // timed apart: the registry's redirect and the storage's answer are different costs
      res = await this.send(`${op}>redirected`, method, url, { ...opts, headers: { ...opts.headers, ...(await authHeaders(url)) } });
    }
    if (!expect.includes(res.status)) {
      const detail = res.body.length ? ' ' + res.body.toString('utf8', 0, Math.min(200, res.body.length)).replace(/\s+/g, ' ') : '';
      throw new CheckError(`${op}: ${method} ${new URL(url).pathname}${new URL(url).search.slice(0, 80)} -> ${res.status}, expected ${expect.join('/')}${detail}`);
    }
    return res;
  }
}

// run fn(i) for i in [0, n) with `conc` in flight; an error is counted and the loop goes on
async function parallel(sec, n, conc, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n && !sec.signal.aborted) {
      const i = next++;
      try {
        await fn(i);
      } catch (e) {
        sec.fail(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, conc) }, worker));
}

// ------------------------------------------------------------------------------------------------
// registry operations

const v2 = (t, repo, rest) => `${t.url}/v2/${repo}/${rest}`;

function location(t, res, what) {
  const loc = res.headers.location;
  if (!loc) throw new CheckError(`${what}: no Location header`);
  return new URL(loc, t.url).href;
}

function withDigest(loc, digest) {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u.href;
}

function expectDigest(res, digest, what) {
  const got = res.headers['docker-content-digest'];
  if (got !== digest) throw new CheckError(`${what}: Docker-Content-Digest ${got}, expected ${digest}`);
}

async function startUpload(sec, t, repo) {
  const res = await sec.call('blob-post', 'POST', v2(t, repo, 'blobs/uploads/'), { headers: { 'content-length': '0' } }, [202]);
  return location(t, res, 'POST upload');
}

async function pushSmall(sec, t, repo, blob) {
  const loc = await startUpload(sec, t, repo);
  const res = await sec.call('blob-put', 'PUT', withDigest(loc, blob.digest), {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) }, body: blob.buf,
  }, [201]);
  expectDigest(res, blob.digest, 'PUT blob');
  sec.bytes += blob.size;
}

async function getSmall(sec, t, repo, blob) {
  const res = await sec.call('blob-get', 'GET', v2(t, repo, `blobs/${blob.digest}`), { follow: true }, [200]);
  if (sha256(res.body) !== blob.digest) throw new CheckError(`GET blob ${blob.digest}: wrong content (${res.bytes} bytes)`);
  sec.bytes += res.bytes;
}

async function headBlob(sec, t, repo, digest, size, op = 'blob-head') {
  const res = await sec.call(op, 'HEAD', v2(t, repo, `blobs/${digest}`), { follow: true }, [200]);
  if (Number(res.headers['content-length']) !== size) throw new CheckError(`HEAD blob: Content-Length ${res.headers['content-length']}, expected ${size}`);
}

async function pushBigMono(sec, t, repo, blob) {
  const loc = await startUpload(sec, t, repo);
  const res = await sec.call('blob-put', 'PUT', withDigest(loc, blob.digest), {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body: () => blob.stream(),
  }, [201]);
  expectDigest(res, blob.digest, 'PUT blob');
  sec.bytes += blob.size;
}

async function putManifest(sec, t, repo, ref, man) {
  const res = await sec.call('manifest-put', 'PUT', v2(t, repo, `manifests/${ref}`), {
    headers: { 'content-type': OCI_MANIFEST, 'content-length': String(man.size) }, body: man.buf,
  }, [201]);
  expectDigest(res, man.digest, 'PUT manifest');
  sec.bytes += man.size;
}

async function getManifest(sec, t, repo, ref, man) {
  const res = await sec.call('manifest-get', 'GET', v2(t, repo, `manifests/${ref}`), { headers: { accept: ACCEPT_MANIFESTS } }, [200]);
  if (sha256(res.body) !== man.digest) throw new CheckError(`GET manifest ${ref}: body digest differs from the one pushed`);
  expectDigest(res, man.digest, `GET manifest ${ref}`);
  sec.bytes += res.bytes;
}

// ------------------------------------------------------------------------------------------------
// scenarios. Each gets (t, rep, api): api.timed(section, fn) measures fn(sec) as one result row;
// api.untimed(fn) runs setup or checks whose errors are counted but whose time is not.

function repoOf(rep, t, what) {
  const who = t.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
  return `bench/${RUN_ID}-r${rep.n}-${who}/${what}`;
}

// the big blob of push-mono, pushed here untimed when push-mono did not run or failed
async function monoBlob(t, rep, api) {
  if (t.state.mono) return t.state.mono;
  await api.untimed(async (sec) => {
    const repo = repoOf(rep, t, 'mono');
    await pushBigMono(sec, t, repo, rep.data.mono);
    t.state.mono = { repo, blob: rep.data.mono };
  });
  return t.state.mono;
}

const RUN = {
  async 'push-mono'(t, rep, api) {
    const blob = rep.data.mono;
    const repo = repoOf(rep, t, 'mono');
    let ok = false;
    await api.timed('push-mono', async (sec) => {
      await pushBigMono(sec, t, repo, blob);
      ok = true;
    });
    await api.untimed((sec) => headBlob(sec, t, repo, blob.digest, blob.size));
    if (ok) t.state.mono = { repo, blob };
  },

  async 'push-chunked'(t, rep, api) {
    const blob = rep.data.chunked;
    const repo = repoOf(rep, t, 'chunked');
    await api.timed('push-chunked', async (sec) => {
      let loc = await startUpload(sec, t, repo);
      const n = Math.ceil(blob.size / blob.chunk);
      for (let i = 0; i < n && !sec.signal.aborted; i++) {
        const a = i * blob.chunk;
        const b = Math.min(blob.size, a + blob.chunk);
        const res = await sec.call('blob-patch', 'PATCH', loc, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(b - a), 'content-range': `${a}-${b - 1}` },
          body: () => blob.stream(a, b),
        }, [202]);
        if (res.headers.range !== `0-${b - 1}`) throw new CheckError(`PATCH chunk ${i}: Range ${res.headers.range}, expected 0-${b - 1}`);
        loc = location(t, res, `PATCH chunk ${i}`);
        sec.bytes += b - a;
      }
      const res = await sec.call('blob-put', 'PUT', withDigest(loc, blob.digest), { headers: { 'content-length': '0' } }, [201]);
      expectDigest(res, blob.digest, 'PUT after chunks');
    });
    await api.untimed((sec) => headBlob(sec, t, repo, blob.digest, blob.size));
  },

  async 'push-stream'(t, rep, api) {
    const blob = rep.data.stream;
    const repo = repoOf(rep, t, 'stream');
    await api.timed('push-stream', async (sec) => {
      const loc0 = await startUpload(sec, t, repo);
      // no content-length: node sends it with Transfer-Encoding: chunked, as docker does
      const res = await sec.call('blob-patch', 'PATCH', loc0, {
        headers: { 'content-type': 'application/octet-stream' }, body: () => blob.stream(),
      }, [202]);
      if (res.headers.range !== `0-${blob.size - 1}`) throw new CheckError(`streamed PATCH: Range ${res.headers.range}, expected 0-${blob.size - 1}`);
      sec.bytes += blob.size;
      const loc = location(t, res, 'streamed PATCH');
      const fin = await sec.call('blob-put', 'PUT', withDigest(loc, blob.digest), { headers: { 'content-length': '0' } }, [201]);
      expectDigest(fin, blob.digest, 'PUT after stream');
    });
    await api.untimed((sec) => headBlob(sec, t, repo, blob.digest, blob.size));
  },

  async 'pull-blob'(t, rep, api) {
    const mono = await monoBlob(t, rep, api);
    if (!mono) return;
    const { repo, blob } = mono;
    await api.timed('pull-blob', async (sec) => {
      await headBlob(sec, t, repo, blob.digest, blob.size);
      const hash = crypto.createHash('sha256');
      const res = await sec.call('blob-get', 'GET', v2(t, repo, `blobs/${blob.digest}`), { sink: (c) => hash.update(c), limit: blob.size, follow: true }, [200]);
      const got = 'sha256:' + hash.digest('hex');
      if (res.bytes !== blob.size || got !== blob.digest) throw new CheckError(`GET blob: ${res.bytes} bytes, ${got}; expected ${blob.size} bytes, ${blob.digest}`);
      sec.bytes += res.bytes;
    });
  },

  async 'pull-range'(t, rep, api) {
    const mono = await monoBlob(t, rep, api);
    if (!mono) return;
    const { repo, blob } = mono;
    const n = blob.chunkDigests.length;
    await api.timed('pull-range', (sec) => parallel(sec, n, OPT.rangeConc, async (i) => {
      const a = i * blob.chunk;
      const b = Math.min(blob.size, a + blob.chunk) - 1;
      const hash = crypto.createHash('sha256');
      const res = await sec.call('blob-range', 'GET', v2(t, repo, `blobs/${blob.digest}`), {
        headers: { range: `bytes=${a}-${b}` }, sink: (c) => hash.update(c), limit: b - a + 1, follow: true,
      }, [206]);
      const cr = res.headers['content-range'];
      if (cr !== `bytes ${a}-${b}/${blob.size}`) throw new CheckError(`Range ${a}-${b}: Content-Range ${cr}`);
      if (res.bytes !== b - a + 1 || 'sha256:' + hash.digest('hex') !== blob.chunkDigests[i]) throw new CheckError(`Range ${a}-${b}: wrong content (${res.bytes} bytes)`);
      sec.bytes += res.bytes;
    }));
  },

  async 'small-concurrent'(t, rep, api) {
    const { clients } = rep.data.small;
    await api.timed('small-concurrent', (sec) => parallel(sec, clients.length, clients.length, async (c) => {
      const { repo, blobs, config, manifest, tag } = clients[c];
      const r = repoOf(rep, t, repo);
      for (const blob of blobs) {
        if (sec.signal.aborted) return;
        await pushSmall(sec, t, r, blob);
        await getSmall(sec, t, r, blob);
      }
      await pushSmall(sec, t, r, config);
      await putManifest(sec, t, r, tag, manifest);
      await getManifest(sec, t, r, tag, manifest);
    }));
  },

  async manifests(t, rep, api) {
    const { layer, config, list } = rep.data.manifests;
    const repo = repoOf(rep, t, 'manifests');
    await api.untimed(async (sec) => {
      await pushSmall(sec, t, repo, layer);
      await pushSmall(sec, t, repo, config);
    });
    await api.timed('manifests:put', (sec) => parallel(sec, list.length, OPT.conc, async (i) => {
      await putManifest(sec, t, repo, list[i].tag, list[i].man);
      sec.items++;
    }));
    await api.timed('manifests:head', (sec) => parallel(sec, list.length, OPT.conc, async (i) => {
      const { tag, man } = list[i];
      const res = await sec.call('manifest-head', 'HEAD', v2(t, repo, `manifests/${tag}`), { headers: { accept: ACCEPT_MANIFESTS } }, [200]);
      expectDigest(res, man.digest, `HEAD manifest ${tag}`);
      if (Number(res.headers['content-length']) !== man.size) throw new CheckError(`HEAD manifest ${tag}: Content-Length ${res.headers['content-length']}, expected ${man.size}`);
      sec.items++;
    }));
    await api.timed('manifests:get', (sec) => parallel(sec, list.length, OPT.conc, async (i) => {
      await getManifest(sec, t, repo, list[i].tag, list[i].man);
      sec.items++;
    }));
    await api.timed('manifests:tags', async (sec) => {
      const seen = new Map();
      let url = `${v2(t, repo, 'tags/list')}?n=${OPT.page}`;
      const maxPages = list.length + 2;
      let pages = 0;
      while (url && pages < maxPages) {
        pages++;
        const res = await sec.call('tags-list', 'GET', url, {}, [200]);
        sec.bytes += res.bytes;
        let doc;
        try { doc = JSON.parse(res.body.toString('utf8')); } catch { throw new CheckError('tags/list: not JSON'); }
        const tags = Array.isArray(doc.tags) ? doc.tags : [];
        if (tags.length > OPT.page) sec.notes = `a page held ${tags.length} tags for n=${OPT.page}`;
        for (const tag of tags) seen.set(tag, (seen.get(tag) || 0) + 1);
        const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.link || '');
        url = link ? new URL(link[1], t.url).href : null;
      }
      if (url) throw new CheckError(`tags/list: still a next Link after ${maxPages} pages`);
      const missing = list.filter((m) => seen.get(m.tag) !== 1);
      if (missing.length || seen.size !== list.length) {
        throw new CheckError(`tags/list: ${seen.size} distinct tags, ${missing.length} missing or repeated, expected ${list.length}`);
      }
      sec.items = list.length;
      sec.pages = pages;
    });
  },

  async mount(t, rep, api) {
    const { sources, count } = rep.data.mount;
    const from = repoOf(rep, t, 'mount-src');
    await api.untimed(async (sec) => {
      for (const b of sources) await pushSmall(sec, t, from, b);
    });
    const perRepo = sources.length;
    const target = (i) => ({ repo: repoOf(rep, t, `mount-dst${Math.floor(i / perRepo)}`), blob: sources[i % perRepo] });
    await api.timed('mount', (sec) => parallel(sec, count, OPT.conc, async (i) => {
      const { repo, blob } = target(i);
      const url = `${v2(t, repo, 'blobs/uploads/')}?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`;
      const res = await sec.call('blob-mount', 'POST', url, { headers: { 'content-length': '0' } }, [201]);
      expectDigest(res, blob.digest, 'mount');
      location(t, res, 'mount');
    }));
    await api.untimed((sec) => parallel(sec, count, OPT.conc, async (i) => {
      const { repo, blob } = target(i);
      await headBlob(sec, t, repo, blob.digest, blob.size);
    }));
  },
};

// ------------------------------------------------------------------------------------------------
// the data of one repetition (the same for every target, made before anything is timed)

function makeRepData() {
  const data = {};
  const want = new Set(OPT.scenarios);
  if (want.has('push-mono') || want.has('pull-blob') || want.has('pull-range')) data.mono = new BigBlob(OPT.size, OPT.chunk).prepare();
  if (want.has('push-chunked')) data.chunked = new BigBlob(OPT.size, OPT.chunk).prepare();
  if (want.has('push-stream')) data.stream = new BigBlob(OPT.size, OPT.chunk).prepare();
  if (want.has('small-concurrent')) {
    const clients = [];
    for (let c = 0; c < OPT.clients; c++) {
      const blobs = Array.from({ length: OPT.smallCount }, () => smallBlob(OPT.smallSize));
      const config = configBlob(`client-${c}-${crypto.randomUUID()}`);
      clients.push({ repo: `small/c${c}`, blobs, config, manifest: manifestOf(config, blobs), tag: `c${c}` });
    }
    data.small = { clients };
  }
  if (want.has('manifests')) {
    const layer = smallBlob(OPT.smallSize);
    const config = configBlob(`manifests-${crypto.randomUUID()}`);
    const list = Array.from({ length: OPT.manifests }, (_, i) => ({
      tag: `t${i}`, man: manifestOf(config, [layer], { 'enlil.bench.n': String(i) }),
    }));
    data.manifests = { layer, config, list };
  }
  if (want.has('mount')) {
    data.mount = { sources: Array.from({ length: 20 }, () => smallBlob(OPT.smallSize)), count: OPT.mounts };
  }
  return data;
}

// ------------------------------------------------------------------------------------------------
// measuring

async function runScenario(t, rep, scenario) {
  const rows = [];
  const untimed = new Section(t, OPT.scenarioTimeout * 1000);
  const api = {
    untimed: async (fn) => {
      try { await fn(untimed); } catch (e) { untimed.fail(e); }
    },
    timed: async (name, fn) => {
      const waited = OPT.waitIdle ? await waitIdle(OPT.waitIdle) : null;
      t.agent.destroy(); // fresh connections for every section: no stale keep-alive sockets
      t.agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
      const sec = new Section(t, OPT.scenarioTimeout * 1000);
      const watch = new ProcWatch(t.pid);
      watch.start();
      const busy0 = hostBusy();
      const s3cpu0 = s3Cpu();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      try {
        await fn(sec);
      } catch (e) {
        sec.fail(e);
      } finally {
        sec.done();
      }
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const busy1 = hostBusy();
      const s3cpu = s3cpu0 != null ? round(s3Cpu() - s3cpu0, 2) : null;
      const srv = watch.stop();
      if (srv.server_alive === false) sec.fail(new Error(`${t.name} (pid ${t.pid}) is gone`));
      const clientCpu = (cpu.user + cpu.system) / 1e6;
      const lat = sec.latencies.sort((a, b) => a - b);
      const ops = {};
      for (const [op, v] of sec.byOp) {
        v.sort((a, b) => a - b);
        ops[op] = { n: v.length, p50_ms: round(percentile(v, 50), 2), p99_ms: round(percentile(v, 99), 2), max_ms: round(v[v.length - 1], 2) };
      }
      const row = {
        target: t.name, scenario: name, rep: rep.n, seconds: round(seconds, 3),
        bytes: sec.bytes, mb_s: round(sec.bytes / 1e6 / seconds), requests: sec.requests, connections: sec.connections, req_s: round(sec.requests / seconds),
        items_s: sec.items ? round(sec.items / seconds) : null,
        p50_ms: round(percentile(lat, 50), 2), p99_ms: round(percentile(lat, 99), 2), max_ms: round(lat[lat.length - 1], 2),
        errors: sec.errors, error_samples: sec.errorSamples,
        rss_start_mib: srv.rss_start_mib, rss_peak_mib: srv.rss_peak_mib, rss_worker_peak_mib: srv.rss_worker_peak_mib,
        processes: srv.processes, server_cpu_s: srv.server_cpu_s,
        client_cpu_s: round(clientCpu, 2),
        s3_cpu_s: s3cpu,
        other_cpu_s: busy0 != null && busy1 != null ? round(Math.max(0, busy1 - busy0 - clientCpu - (srv.server_cpu_s || 0) - (s3cpu || 0)), 2) : null,
        ops,
      };
      if (waited != null) row.waited_idle_s = waited;
      if (sec.pages) row.pages = sec.pages;
      if (t.auth) row.auth_challenges = sec.challenges;
      if (sec.notes) row.notes = sec.notes;
      rows.push(row);
      const thru = primary(name) === 'mb_s' ? `${row.mb_s} MB/s` : primary(name) === 'items_s' ? `${row.items_s} tags/s` : `${row.req_s} req/s`;
      log(`  ${t.name.padEnd(8)} ${name.padEnd(17)} ${thru.padStart(13)}  p50 ${fmt(row.p50_ms)} ms  p99 ${fmt(row.p99_ms)} ms  rss ${fmt(row.rss_peak_mib)} MiB` +
        (row.errors ? `  ERRORS ${row.errors}: ${row.error_samples[0]}` : ''));
    },
  };
  try {
    await RUN[scenario](t, rep, api);
  } catch (e) {
    untimed.fail(e);
  }
  untimed.done();
  if (untimed.errors) {
    log(`  ${t.name.padEnd(8)} ${scenario}: ${untimed.errors} error(s) outside the timed part: ${untimed.errorSamples[0]}`);
    if (rows.length) {
      rows[0].errors += untimed.errors;
      rows[0].error_samples.push(...untimed.errorSamples.map((m) => `untimed: ${m}`));
    } else {
      rows.push({ target: t.name, scenario, rep: rep.n, errors: untimed.errors, error_samples: untimed.errorSamples });
    }
  }
  return rows;
}

function primary(scenario) {
  if (/^(push|pull)-/.test(scenario)) return 'mb_s';
  if (scenario === 'manifests:tags') return 'items_s';
  return 'req_s';
}
const UNIT = { mb_s: 'MB/s', req_s: 'req/s', items_s: 'tags/s' };

// wait (at most maxS seconds) until the whole machine used less than 20% of a core for half a second
async function waitIdle(maxS) {
  const t0 = performance.now();
  for (let i = 0; i < maxS * 2; i++) {
    const a = hostBusy();
    await sleep(500);
    const b = hostBusy();
    if (a == null || b == null || b - a < 0.1) break;
  }
  return round((performance.now() - t0) / 1000 - 0.5, 1);
}

// after errors: is the registry still there?
async function alive(t) {
  if (t.child && (t.child.exitCode !== null || t.child.signalCode !== null)) return false;
  const agent = new http.Agent({ keepAlive: false });
  try {
    const res = await exchange(agent, 'GET', `${t.url}/v2/`, { timeoutMs: 5000, signal: AbortSignal.timeout(10000) });
    return res.status === 200 || res.status === 401; // 401: it wants credentials, so it is there
  } catch {
    return false;
  } finally {
    agent.destroy();
  }
}

async function warmup(t) {
  const rep = { n: 0 };
  const sec = new Section(t, 60000);
  const repo = repoOf(rep, t, 'warmup');
  const blob = new BigBlob(4 * MiB, MiB).prepare();
  const layer = smallBlob(4 * KiB);
  const config = configBlob('warmup');
  try {
    await pushBigMono(sec, t, repo, blob);
    await pushSmall(sec, t, repo, config);
    await parallel(sec, 64, 8, async (i) => {
      const b = i === 0 ? layer : smallBlob(4 * KiB);
      await pushSmall(sec, t, repo, b);
      await getSmall(sec, t, repo, b);
      const man = manifestOf(config, [b]);
      await putManifest(sec, t, repo, `w${i}`, man);
      await getManifest(sec, t, repo, `w${i}`, man);
    });
  } catch (e) {
    sec.fail(e);
  }
  sec.done();
  if (sec.errors) log(`  ${t.name}: warm-up had ${sec.errors} error(s): ${sec.errorSamples[0]}`);
  return sec.errors;
}

// ------------------------------------------------------------------------------------------------
// starting and stopping registries

const CHILDREN = [];
const TMP_DIRS = [];

function registryEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return { ...env, ...extra };
}

async function waitReady(t, child, logFile) {
  const agent = new http.Agent({ keepAlive: false });
  try {
    for (let i = 0; i < 300; i++) { // 30 s
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${t.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail(logFile)}`);
      }
      try {
        const res = await exchange(agent, 'GET', `${t.url}/v2/`, { timeoutMs: 2000 });
        if (res.status === 200 || res.status === 401) return; // 401: up, with auth on
      } catch { /* not listening yet */ }
      await sleep(100);
    }
    throw new Error(`${t.name} did not answer GET /v2/ with 200 or 401 within 30 s:\n${tail(logFile)}`);
  } finally {
    agent.destroy();
  }
}

// enlil with --workers N: wait until the primary has forked them all (bounded), so that the first
// timed section measures N workers and its RSS sum covers every one of them
async function waitWorkers(t, n) {
  for (let i = 0; i < 300; i++) { // 30 s
    if (processTree(t.pid).length > n) return;
    await sleep(100);
  }
  throw new Error(`${t.name}: ${n} workers did not start within 30 s:\n${tail(t.logFile)}`);
}

// the storage settings of the two registries, from one place: a directory, or a bucket of RGW
function enlilStorageEnv(storage) {
  if (storage.root) return { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: storage.root };
  return {
    REGISTRY_STORAGE: 's3',
    REGISTRY_STORAGE_S3_BUCKET: storage.bucket,
    REGISTRY_STORAGE_S3_ACCESSKEY: RGW.accessKey,
    REGISTRY_STORAGE_S3_SECRETKEY: RGW.secretKey,
    REGISTRY_STORAGE_S3_REGION: REGION,
    REGISTRY_STORAGE_S3_REGIONENDPOINT: storage.endpoint,
    REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
    REGISTRY_STORAGE_REDIRECT_DISABLE: String(!OPT.s3Redirect),
  };
}

function distStorageYaml(storage) {
  if (storage.root) return ['  filesystem:', `    rootdirectory: ${storage.root}`];
  return [
    '  s3:',
    `    accesskey: ${RGW.accessKey}`,
    `    secretkey: ${RGW.secretKey}`,
    `    region: ${REGION}`,
    `    regionendpoint: ${storage.endpoint}`, // implies path-style in 2.8, which has no forcepathstyle
    `    bucket: ${storage.bucket}`,
    '    secure: false',
    '    v4auth: true',
    '  redirect:',
    `    disable: ${!OPT.s3Redirect}`,
  ];
}

/**
 * Gives a store its own block groups on ext4 (the "top of a directory tree" flag: its subfolders are
 * placed like top-level ones). Without it, both stores under one temp folder share groups, and on an
 * ext4 without a journal (this VM's) a file creation scans past every inode freed in the last 5 to
 * 300 seconds in its group: one registry's deleted upload folders then slow the other's creations.
 * Separate disks, as in production, behave like this. Elsewhere (no chattr, not ext4) nothing changes.
 */
function spreadApart(dir) {
  try {
    execFileSync('chattr', ['+T', dir], { stdio: 'ignore' });
  } catch {
    // not ext4, or no chattr: the stores share whatever the file system gives them
  }
}

async function startRegistry(name) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `enlil-bench-${name}-`));
  TMP_DIRS.push(dir);
  const storage = {};
  if (OPT.store === 's3') {
    storage.bucket = `bench-${RUN_ID}-${name}`;
    await createBucket(RGW, storage.bucket);
    storage.endpoint = RGW.endpoint;
    if (OPT.countRequests) {
      storage.proxy = await startCountingProxy(RGW.endpoint);
      PROXIES.push(storage.proxy);
      storage.endpoint = storage.proxy.url;
    }
  } else {
    storage.root = path.join(dir, 'storage');
    fs.mkdirSync(storage.root);
    spreadApart(storage.root);
  }
  const logFile = path.join(dir, 'registry.log');
  const out = fs.openSync(logFile, 'a');
  let child;
  let credentials = null;
  if (name === 'enlil') {
    const main = path.join(REPO_ROOT, 'dist', 'main.js');
    if (!fs.existsSync(main)) throw new Error(`${main} does not exist: run npm run build (npm run bench does)`);
    const auth = await enlilAuthEnv(OPT.auth, dir);
    if (auth.user) credentials = auth;
    const args = [main, 'serve'];
    // Always explicit: enlil's own default is one worker per core.
    args.push('--workers', String(OPT.workers));
    child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: registryEnv({
        REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
        ...enlilStorageEnv(storage),
        ...auth.env,
        REGISTRY_LOG_LEVEL: 'warn',
        // the same settings as docker-registry's config below
        REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
        REGISTRY_STORAGE_DELETE_ENABLED: 'true',
        REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'false',
      }),
      stdio: ['ignore', out, out],
    });
  } else {
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      ...distStorageYaml(storage),
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${crypto.randomBytes(16).toString('hex')}`,
      'health:',
      '  storagedriver:',
      '    enabled: false',
      '',
    ].join('\n'), { mode: 0o600 });
    // its s3 driver fails at startup when AWS_CA_BUNDLE is set (LoadCustomCABundleError)
    const env = registryEnv({});
    delete env.AWS_CA_BUNDLE;
    child = spawn(DIST_BIN, ['serve', config], { cwd: dir, env, stdio: ['ignore', out, out] });
  }
  fs.closeSync(out);
  CHILDREN.push(child);
  const t = { name, url: `http://127.0.0.1:${port}`, pid: child.pid, started: true, child, dir, logFile, bucket: storage.bucket, proxy: storage.proxy };
  if (credentials) t.auth = new ClientAuth(credentials.user, credentials.password);
  if (name === 'enlil') {
    t.authMode = OPT.auth;
    t.workers = OPT.workers;
  } else {
    t.authMode = 'none';
    t.workers = 1;
  }
  child.on('error', (e) => log(`${name}: ${e.message}`));
  await waitReady(t, child, logFile);
  if (name === 'enlil' && OPT.workers > 1) await waitWorkers(t, OPT.workers);
  return t;
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const killed = await Promise.race([gone.then(() => true), sleep(5000).then(() => false)]);
  if (!killed) {
    child.kill('SIGKILL');
    await Promise.race([gone, sleep(2000)]);
  }
}

function cleanupSync() {
  for (const c of CHILDREN) {
    if (c.exitCode === null && c.signalCode === null) {
      // the whole tree: enlil's workers too, not only the primary
      for (const pid of processTree(c.pid).reverse()) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }
  if (!OPT?.keep) for (const d of TMP_DIRS.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  stopRgwSync(RGW, OPT?.keep);
}

function findDistBinary() {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/bin'])) {
    const p = path.join(dir || '.', 'docker-registry');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

function versionOf(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------------------------
// summary and table

function storeLabel() {
  if (OPT.store !== 's3') return 'filesystem';
  return `S3 on a local Ceph RGW${RGW?.version ? ` (${/ceph version (\S+)/.exec(RGW.version)?.[1] ?? RGW.version})` : ''}, a fresh bucket per registry, ` +
    `blob redirects ${OPT.s3Redirect ? 'on' : 'off'}`;
}

const AUTH_LABEL = { none: 'no auth', htpasswd: 'htpasswd auth', token: 'token auth' };

function setupOf(t) {
  const parts = [AUTH_LABEL[t.authMode] ?? 'no auth'];
  if (t.workers > 1) parts.push(`${t.workers} workers`);
  return parts.join(', ');
}

// the column heading of a target in the Markdown table
function labelOf(t, distVersion) {
  if (!t.started) return t.name;
  if (t.name === 'dist') {
    const v = /v?(\d+\.\d+)(?:\.\d+)?/.exec(distVersion || '');
    return `distribution ${v ? v[1] : ''}`.trim();
  }
  const extra = [];
  if (t.authMode && t.authMode !== 'none') extra.push(AUTH_LABEL[t.authMode]);
  if (t.workers > 1) extra.push(`${t.workers} workers`);
  return extra.length ? `${t.name} (${extra.join(', ')})` : t.name;
}

function captionOf(live, m) {
  const setup = OPT.urls.length ? '' : `Store: ${storeLabel()}. ${live.map((t) => `${labelOf(t, null).split(' (')[0]}: ${setupOf(t)}`).join('; ')}. `;
  const sizes = `blob ${OPT.size / MiB} MiB, chunk ${OPT.chunk / MiB} MiB, ${OPT.clients} clients x ${OPT.smallCount} x ${OPT.smallSize / KiB} KiB, ` +
    `${OPT.manifests} manifests, ${OPT.mounts} mounts`;
  return `${setup}Medians of ${OPT.repeat} repetition(s) (${sizes}). Ratio: throughput, higher is better. ` +
    `Machine: ${m.cpu_model}, ${m.cores} cores, ${m.mem_gib} GiB, ${m.os ?? 'Linux'}, kernel ${os.release()}, Node ${m.node}. ` +
    `\`npm run bench\`, ${new Date().toISOString().slice(0, 10)}.`;
}

// with --workers: which rows break the issue's bound of 150 MiB per worker is easy to see from this
function workersNote(live) {
  const w = live.find((t) => t.workers > 1);
  if (!w) return '';
  return `RSS/worker: the largest peak of one worker process of ${w.name}; peak RSS is the sum over its primary and ${w.workers} workers.`;
}

function summarize(rows, targets, base) {
  const order = [];
  for (const r of rows) if (!order.includes(r.scenario)) order.push(r.scenario);
  return order.map((scenario) => {
    const metric = primary(scenario);
    const per = {};
    for (const t of targets) {
      const rs = rows.filter((r) => r.scenario === scenario && r.target === t.name);
      if (!rs.length) continue;
      per[t.name] = {
        runs: rs.length,
        thru: median(rs.map((r) => r[metric])),
        seconds: median(rs.map((r) => r.seconds)),
        p50_ms: median(rs.map((r) => r.p50_ms)),
        p99_ms: median(rs.map((r) => r.p99_ms)),
        rss_peak_mib: median(rs.map((r) => r.rss_peak_mib)),
        rss_worker_peak_mib: median(rs.map((r) => r.rss_worker_peak_mib)),
        server_cpu_s: median(rs.map((r) => r.server_cpu_s)),
        s3_cpu_s: median(rs.map((r) => r.s3_cpu_s)),
        other_cpu_s: median(rs.map((r) => r.other_cpu_s)),
        errors: rs.reduce((s, r) => s + (r.errors || 0), 0),
      };
    }
    const entry = { scenario, unit: UNIT[metric], targets: per };
    if (base && per[base]) {
      // throughput: higher is better; p99 and RSS: lower is better
      entry.ratios = {};
      for (const [name, v] of Object.entries(per)) {
        if (name === base) continue;
        entry.ratios[name] = { thru: ratio(v.thru, per[base].thru), p99: ratio(v.p99_ms, per[base].p99_ms), rss_peak: ratio(v.rss_peak_mib, per[base].rss_peak_mib) };
      }
    }
    return entry;
  });
}

function ratio(a, b, digits = 2) {
  if (a == null || b == null || b === 0) return null;
  return round(a / b, digits);
}

function fmt(x, digits = 1) {
  if (x == null) return '-';
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return String(round(x, digits));
}

function renderTable(summary, targets, base) {
  const names = targets.map((t) => t.name);
  const others = names.filter((n) => n !== base);
  const slash = (s, key, digits) => names.map((n) => fmt(s.targets[n]?.[key], digits)).join(' / ');
  const header = ['scenario', 'unit', ...names];
  if (base) header.push(...others.map((n) => `${n}/${base} thru`));
  const workers = targets.some((t) => t.workers > 1);
  header.push(`p50 ms`, `p99 ms`, `peak RSS MiB`);
  if (workers) header.push('RSS/worker MiB');
  header.push(`CPU s`);
  if (base) header.push(...others.map((n) => `${n}/${base} p99, RSS`));
  header.push('errors');
  const lines = [header];
  for (const s of summary) {
    const line = [s.scenario, s.unit, ...names.map((n) => fmt(s.targets[n]?.thru))];
    if (base) line.push(...others.map((n) => fmt(ratio(s.targets[n]?.thru, s.targets[base]?.thru), 2)));
    line.push(slash(s, 'p50_ms', 1), slash(s, 'p99_ms', 1), slash(s, 'rss_peak_mib', 0));
    if (workers) line.push(slash(s, 'rss_worker_peak_mib', 0));
    line.push(slash(s, 'server_cpu_s', 2));
    if (base) {
      line.push(...others.map((n) => `${fmt(ratio(s.targets[n]?.p99_ms, s.targets[base]?.p99_ms), 2)}, ${fmt(ratio(s.targets[n]?.rss_peak_mib, s.targets[base]?.rss_peak_mib), 2)}`));
    }
    line.push(names.map((n) => s.targets[n]?.errors ?? '-').join(' / '));
    lines.push(line);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
  const numeric = (i) => i >= 2;
  const render = (l) => '| ' + l.map((c, i) => (numeric(i) ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join(' | ') + ' |';
  const out = [render(lines[0]), '| ' + widths.map((w, i) => (numeric(i) ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ') + ' |'];
  for (const l of lines.slice(1)) out.push(render(l));
  return out.join('\n');
}

function renderOps(rows, targets) {
  const names = targets.map((t) => t.name);
  const keys = [];
  for (const r of rows) for (const op of Object.keys(r.ops || {})) if (!keys.some((k) => k[0] === r.scenario && k[1] === op)) keys.push([r.scenario, op]);
  const out = [`| scenario | request | ${names.map((n) => `${n} p50 / p99 ms`).join(' | ')} |`, `| --- | --- | ${names.map(() => '---:').join(' | ')} |`];
  for (const [scenario, op] of keys) {
    const cells = names.map((n) => {
      const rs = rows.filter((r) => r.scenario === scenario && r.target === n && r.ops?.[op]);
      if (!rs.length) return '-';
      return `${fmt(median(rs.map((r) => r.ops[op].p50_ms)), 2)} / ${fmt(median(rs.map((r) => r.ops[op].p99_ms)), 2)}`;
    });
    out.push(`| ${scenario} | ${op} | ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

// ------------------------------------------------------------------------------------------------
// main

let OPT = null;
let DIST_BIN = null;
let RGW = null; // the throwaway Ceph RGW of --store s3
const PROXIES = []; // the counting proxies of --count-requests
const RUN_ID = Date.now().toString(36);
const STOP = new AbortController();
setMaxListeners(0, STOP.signal);

async function main() {
  try {
    OPT = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  const onSignal = (sig) => {
    log(`\nbench: ${sig}, stopping`);
    STOP.abort(new Error(sig));
    cleanupSync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupSync);

  const targets = [];
  let failures = 0;
  if (OPT.urls.length) {
    for (const u of OPT.urls) {
      const port = Number(new URL(u.url).port || 80);
      if (!u.pid) u.pid = pidOfPort(port);
      if (!u.pid) log(`bench: no pid found for ${u.name} (${u.url}); RSS and CPU will be missing`);
      if (OPT.user != null) u.auth = new ClientAuth(OPT.user, OPT.password);
      targets.push(u);
    }
  } else {
    DIST_BIN = findDistBinary();
    if (OPT.store === 's3') {
      try {
        log('bench: starting a throwaway Ceph RGW (S3)');
        RGW = await startRgw({ script: path.join(REPO_ROOT, 'test', 'support', 'ceph-rgw.sh'), s3Port: await freePort() });
        log(`bench: RGW on ${RGW.endpoint}`);
      } catch (e) {
        log(`bench: ${e.message}`);
        return 2;
      }
    }
    const wanted = OPT.targets || ['enlil', 'dist'];
    for (const name of wanted) {
      if (name === 'dist' && !DIST_BIN) {
        log('bench: docker-registry is not installed (apt-get install -y docker-registry); benching enlil alone');
        continue;
      }
      try {
        log(`bench: starting ${name}`);
        targets.push(await startRegistry(name));
      } catch (e) {
        log(`bench: could not start ${name}: ${e.message}`);
        failures++;
      }
    }
  }
  for (const t of targets) {
    t.agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    const ping = new Section(t, 10000);
    try {
      await ping.call('ping', 'GET', `${t.url}/v2/`, {}, [200]);
    } catch (e) {
      log(`bench: ${t.name} at ${t.url} is not usable: ${e.message}`);
      t.bad = true;
    }
    ping.done();
  }
  const live = targets.filter((t) => !t.bad);
  if (!live.length) {
    log('bench: no registry to bench');
    return 2;
  }
  const base = live.length > 1 ? (OPT.base && live.some((t) => t.name === OPT.base) ? OPT.base
    : live.some((t) => t.name === 'dist') ? 'dist' : live[live.length - 1].name) : null;

  log(`bench: ${live.map((t) => `${t.name}=${t.url}${t.pid ? ` (pid ${t.pid})` : ''}`).join(', ')}`);
  log(`bench: blob ${OPT.size / MiB} MiB, chunk ${OPT.chunk / MiB} MiB, ${OPT.clients} clients x ${OPT.smallCount} x ${OPT.smallSize / KiB} KiB, ` +
    `${OPT.manifests} manifests (n=${OPT.page}), ${OPT.mounts} mounts, repeat ${OPT.repeat}`);
  if (!OPT.urls.length) log(`bench: store ${storeLabel()}; ${live.map((t) => `${t.name}: ${setupOf(t)}`).join('; ')}`);

  if (OPT.countRequests) return countRequests(live);

  const t0 = Date.now();
  let warmupErrors = 0;
  if (OPT.warmup) {
    for (const t of live) warmupErrors += await warmup(t);
  }
  const rows = [];
  for (let n = 1; n <= OPT.repeat && !STOP.signal.aborted; n++) {
    if (RGW && n > 1) {
      log('bench: compacting the OSD (a used store is slower: deletion markers)');
      if (!(await compactOsd(RGW))) log('bench: compacting the OSD failed; going on');
    }
    log(`bench: repetition ${n}/${OPT.repeat}: preparing data`);
    const rep = { n, data: makeRepData() };
    const order = n % 2 ? live : live.slice().reverse();
    for (const t of live) t.state = {};
    for (const scenario of OPT.scenarios) {
      for (const t of order) {
        if (t.down) continue;
        const got = await runScenario(t, rep, scenario);
        rows.push(...got);
        if (got.some((r) => r.errors) && !(await alive(t))) {
          t.down = true;
          failures++;
          log(`bench: ${t.name} does not answer GET /v2/ any more; skipping it from now on`);
        }
      }
    }
  }
  const wall = (Date.now() - t0) / 1000;
  const errors = rows.reduce((s, r) => s + (r.errors || 0), 0) + warmupErrors + failures;
  const summary = summarize(rows, live, base);

  const table = renderTable(summary, live, base);
  process.stdout.write(`\n${table}\n`);
  if (base) {
    process.stdout.write(`\nthroughput: MB/s (10^6 bytes) for push/pull, req/s, tags/s for manifests:tags (distribution ignores n and lists all tags in one request).\n` +
      `${live.filter((t) => t.name !== base).map((t) => `${t.name}/${base}`).join(', ')} thru: higher is better; p99 and RSS ratios: lower is better. ` +
      `Slash columns list ${live.map((t) => t.name).join(' / ')}. Medians of ${OPT.repeat} repetition(s).\n`);
  }
  if (workersNote(live)) process.stdout.write(`\n${workersNote(live)}\n`);
  if (OPT.ops) process.stdout.write(`\n${renderOps(rows, live)}\n`);
  const machine = machineInfo();
  const distVersion = DIST_BIN ? versionOf(DIST_BIN, ['--version']) : null;
  if (OPT.markdown) {
    const labelled = live.map((t) => ({ name: t.name, label: labelOf(t, distVersion) }));
    process.stdout.write(`\n${renderMarkdown({ summary, targets: labelled, base, caption: captionOf(live, machine) })}\n`);
  }
  const reconnects = rows.filter((r) => r.requests >= 20 && r.connections > r.requests / 2);
  if (reconnects.length) process.stdout.write(`\nnote: keep-alive mostly not reused (new connections / requests) in ${reconnects.map((r) => `${r.target} ${r.scenario} ${r.connections}/${r.requests}`).join(', ')}.\n`);
  const noisy = rows.filter((r) => r.other_cpu_s > 0.5 && r.other_cpu_s > 0.2 * r.seconds);
  if (noisy.length) {
    process.stdout.write(`\nnote: other processes (or kernel writeback) used CPU during ${noisy.length} of ${rows.length} sections ` +
      `(${noisy.slice(0, 6).map((r) => `${r.target} ${r.scenario}`).join(', ')}${noisy.length > 6 ? ', ...' : ''}): see other_cpu_s in the JSON; ` +
      `repeat the run${OPT.waitIdle ? '' : ', perhaps with --wait-idle 20'}.\n`);
  }
  if (errors) {
    process.stdout.write(`\n${errors} error(s):\n`);
    let shown = 0;
    for (const r of rows) {
      if (!r.errors) continue;
      process.stdout.write(`  ${r.target} ${r.scenario} (rep ${r.rep}): ${r.errors} error(s)\n`);
      for (const m of (r.error_samples || []).slice(0, 3)) if (shown++ < 40) process.stdout.write(`      ${m}\n`);
    }
    for (const t of live.filter((x) => x.started)) {
      const lines = tail(t.logFile, 15);
      if (lines.trim()) process.stdout.write(`\nlast lines of ${t.name}'s log:\n${lines}\n`);
    }
  }
  process.stdout.write(`\n${rows.length} sections in ${Math.round(wall)} s, ${errors} error(s).`);

  const outFile = OPT.out ? path.resolve(OPT.out) : path.join(REPO_ROOT, '.bench', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const report = {
    tool: 'enlil test/bench/bench.mjs',
    run_id: RUN_ID,
    started: new Date(t0).toISOString(),
    wall_s: round(wall, 1),
    machine,
    enlil_commit: versionOf('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']),
    dist_version: distVersion,
    store: OPT.urls.length ? null : { driver: OPT.store === 's3' ? 's3' : 'filesystem', ...(RGW ? { server: RGW.version, redirect: OPT.s3Redirect } : {}) },
    auth: OPT.urls.length ? null : OPT.auth,
    workers: OPT.urls.length ? null : OPT.workers,
    options: { ...OPT, urls: undefined, password: undefined },
    targets: live.map((t) => ({ name: t.name, label: labelOf(t, distVersion), url: t.url, pid: t.pid, started: t.started,
      auth: t.authMode ?? null, workers: t.workers ?? null, bucket: t.bucket })),
    base,
    errors,
    summary,
    results: rows,
  };
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(` JSON: ${path.relative(process.cwd(), outFile)}\n`);

  for (const t of live) t.agent.destroy();
  for (const c of CHILDREN) await stopChild(c);
  cleanupSync();
  return errors ? 1 : 0;
}

// --count-requests: S3 requests per registry operation, each registry through its own counting proxy
async function countRequests(live) {
  const byTarget = {};
  let errors = 0;
  for (const t of live) {
    log(`bench: counting ${t.name}'s S3 requests per operation`);
    try {
      byTarget[t.name] = await measureRequestCounts({ url: t.url, proxy: t.proxy, prefix: `counts/${RUN_ID}-${t.name}` });
    } catch (e) {
      log(`bench: ${t.name}: ${e.message}`);
      errors++;
    }
  }
  process.stdout.write(`\n${renderRequestCounts(byTarget)}\n\nS3 requests per registry operation (means of 10, after one untimed run of each: warm caches; ` +
    `one enlil process). (+n): enlil's requests made on a clock that fell into the operation (the GC runs listing, at most once a second; ` +
    `the read-only marker, at most once in 3 s). Blob GETs are not followed: with redirects on, the client's GET of the presigned URL is one more.\n`);
  const outFile = OPT.out ? path.resolve(OPT.out) : path.join(REPO_ROOT, '.bench', `counts-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify({
    tool: 'enlil test/bench/bench.mjs --count-requests', run_id: RUN_ID,
    enlil_commit: versionOf('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']),
    dist_version: DIST_BIN ? versionOf(DIST_BIN, ['--version']) : null, store: { driver: 's3', server: RGW?.version, redirect: OPT.s3Redirect },
    counts: byTarget,
  }, null, 2) + '\n');
  process.stdout.write(`JSON: ${path.relative(process.cwd(), outFile)}\n`);
  for (const t of live) t.agent.destroy();
  for (const c of CHILDREN) await stopChild(c);
  for (const p of PROXIES) await p.close();
  cleanupSync();
  return errors ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`bench: ${e.stack || e}`);
    cleanupSync();
    process.exit(2);
  },
);
