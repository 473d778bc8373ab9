// A throwaway Ceph RADOS Gateway for `bench.mjs --store s3`: started with test/support/ceph-rgw.sh
// (as the tests' globalSetup does), one fresh bucket per registry, stopped and wiped at the end.
// If the harness is killed outright, the script's watchdog (RGW_WATCH_PID) stops and wipes it.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool', 'curl'];
export const REGION = 'us-east-1';

function onPath(bin) {
  for (const dir of (process.env.PATH || '').split(':')) { // as the script's `command -v` looks
    try {
      fs.accessSync(path.join(dir || '.', bin), fs.constants.X_OK);
      return true;
    } catch { /* next */ }
  }
  return false;
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// The monitor listens on base and base+1, the OSD and radosgw bind within the 60 ports above: pick a
// free window below Linux's ephemeral range (32768+), where port 0 and outgoing connections land.
async function freeRange() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    const free = await Promise.all(Array.from({ length: 64 }, (_, i) => portFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free range of 64 ports for the Ceph monitor');
}

/**
 * Starts RGW in a new temp dir; resolves to { endpoint, accessKey, secretKey, dir, version }.
 * s3Port: a free port (the caller's freePort). Throws, naming the packages, when ceph is not installed.
 */
export async function startRgw({ script, s3Port }) {
  const missing = BINARIES.filter((b) => !onPath(b));
  if (missing.length) {
    throw new Error(`--store s3 needs Ceph and curl (not installed: ${missing.join(', ')}): apt-get install -y ceph-mon ceph-osd radosgw ceph-common curl`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enlil-bench-rgw-'));
  const rgw = {
    dir,
    script,
    endpoint: `http://127.0.0.1:${s3Port}`,
    accessKey: 'enlil-bench',
    secretKey: crypto.randomBytes(18).toString('base64url'),
    version: null,
    stopped: false,
  };
  const monPort = await freeRange();
  try {
    // RGW_WATCH_PID: the script's watchdog stops and wipes RGW once this process is gone, however it ends
    const { stderr } = await run('bash', [script, 'start', dir, String(s3Port), String(monPort), rgw.accessKey, rgw.secretKey], {
      timeout: 150000, env: { ...process.env, RGW_WATCH_PID: String(process.pid) },
    });
    if (stderr.trim()) process.stderr.write(`${stderr.trim()}\n`); // a low-disk warning
  } catch (e) {
    stopRgwSync(rgw, false);
    throw new Error(`Ceph RGW did not start: ${e.message.split('\n')[0]}\n${e.stderr || ''}`);
  }
  try {
    rgw.version = execFileSync('ceph', ['--version'], { encoding: 'utf8', timeout: 5000 }).trim();
  } catch { /* the version is only informative */ }
  return rgw;
}

// stops the daemons (SIGKILL: the data is thrown away) and deletes the dir unless keep
export function stopRgwSync(rgw, keep) {
  if (!rgw || rgw.stopped) return;
  rgw.stopped = true;
  try {
    execFileSync('bash', [rgw.script, 'stop', rgw.dir], { timeout: 30000, stdio: 'ignore' });
  } catch { /* the watchdog still removes what is left */ }
  if (!keep) fs.rmSync(rgw.dir, { recursive: true, force: true });
}

// sha256 of an empty body: curl's SigV4 signing needs it as x-amz-content-sha256, or RGW answers 403
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// PUT /<bucket>, signed with SigV4 by curl (which ceph-rgw.sh needs anyway): no SDK in the harness
export async function createBucket(rgw, bucket) {
  try {
    await run('curl', ['-sS', '--fail-with-body', '--max-time', '30', '--aws-sigv4', `aws:amz:${REGION}:s3`,
      '--user', `${rgw.accessKey}:${rgw.secretKey}`, '-H', `x-amz-content-sha256: ${EMPTY_SHA256}`,
      '-X', 'PUT', `${rgw.endpoint}/${bucket}`], { timeout: 40000 });
  } catch (e) {
    throw new Error(`creating bucket ${bucket} failed: ${(e.stdout || e.stderr || e.message).trim().slice(0, 300)}`);
  }
}

// Deletion markers slow a used OSD down (RocksDB tombstones): compact it between repetitions so
// that a later repetition is not measured on an older store. Best effort, bounded.
export async function compactOsd(rgw) {
  const socket = path.join(rgw.dir, 'run', 'osd.0.asok');
  try {
    await run('ceph', ['--admin-daemon', socket, 'compact'], { timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

// the pids of RGW's daemons (monitor, OSD, radosgw), for the CPU they use during a section
export function rgwPids(rgw) {
  if (!rgw || rgw.stopped) return [];
  const pids = [];
  for (const d of ['mon', 'osd', 'rgw']) {
    const pid = Number(fs.readFileSync(path.join(rgw.dir, `${d}.pid`), { encoding: 'utf8', flag: 'r' }).trim());
    if (pid > 0) pids.push(pid);
  }
  return pids;
}
