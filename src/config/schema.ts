/**
 * @module The configuration's one zod schema: every option, its default and its documentation
 * (README's table is rendered from it, doc.ts). Read by load.ts; environment.ts names the variables.
 */
import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { parseDuration, parseSize } from './units.js'
import { aclSchema } from '../auth/acl.js'
import { parseNetwork } from '../http/client-address.js'

/** A duration: "90s", "30m", "168h", "1h30m", or milliseconds; parsed to milliseconds. */
export const duration = z.union([z.number().nonnegative(), z.string()], { error: 'expected a duration such as 30s, 10m or 168h' }).transform((v, ctx) => {
  const ms = parseDuration(v)
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (examples: 90s, 30m, 168h, 1h30m)` })
    return z.NEVER
  }
  return ms
})

/** A size: "4MiB", "512KiB", or bytes; parsed to bytes. */
export const size = z.union([z.number().int().positive(), z.string()], { error: 'expected a size such as 4MiB or a number of bytes' }).transform((v, ctx) => {
  const bytes = parseSize(v)
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (examples: 4194304, 4MiB, 512KiB)` })
    return z.NEVER
  }
  return bytes
})

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])], { error: 'expected true or false' }).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes')

const address = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port or :port, e.g. ":5000" or "127.0.0.1:5000"')
/** Addresses or CIDR networks: a YAML list, or a comma-separated string (the environment). */
const networkList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((e) => e.trim()).filter(Boolean) : v),
  z.array(z.string().refine((e) => parseNetwork(e) !== undefined, { error: (issue) => `not an IP address or network (e.g. 203.0.113.0/24): ${String(issue.input)}` })),
).default([])

/**
 * How an option is documented (README's table, rendered by doc.ts): `description` is the
 * meaning; `defaultText` replaces a default that is computed or absent; `envText` adds to the
 * environment names the tables below give.
 */
export type OptionDoc = { description: string; defaultText?: string; envText?: string }
const doc = (description: string, more: Omit<OptionDoc, 'description'> = {}): OptionDoc => ({ description, ...more })
// ── Garbage collection and retention ──
/** A glob (`*` never crosses `/`) or an anchored regex written `/…/`, as in the ACL. */
const retentionPattern = z.string().min(1).refine((p) => {
  if (!(p.length >= 2 && p.startsWith('/') && p.endsWith('/'))) return true
  try {
    new RegExp(p.slice(1, -1))
    return true
  } catch {
    return false
  }
}, 'not a valid regular expression')

const retentionPolicySchema = z.strictObject({
  repositories: retentionPattern,
  tags: retentionPattern.optional(),
  keep: z.array(retentionPattern).default([]),
  keeplast: z.coerce.number().int('expected a whole number of tags').nonnegative().optional(),
  olderthan: duration.optional(),
}).refine((p) => p.keeplast !== undefined || p.olderthan !== undefined, 'a retention policy needs keeplast, olderthan or both (else it removes nothing or everything)')
// ── end of garbage collection and retention ──

// ── Pull-through cache ──
/** A prefix of repository names: path components as in the name grammar. */
const mirrorPrefix = z.string().regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/, 'expected a repository name prefix such as hub or mirrors/ghcr')

/** The name of an environment variable. */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable such as GHCR_TOKEN')

const upstreamSchema = z.strictObject({
  prefix: mirrorPrefix,
  url: z.url({ protocol: /^https?$/ }),
  username: z.string().optional(),
  password: z.string().optional(),
  /** The names of environment variables holding the account (a secret store's variables rather than the file): read once at start. */
  usernameenv: envName.optional(),
  passwordenv: envName.optional(),
  /** How long a tag's digest is believed before the upstream is asked again. */
  ttl: duration.default(10 * 60_000),
  /** Also answer docker's `registry-mirrors` requests (`/v2/library/busybox/…`, no prefix) for names no local repository has. */
  registrymirror: bool.default(false),
  /** Single names get `library/` (Docker Hub's official images); default: when the URL is Docker Hub's. */
  library: bool.optional(),
  /** How long the upstream may take to start answering before it counts as down. */
  timeout: duration.default(15_000),
})
// ── end of pull-through cache ──

