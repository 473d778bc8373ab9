// Authentication for bench.mjs, both sides:
// - enlilAuthEnv: the files and REGISTRY_AUTH* variables that start enlil with htpasswd or token auth;
// - ClientAuth: what a docker client does against such a registry: on a 401 it reads the challenge;
//   Basic sends the credentials with every request; Bearer gets a token from the realm (Basic
//   credentials, service and scope) and caches it per scope, fetching it before the first request
//   of a scope, as docker does once it knows the realm.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const AUTH_MODES = ['none', 'htpasswd', 'token'];

/**
 * Writes an htpasswd file (bcrypt, cost 10 as `enlil users add`) with one user and, for token auth, an
 * EC P-256 signing key: without one each worker of `--workers N` would make its own and reject the
 * tokens of the others. Returns { env, user, password }.
 */
export async function enlilAuthEnv(mode, dir) {
  if (mode === 'none') return { env: { REGISTRY_AUTH: 'none' }, user: null, password: null };
  const { default: bcrypt } = await import('bcryptjs');
  const user = 'bench';
  const password = crypto.randomBytes(18).toString('base64url');
  const users = path.join(dir, 'users.htpasswd');
  fs.writeFileSync(users, `${user}:${bcrypt.hashSync(password, 10)}\n`, { mode: 0o600 });
  if (mode === 'htpasswd') {
    return { env: { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: users, REGISTRY_AUTH_HTPASSWD_REALM: 'enlil-bench' }, user, password };
  }
  const key = path.join(dir, 'token-key.pem');
  const pem = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  fs.writeFileSync(key, pem, { mode: 0o600 });
  return {
    env: { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: users, ENLIL_AUTH_TOKEN_SIGNINGKEY: key },
    user,
    password,
  };
}

// `Bearer realm="…",service="…",scope="…"` → { scheme: 'bearer', params: { realm, service, scope } }
export function parseChallenge(header) {
  const text = Array.isArray(header) ? header[0] : header;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(text || '');
  if (!m) return null;
  const params = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p; (p = re.exec(m[2])) !== null;) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

const REPO_PATH = /^\/v2\/(.+)\/(?:blobs\/uploads\/[^/]*|blobs\/[^/]+|manifests\/[^/]+|tags\/list|referrers\/[^/]+)$/;

/** The scopes a client asks for before this request: pull to read, pull,push to write, and pull on `from` for a mount. */
export function scopesFor(method, url) {
  const u = new URL(url);
  if (u.pathname === '/v2/_catalog') return ['registry:catalog:*'];
  const m = REPO_PATH.exec(u.pathname);
  if (!m) return [];
  const actions = method === 'DELETE' ? 'delete' : method === 'GET' || method === 'HEAD' ? 'pull' : 'pull,push';
  const scopes = [`repository:${m[1]}:${actions}`];
  const from = u.searchParams.get('from');
  if (from && u.searchParams.has('mount')) scopes.push(`repository:${from}:pull`);
  return scopes;
}

const TOKEN_MARGIN_MS = 10000; // refresh a token this long before it expires

export class ClientAuth {
  constructor(user, password) {
    this.basic = user != null ? 'Basic ' + Buffer.from(`${user}:${password ?? ''}`).toString('base64') : null;
    this.scheme = null; // known after the first challenge
    this.realm = null;
    this.service = null;
    this.tokens = new Map(); // scope key -> { token, expires }
    this.pending = new Map(); // scope key -> promise of a token: one fetch for requests in flight together
    this.extra = new Map(); // scope key -> scopes a challenge asked for beyond ours
  }

  // headers for a request to the registry; request(url, headers) sends the token request (counted by the caller)
  async headers(method, url, request) {
    if (this.scheme === 'basic') return { authorization: this.basic };
    if (this.scheme !== 'bearer') return {};
    const scopes = scopesFor(method, url);
    const token = await this.token(scopes, request);
    return { authorization: `Bearer ${token}` };
  }

  /** A 401's challenge: true when retrying with (new) credentials may help. */
  challenged(header, method, url) {
    if (!this.basic) return false;
    const ch = parseChallenge(header);
    if (!ch) return false;
    if (ch.scheme === 'basic') {
      const first = this.scheme !== 'basic';
      this.scheme = 'basic';
      return first; // the same credentials again would get the same answer
    }
    if (ch.scheme !== 'bearer' || !ch.params.realm) return false;
    this.scheme = 'bearer';
    this.realm = ch.params.realm;
    this.service = ch.params.service ?? null;
    // the token we sent (if any) expired or lacks a scope: drop it, and ask for what the challenge names too
    const key = scopeKey(scopesFor(method, url));
    this.tokens.delete(key);
    if (ch.params.scope) this.extra.set(key, ch.params.scope.split(' ').filter(Boolean));
    return true;
  }

  cached(key) {
    const t = this.tokens.get(key);
    return t && t.expires > Date.now() ? t.token : null;
  }

  async token(scopes, request) {
    const key = scopeKey(scopes);
    // a push token also reads the repository, as docker reuses its push session's token for pulls
    const hit = this.cached(key) ?? (scopes.length === 1 && scopes[0].endsWith(':pull') ? this.cached(scopeKey([scopes[0] + ',push'])) : null);
    if (hit) return hit;
    if (!this.pending.has(key)) {
      const p = this.fetchToken([...scopes, ...(this.extra.get(key) || [])], request)
        .then((t) => { this.tokens.set(key, t); return t.token; })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return this.pending.get(key);
  }

  async fetchToken(scopes, request) {
    const u = new URL(this.realm);
    if (this.service) u.searchParams.set('service', this.service);
    for (const s of new Set(scopes)) u.searchParams.append('scope', s);
    const res = await request(u.href, { authorization: this.basic });
    if (res.status !== 200) throw new Error(`token realm ${u.origin}${u.pathname} -> ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
    let doc;
    try {
      doc = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new Error('token realm: answer is not JSON');
    }
    const token = doc.token || doc.access_token;
    if (typeof token !== 'string' || !token) throw new Error('token realm: no token in the answer');
    const lifetime = (Number(doc.expires_in) > 0 ? Number(doc.expires_in) : 60) * 1000; // the spec's default: 60 s
    return { token, expires: Date.now() + Math.max(lifetime - TOKEN_MARGIN_MS, lifetime / 2) };
  }
}

const scopeKey = (scopes) => scopes.slice().sort().join(' ');