export const configSchema = z.strictObject({
  version: z.union([z.string(), z.number()]).optional().meta(doc('accepted and ignored: distribution\'s files start with `version: 0.1`')),
  http: z.strictObject({
    addr: address.default(':5000').meta(doc('where to listen (`host:port` or `:port`)')),
    host: z.url({ protocol: /^https?$/ }).optional().meta(doc('public base URL for `Location` headers, e.g. `https://registry.example.com`; without it, the request\'s `Host` (and `X-Forwarded-Proto`/`X-Forwarded-Host`)', { defaultText: 'from the request' })),
    draintimeout: duration.default(60_000).meta(doc('on SIGTERM/SIGINT: stop accepting, let in-flight requests finish this long, then close')),
    workers: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(64)], { error: 'expected a whole number of processes from 1 to 64, or auto' })
      .prefault('auto')
      .transform((n) => (n === 'auto' ? Math.min(availableParallelism(), 64) : n))
      .meta(doc('processes sharing the port (node:cluster): `auto` is one per core, `1` serves in one process; a worker that dies is replaced; `kill -HUP <primary>` replaces the workers one at a time (a changed config file or a new build, with no refused request; an invalid config is refused and the workers keep running). In token mode without a configured key, the primary generates one for all workers', { envText: 'or `--workers N`', defaultText: '`auto`' })),
    trustedproxies: networkList.meta(doc('the proxies whose `X-Forwarded-For` (and fly.io\'s `Fly-Client-IP`) is believed, as addresses or networks: `127.0.0.1` for an nginx or Caddy on the same host, `172.16.0.0/12` for fly.io\'s proxy, `[203.0.113.0/24, "2001:db8::/32"]` for a CDN; a comma-separated list in the environment. The client is the first `X-Forwarded-For` entry from the right that is not one of them. None by default: the client is the connection\'s address, also on loopback or a private network, whatever headers it sends', { defaultText: 'none' })),
    // A header name as HTTP defines a token; values without line breaks (no response splitting).
    headers: z.record(
      z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name'),
      z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v])).pipe(z.array(z.string().regex(/^[^\r\n\0]*$/, 'a header value cannot hold a line break'))),
    ).default({}).meta(doc('extra headers on every response, as distribution\'s `http.headers` (`{X-Content-Type-Options: [nosniff]}`); a header a response sets itself wins', { defaultText: 'none', envText: '(file only)' })),
    tls: z.strictObject({
      certificate: z.string().min(1).optional().meta(doc('PEM certificate (chain) file: with `key`, enlil serves HTTPS itself (a bare server without a proxy)')),
      key: z.string().min(1).optional().meta(doc('PEM private key file of that certificate')),
    }).prefault({}),
    // --- operations (metrics): distribution's debug listener names, same meaning as metrics.addr ---
    debug: z.strictObject({
      addr: address.optional().meta(doc('distribution\'s debug listener: with `prometheus.enabled`, where metrics are served (same as `metrics.addr`)')),
      prometheus: z.strictObject({
        enabled: bool.default(false).meta(doc('distribution\'s switch for metrics on the debug listener')),
        path: z.string().regex(/^\/\S*$/).default('/metrics').meta(doc('the metrics path on the debug listener')),
      }).prefault({}),
    }).prefault({}),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info').meta(doc('`debug`, `info`, `warn`, `error`; JSON lines on stdout')),
    accesslog: z.strictObject({
      disabled: bool.default(false).meta(doc('`true` turns off the line per request (method, path, status, ms, request id)')),
    }).prefault({}),
  }).prefault({}),
  storage: z.strictObject({
    driver: z.enum(['filesystem', 's3']).default('filesystem').meta(doc('`filesystem` or `s3` (a config file with a `storage.s3` section and no `filesystem` one means `s3`, as in distribution)')),
    filesystem: z.strictObject({
      rootdirectory: z.string().min(1).default('./data').meta(doc('the folder; distribution\'s layout under `docker/registry/v2`')),
      fsync: bool.default(true).meta(doc('blob, manifest and tag bytes reach the disk (fdatasync) before they become visible, as distribution does; `false` trades crash safety for speed')),
      metadata: z.enum(['auto', 'sync', 'async']).default('auto').meta(doc('how stats and small reads and writes run: `sync` on the event loop (fastest on a local disk), `async` on the thread pool (a network mount), `auto` sync until calls turn slow')),
    }).prefault({}),
    s3: z.strictObject({
      bucket: z.string().min(1).optional().meta(doc('required with `s3`')),
      accesskey: z.string().optional().meta(doc('never logged', { defaultText: 'SDK\'s default chain' })),
      secretkey: z.string().optional().meta(doc('never logged', { defaultText: 'SDK\'s default chain' })),
      region: z.string().min(1).default('us-east-1').meta(doc('`auto` on Tigris')),
      regionendpoint: z.string().regex(/^(https?:\/\/)?[^\s/]+(\/.*)?$/, 'expected a URL such as https://t3.storage.dev').optional().meta(doc('e.g. `https://t3.storage.dev` (Tigris), `http://127.0.0.1:9000` (MinIO)', { defaultText: 'AWS' })),
      forcepathstyle: bool.default(false).meta(doc('path-style URLs (MinIO, RGW); Tigris wants virtual-hosted (the default)')),
      secure: bool.default(true).meta(doc('scheme for a `regionendpoint` given without one')),
      v4auth: bool.default(true).meta(doc('accepted for compatibility; `false` is refused (SigV4 only)')),
      chunksize: size.default(10 * 1024 * 1024).meta(doc('largest multipart part, at least 5 MiB; memory per upload is about 4 parts')),
      rootdirectory: z.string().default('').meta(doc('key prefix, as in distribution', { defaultText: '(bucket root)' })),
      encrypt: bool.default(false).meta(doc('server-side encryption (AES256) of every object')),
      equalparts: bool.default(false).meta(doc('`true` for stores that want every multipart part but the last of one size (Cloudflare R2): a chunk\'s last bytes short of a part wait in a small tail object for the next chunk. `false`: a chunk of 5 MiB or more ends on a part of its own (fewer requests, no tail)')),
      tigrisrename: z.enum(['auto', 'true', 'false']).default('auto').meta(doc('completing an upload renames its bytes to their digest\'s key in metadata (`X-Tigris-Rename: true` on the copy, constant time) instead of copying them; `auto`: on when `regionendpoint` is a Tigris host (`*.tigris.dev`, `*.storage.dev`). A store that ignores the header copies, which stays correct')),
      tigrisconsistent: bool.default(false).meta(doc('Tigris buckets served from several regions: `X-Tigris-Consistent: true` on tag, link, manifest-link, upload-state requests and listings, so every region reads what another just wrote. Costs a round trip to the bucket\'s leader region on each of them; blob bytes are not affected')),
    }).prefault({}),
    redirect: z.strictObject({
      disable: bool.default(false).meta(doc('on S3, blob GETs answer 307 to a presigned URL (bytes come from the store, not through enlil); `true`: enlil streams them, with Range')),
    }).prefault({}),
    delete: z.strictObject({
      enabled: bool.default(true).meta(doc('`false`: DELETE of blobs and manifests answers 405 `UNSUPPORTED`')),
    }).prefault({}),
    maintenance: z.strictObject({
      uploadpurging: z.strictObject({
        enabled: bool.default(true).meta(doc('delete abandoned upload sessions')),
        age: duration.default(168 * 3600_000).meta(doc('... older than this')),
        interval: duration.default(24 * 3600_000).meta(doc('... checked this often')),
      }).prefault({}),
      /** How long a writer that died can hold its upload session (upload-writers.ts). */
      uploadwriterlease: duration.default(30_000).refine((ms) => ms >= 1000, 'must be at least 1s').meta(doc('a PATCH or PUT holds its upload session alone (another writer gets 416), renewing its hold while it runs; a writer that died (kill -9) blocks the session at most this long. Instances\' clocks must agree to within half of it')),
      // --- operations (read-only): distribution's name; `enlil readonly on` also switches it at runtime ---
      readonly: z.strictObject({
        enabled: bool.default(false).meta(doc('read-only mode: pulls work, writes get 405 `UNSUPPORTED` (also switched at runtime by `enlil readonly on`)')),
      }).prefault({}),
    }).prefault({}),
  }).prefault({}),
  auth: z.strictObject({
    mode: z.enum(['none', 'htpasswd', 'token']).optional().meta(doc('`none`, `htpasswd` or `token` (a file with an `auth.htpasswd` or `auth.token` section means that mode, as in distribution)', { defaultText: '`none`' })),
    htpasswd: z.strictObject({
      realm: z.string().min(1).default('enlil').meta(doc('the realm of the `Basic` challenge')),
      path: z.string().min(1).optional().meta(doc('an htpasswd file of bcrypt hashes (`htpasswd -B`); changes take effect within a second')),
    }).optional(),
    token: z.strictObject({
      realm: z.url({ protocol: /^https?$/ }).optional().meta(doc('where challenges send clients (set it behind a proxy that rewrites paths)', { defaultText: '`<this registry>/auth/token`' })),
      path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*[A-Za-z0-9._~-]$/, 'expected an absolute path such as /auth/token').refine((p) => !p.startsWith('/v2'), 'must not be under /v2').default('/auth/token').meta(doc('where enlil serves its token endpoint')),
      service: z.string().min(1).default('enlil').meta(doc('the `service` of challenges and the `aud` of tokens')),
      issuer: z.string().min(1).default('enlil').meta(doc('the `iss` of tokens')),
      expiration: duration.default(5 * 60_000).meta(doc('lifetime of access tokens; refresh tokens (`offline_token`) last 30 days')),
      signingkey: z.string().min(1).optional().meta(doc('PEM private key file (EC P-256 → ES256, RSA → RS256, Ed25519 → EdDSA); without one, a key is generated at start (tokens die with the process; several instances need a shared key)', { defaultText: 'generated' })),
      signingkeyb64: z.string().min(1).optional().meta(doc('the same PEM, base64-encoded (for platforms that pass secrets as variables); never logged')),
      certificate: z.string().min(1).optional().meta(doc('PEM certificate (chain) file of the signing key: tokens then carry `x5c`, so a distribution that trusts the CA verifies enlil\'s tokens too')),
      certificateb64: z.string().min(1).optional().meta(doc('the same certificate, base64-encoded')),
      users: z.string().min(1).optional().meta(doc('token mode: the accounts that can get tokens: an htpasswd file (bcrypt), or docker_auth\'s users YAML (`users: {alice: {password: <bcrypt>, labels: {group: [ops]}}}`), whose labels the ACL can match')),
      usersb64: z.string().min(1).optional().meta(doc('the same accounts file\'s content, base64-encoded, for platforms that pass secrets as variables (`fly secrets set`); read once at start; never logged')),
      s3keys: bool.default(false).meta(doc('token mode on the s3 store: accounts are S3 key pairs (user = access key ID, password = secret) that may read the bucket, checked against the endpoint and cached for 5 minutes')),
      rootcertbundle: z.string().min(1).optional().meta(doc('trust an external issuer instead (with `realm`, `service`, `issuer`): PEM certificates of its signing keys, as a file, the PEM text itself, or that text base64-encoded (open-balena\'s form)')),
      jwks: z.string().min(1).optional().meta(doc('trust an external issuer\'s JWKS (URL or file)')),
    }).optional(),
    acl: aclSchema.optional().meta(doc('docker_auth-style rules, first match wins (see "htpasswd auth"); without them every authenticated user may do everything')),
  }).prefault({}),
  limits: z.strictObject({
    manifestsize: size.default(4 * 1024 * 1024).meta(doc('larger manifest bodies get 413')),
  }).prefault({}),

  // --- operations: quotas, metrics, notifications (README: "Operating enlil") ---
  /** Limits on stored bytes, enforced approximately across instances (see registry/quotas.ts). */
  quotas: z.strictObject({
    /** Bytes under blobs/ (every repository, deduplicated). */
    total: size.optional().meta(doc('limit on the bytes under `blobs/` (all repositories, deduplicated)')),
    /** First matching pattern wins; each matching repository gets the limit on its own. */
    repositories: z.array(z.strictObject({
      match: z.string().min(1),
      limit: size,
    })).default([]).meta(doc('`[{match: "team-a/*", limit: 1GiB}]`: first matching pattern (glob or `/regex/`, as in the ACL) wins; each matching repository gets the limit')),
    /** How long a computed usage is trusted before it is read from the store again. */
    refresh: duration.default(60_000).meta(doc('how long a computed usage is trusted before it is read from the store again')),
  }).prefault({}),
  /** Processes of one registry forwarding upload requests to the one holding the upload's live digest (http/forwarding.ts). */
  cluster: z.strictObject({
    secret: z.string().min(16, 'use at least 16 characters (e.g. `openssl rand -hex 32`)').optional().meta(doc('shared by all instances on the store: signs the upload requests one instance forwards to another (the one that holds the upload\'s running digest, so nothing is read back from the store). Unset: each instance finishes uploads alone, reading back what another instance received. `--workers N` generates one for its workers when unset; never logged', { defaultText: 'none' })),
    addr: address.optional().meta(doc('where this process listens for requests forwarded by the others (`host:port`; port 0 picks a free one, announced in the store): an address the other instances reach and clients do not, e.g. fly.io\'s private network', { defaultText: '`advertise`:0, else 127.0.0.1:0' })),
    advertise: z.string().regex(/^[0-9A-Za-z.:-]+$/, 'expected a host name or an IP address').optional().meta(doc('the host (name or IP) the other instances use to reach `addr`', { defaultText: '`FLY_PRIVATE_IP` on fly.io, else the host of `addr`' })),
    lease: duration.default(30_000).meta(doc('how long an announcement (`_enlil/instances/<id>` in the store) stays valid; renewed every third of it. After an instance died, its uploads are finished elsewhere with a read-back')),
  }).prefault({}),
  /** Prometheus text at `path`: on its own listener (`addr`), or on the main port when `public`. */
  metrics: z.strictObject({
    addr: address.optional().meta(doc('serve Prometheus metrics on this listener, e.g. `127.0.0.1:5001` (distribution\'s `http.debug.addr` with `http.debug.prometheus.enabled: true` does the same)')),
    public: bool.default(false).meta(doc('serve them on the main port too, **without authentication**')),
    path: z.string().regex(/^\/\S*$/, 'expected an absolute path such as /metrics').default('/metrics').meta(doc('the metrics path')),
  }).prefault({}),
  /** Webhooks in distribution's format; delivery is best-effort (see observe/notifications.ts). */
  notifications: z.strictObject({
    /** Accepted for compatibility with distribution's files (`includereferences`); not used. */
    events: z.record(z.string(), z.unknown()).optional().meta(doc('accepted for compatibility with distribution\'s files (`includereferences`); not used')),
    endpoints: z.array(z.strictObject({
      name: z.string().min(1),
      url: z.url({ protocol: /^https?$/ }),
      disabled: bool.default(false),
      /** distribution: `map[string][]string`; a single string is accepted too. */
      headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
      timeout: duration.default(5_000),
      /** Consecutive failures after which the endpoint's failure is logged as a warning. */
      threshold: z.coerce.number().int().min(1).default(5),
      /** First retry delay; doubles on each failure up to maxbackoff. */
      backoff: duration.default(1_000),
      maxbackoff: duration.default(60_000),
      /** Events waiting for this endpoint; beyond it the oldest is dropped (with a warning). */
      queuesize: z.coerce.number().int().min(1).max(1_000_000).default(1000),
      ignoredmediatypes: z.array(z.string()).default([]),
      ignore: z.strictObject({
        mediatypes: z.array(z.string()).default([]),
        actions: z.array(z.enum(['push', 'pull', 'delete', 'mount'])).default([]),
      }).prefault({}),
    })).default([]).meta(doc('webhooks in distribution\'s format (see "Operating enlil")')),
  }).prefault({}),
  // ── Garbage collection and retention (src/registry/gc.ts, src/registry/retention.ts) ──
  gc: z.strictObject({
    /** Blobs and manifests written less than this long ago are never collected (pushes in progress). */
    grace: duration.default(3600_000).meta(doc('blobs and manifests written less than this long ago are never collected (pushes in progress)')),
    /** Also remove manifests no tag reaches (never children, subjects or referrers of kept ones). */
    deleteuntagged: bool.default(false).meta(doc('GC also removes manifests no tag reaches (never children, subjects or referrers of kept ones)')),
    schedule: z.strictObject({
      /** Run GC inside `serve` this often (one worker runs it); 0, the default, never. */
      interval: duration.default(0).meta(doc('run GC inside `serve` this often (one worker runs it); `0`: never', { defaultText: '`0` (off)' })),
    }).prefault({}),
  }).prefault({}),
  /** Which tags go, per repository pattern; the first matching policy applies. Applied by GC. */
  retention: z.array(retentionPolicySchema).default([]).meta(doc('which tags GC removes, per repository pattern, first match applies: `[{repositories: "ci/*", tags: "pr-*", olderthan: 14d, keeplast: 5, keep: ["latest"]}]` (see "Garbage collection and retention")', { defaultText: '—' })),
  // ── end of garbage collection and retention ──
  // ── web UI (src/ui) ──
  ui: z.strictObject({
    enabled: bool.default(true).meta(doc('serve the web UI at `ui.path` (and send browsers that open `/` there): browse, inspect and delete with the same accounts and rights as the API')),
    path: z.string().regex(/^\/[A-Za-z0-9._~-]+$/, 'expected one path segment such as /ui').refine((p) => !['/v2', '/healthz', '/readyz', '/metrics'].includes(p), 'is taken by the API').default('/ui').meta(doc('where the web UI is served')),
  }).prefault({}),
  // ── end of web UI ──
  // ── Pull-through cache (src/mirror/) ──
  mirror: z.strictObject({
    upstreams: z.array(upstreamSchema).default([]).meta(doc('registries mirrored under a prefix of this one: `[{prefix: hub, url: https://registry-1.docker.io, ttl: 10m, registrymirror: true}]`; an account as `username`/`password`, or from the environment with `usernameenv`/`passwordenv` (the names of the variables holding them) (see "Mirror Docker Hub")', { defaultText: 'none' })),
    maxsize: size.optional().meta(doc('GC evicts mirrored repositories, least recently pulled first, until what they hold fits in this many bytes; pushed repositories are never evicted', { defaultText: 'no limit' })),
    evictafter: duration.default(0).meta(doc('GC evicts mirrored repositories not pulled for this long; `0`: never', { defaultText: '`0` (never)' })),
  }).prefault({}),
  /** distribution's proxy mode: the whole registry mirrors one upstream (mirror/ reads it as one upstream without a prefix). */
  proxy: z.strictObject({
    remoteurl: z.url({ protocol: /^https?$/ }).optional().meta(doc('distribution\'s proxy mode: the whole registry mirrors this registry (one upstream without a prefix; pushes are refused)')),
    username: z.string().optional().meta(doc('the upstream account of `remoteurl`')),
    password: z.string().optional().meta(doc('its password; never logged')),
    ttl: duration.optional().meta(doc('distribution\'s cache expiry: repositories not pulled for this long are evicted by GC (as `mirror.evictafter`)', { defaultText: 'never' })),
  }).prefault({}),
  // ── end of pull-through cache ──
})

  .superRefine((config, ctx) => {
    const tls = config.http.tls
    if (Boolean(tls.certificate) !== Boolean(tls.key)) {
      ctx.addIssue({ code: 'custom', path: ['http', 'tls', tls.certificate ? 'key' : 'certificate'], message: 'TLS needs both a certificate and its key (REGISTRY_HTTP_TLS_CERTIFICATE, REGISTRY_HTTP_TLS_KEY)' })
    }
    if (config.auth.mode === 'htpasswd' && !config.auth.htpasswd?.path) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'htpasswd', 'path'], message: 'required with htpasswd auth (REGISTRY_AUTH_HTPASSWD_PATH): an htpasswd file of bcrypt hashes' })
    }
    if (config.auth.mode === 'token') {
      const token = config.auth.token
      const external = Boolean(token?.rootcertbundle || token?.jwks)
      if (token?.s3keys && config.storage.driver !== 's3') ctx.addIssue({ code: 'custom', path: ['auth', 'token', 's3keys'], message: 'needs the s3 store: the key pairs are checked against its bucket' })
      if (token?.users && token.usersb64) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'usersb64'], message: 'give the accounts once: users (a file) or usersb64 (its content), not both' })
      if (!external && !token?.users && !token?.usersb64 && !token?.s3keys) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'users'], message: 'required with token auth (ENLIL_AUTH_TOKEN_USERS): an htpasswd file of the accounts, or S3 key pairs as accounts (ENLIL_AUTH_TOKEN_S3KEYS=true); or trust an external issuer with rootcertbundle (REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE) or jwks' })
      if (external && !token?.realm) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'realm'], message: 'required when trusting an external issuer (REGISTRY_AUTH_TOKEN_REALM): where clients get tokens' })
      if (external && (token?.users || token?.usersb64)) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'users'], message: 'enlil issues no tokens when it trusts an external issuer: leave users out' })
      // Trusting another token server and being one are exclusive: say so rather than silently dropping half.
      const trusting = token?.rootcertbundle ? 'auth.token.rootcertbundle (REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE)' : 'auth.token.jwks (ENLIL_AUTH_TOKEN_JWKS)'
      const issuing: [string, unknown][] = [
        ['auth.token.s3keys (ENLIL_AUTH_TOKEN_S3KEYS)', token?.s3keys], ['auth.token.signingkey (ENLIL_AUTH_TOKEN_SIGNINGKEY)', token?.signingkey],
        ['auth.token.signingkeyb64 (JWT_KEY_B64)', token?.signingkeyb64],
      ]
      for (const [option, set] of issuing) {
        if (external && set) ctx.addIssue({ code: 'custom', path: ['auth', 'token'], message: `${trusting} trusts an external token server, but ${option} belongs to enlil's own token service: keep one (unset ${trusting.split(' ')[0]} to let enlil issue the tokens)` })
      }
    }
    // pull-through cache
    const upstreams = config.mirror.upstreams
    upstreams.forEach((u, i) => {
      const other = upstreams.findIndex((o, j) => j !== i && (o.prefix === u.prefix || o.prefix.startsWith(`${u.prefix}/`)))
      if (other >= 0) ctx.addIssue({ code: 'custom', path: ['mirror', 'upstreams', i, 'prefix'], message: `prefix ${u.prefix} overlaps the prefix ${upstreams[other]!.prefix}: each repository name belongs to one upstream` })
      if (u.username !== undefined && u.usernameenv) ctx.addIssue({ code: 'custom', path: ['mirror', 'upstreams', i, 'usernameenv'], message: 'give the username once: username or usernameenv (the variable holding it), not both' })
      if (u.password !== undefined && u.passwordenv) ctx.addIssue({ code: 'custom', path: ['mirror', 'upstreams', i, 'passwordenv'], message: 'give the password once: password or passwordenv (the variable holding it), not both' })
      const user = Boolean(u.username || u.usernameenv)
      if (user !== Boolean(u.password || u.passwordenv)) ctx.addIssue({ code: 'custom', path: ['mirror', 'upstreams', i, user ? 'password' : 'username'], message: 'username and password go together (each given as is, or by usernameenv/passwordenv)' })
    })
    if (upstreams.filter((u) => u.registrymirror).length > 1) ctx.addIssue({ code: 'custom', path: ['mirror', 'upstreams'], message: 'only one upstream can answer docker\'s registry-mirrors requests (registrymirror: true)' })
    if (config.proxy.remoteurl && upstreams.length > 0) ctx.addIssue({ code: 'custom', path: ['proxy', 'remoteurl'], message: 'proxy.remoteurl makes the whole registry a mirror: it can\'t be combined with mirror.upstreams (give that upstream a prefix there instead)' })
    // operations
    const debug = config.http.debug
    if (debug.prometheus.enabled && !debug.addr && !config.metrics.addr) ctx.addIssue({ code: 'custom', path: ['http', 'debug', 'addr'], message: 'required with http.debug.prometheus.enabled (REGISTRY_HTTP_DEBUG_ADDR): where metrics are served, e.g. 127.0.0.1:5001' })
    const names = config.notifications.endpoints.map((e) => e.name)
    names.forEach((n, i) => { if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['notifications', 'endpoints', i, 'name'], message: `endpoint name "${n}" is used twice` }) })
    if (config.storage.driver !== 's3') return
    const s3 = config.storage.s3
    if (!s3.bucket) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'bucket'], message: 'required with the s3 store (REGISTRY_STORAGE_S3_BUCKET or BUCKET_NAME)' })
    if (!s3.v4auth) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'v4auth'], message: 'only AWS Signature Version 4 is supported' })
    if (s3.chunksize < 5 * 1024 * 1024) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'chunksize'], message: 'must be at least 5 MiB (S3 refuses smaller multipart parts)' })
    if (Boolean(s3.accesskey) !== Boolean(s3.secretkey)) ctx.addIssue({ code: 'custom', path: ['storage', 's3', s3.accesskey ? 'secretkey' : 'accesskey'], message: 'accesskey and secretkey go together' })
  })

export type Config = z.output<typeof configSchema>
