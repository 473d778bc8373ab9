/**
 * @module Configuration: one zod schema; defaults ← YAML/JSON file ← environment.
 * distribution's environment names are accepted, mapped by an explicit table (not reflection).
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { aclSchema } from './auth/acl.js'

const duration = z.union([z.number().nonnegative(), z.string()], { error: 'expected a duration such as 30s, 10m or 168h' }).transform((v, ctx) => {
  const ms = parseDuration(v)
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (examples: 90s, 30m, 168h, 1h30m)` })
    return z.NEVER
  }
  return ms
})

const size = z.union([z.number().int().positive(), z.string()], { error: 'expected a size such as 4MiB or a number of bytes' }).transform((v, ctx) => {
  const bytes = parseSize(v)
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (examples: 4194304, 4MiB, 512KiB)` })
    return z.NEVER
  }
  return bytes
})

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])], { error: 'expected true or false' }).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes')

const address = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port or :port, e.g. ":5000" or "127.0.0.1:5000"')

export const configSchema = z.strictObject({
  /** distribution's config files start with `version: 0.1`; accepted and ignored. */
  version: z.union([z.string(), z.number()]).optional(),
  http: z.strictObject({
    addr: address.default(':5000'),
    /** Public base URL used in Location headers (e.g. https://registry.example.com); else taken from the request. */
    host: z.url({ protocol: /^https?$/ }).optional(),
    /** Time allowed for in-flight requests to finish after SIGTERM. */
    draintimeout: duration.default(60_000),
    /** Processes sharing the port (node:cluster); 1 serves in this process. */
    workers: z.coerce.number().int('expected a whole number of processes').min(1).max(64).default(1),
    /** Serve HTTPS directly (a bare server with no proxy in front): PEM files. */
    tls: z.strictObject({
      certificate: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
    }).prefault({}),
    // --- operations (metrics): distribution's debug listener names, same meaning as metrics.addr ---
    debug: z.strictObject({
      addr: address.optional(),
      prometheus: z.strictObject({ enabled: bool.default(false), path: z.string().regex(/^\/\S*$/).default('/metrics') }).prefault({}),
    }).prefault({}),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    accesslog: z.strictObject({ disabled: bool.default(false) }).prefault({}),
  }).prefault({}),
  storage: z.strictObject({
    driver: z.enum(['filesystem', 's3']).default('filesystem'),
    filesystem: z.strictObject({ rootdirectory: z.string().min(1).default('./data') }).prefault({}),
    s3: z.strictObject({
      bucket: z.string().min(1).optional(),
      accesskey: z.string().optional(),
      secretkey: z.string().optional(),
      /** Tigris: `auto`. */
      region: z.string().min(1).default('us-east-1'),
      /** e.g. https://t3.storage.dev (Tigris) or http://127.0.0.1:9000 (MinIO); AWS when absent. */
      regionendpoint: z.string().regex(/^(https?:\/\/)?[^\s/]+(\/.*)?$/, 'expected a URL such as https://t3.storage.dev').optional(),
      forcepathstyle: bool.default(false),
      /** Only used to build the endpoint scheme when regionendpoint has none (distribution's option). */
      secure: bool.default(true),
      /** SigV4 is the only signature enlil speaks; `false` is refused. */
      v4auth: bool.default(true),
      /** Multipart part size (distribution's chunksize); at least 5 MiB. */
      chunksize: size.default(10 * 1024 * 1024),
      rootdirectory: z.string().default(''),
      encrypt: bool.default(false),
    }).prefault({}),
    /** Blob GETs on S3 answer 307 to a presigned URL unless disabled (distribution's storage.redirect.disable). */
    redirect: z.strictObject({ disable: bool.default(false) }).prefault({}),
    delete: z.strictObject({ enabled: bool.default(true) }).prefault({}),
    maintenance: z.strictObject({
      uploadpurging: z.strictObject({
        enabled: bool.default(true),
        /** Sessions older than this are deleted. */
        age: duration.default(168 * 3600_000),
        interval: duration.default(24 * 3600_000),
      }).prefault({}),
      // --- operations (read-only): distribution's name; `enlil readonly on` also switches it at runtime ---
      readonly: z.strictObject({ enabled: bool.default(false) }).prefault({}),
    }).prefault({}),
  }).prefault({}),
  auth: z.strictObject({
    /** none (the default, with a warning), or htpasswd; a file with an `auth.htpasswd` section means htpasswd. */
    mode: z.enum(['none', 'htpasswd', 'token']).optional(),
    htpasswd: z.strictObject({
      realm: z.string().min(1).default('enlil'),
      path: z.string().min(1).optional(),
    }).optional(),
    /** enlil issues Docker-spec bearer tokens itself at /auth/token. */
    token: z.strictObject({
      /** The token endpoint clients are sent to; by default enlil's own /auth/token on the request's host. */
      realm: z.url({ protocol: /^https?$/ }).optional(),
      /** Where enlil serves its token endpoint. */
      path: z.string().regex(/^\/[A-Za-z0-9._~\/-]*[A-Za-z0-9._~-]$/, 'expected an absolute path such as /auth/token').refine((p) => !p.startsWith('/v2'), 'must not be under /v2').default('/auth/token'),
      service: z.string().min(1).default('enlil'),
      issuer: z.string().min(1).default('enlil'),
      expiration: duration.default(5 * 60_000),
      /** PEM private key (EC P-256, RSA or Ed25519); without it a key is generated at every start. */
      signingkey: z.string().min(1).optional(),
      /** The same, base64-encoded (JWT_KEY_B64), for platforms that pass secrets as variables. */
      signingkeyb64: z.string().min(1).optional(),
      /** PEM certificate of the signing key: sent as x5c in every token, so distribution can verify them too. */
      certificate: z.string().min(1).optional(),
      /** The same, base64-encoded (JWT_CERT_B64). */
      certificateb64: z.string().min(1).optional(),
      /** htpasswd file (or docker_auth users YAML) of the accounts that can get tokens. */
      users: z.string().min(1).optional(),
      /** Accounts are S3 key pairs that may read the storage bucket (user = access key ID, password = secret). */
      s3keys: bool.default(false),
      /** Trust an external issuer instead (distribution's option): PEM certificates of its signing keys. */
      rootcertbundle: z.string().min(1).optional(),
      /** Trust an external issuer's JWKS (URL or file). */
      jwks: z.string().min(1).optional(),
    }).optional(),
    /** docker_auth-style rules, first match wins; without them every authenticated user may do everything. */
    acl: aclSchema.optional(),
  }).prefault({}),
  limits: z.strictObject({
    /** Manifest bodies above this get 413. */
    manifestsize: size.default(4 * 1024 * 1024),
  }).prefault({}),

  // --- operations: quotas, metrics, notifications (README: "Operating enlil") ---
  /** Limits on stored bytes, enforced approximately across instances (see registry/quotas.ts). */
  quotas: z.strictObject({
    /** Bytes under blobs/ (every repository, deduplicated). */
    total: size.optional(),
    /** First matching pattern wins; each matching repository gets the limit on its own. */
    repositories: z.array(z.strictObject({
      match: z.string().min(1),
      limit: size,
    })).default([]),
    /** How long a computed usage is trusted before it is read from the store again. */
    refresh: duration.default(60_000),
  }).prefault({}),
  /** Prometheus text at `path`: on its own listener (`addr`), or on the main port when `public`. */
  metrics: z.strictObject({
    addr: address.optional(),
    public: bool.default(false),
    path: z.string().regex(/^\/\S*$/, 'expected an absolute path such as /metrics').default('/metrics'),
  }).prefault({}),
  /** Webhooks in distribution's format; delivery is best-effort (see notifications.ts). */
  notifications: z.strictObject({
    /** Accepted for compatibility with distribution's files (`includereferences`); not used. */
    events: z.record(z.string(), z.unknown()).optional(),
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
    })).default([]),
  }).prefault({}),
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
      if (!external && !token?.users && !token?.s3keys) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'users'], message: 'required with token auth (ENLIL_AUTH_TOKEN_USERS): an htpasswd file of the accounts; or trust an external issuer with rootcertbundle or jwks' })
      if (external && !token?.realm) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'realm'], message: 'required when trusting an external issuer (REGISTRY_AUTH_TOKEN_REALM): where clients get tokens' })
      if (external && token?.users) ctx.addIssue({ code: 'custom', path: ['auth', 'token', 'users'], message: 'enlil issues no tokens when it trusts an external issuer: leave users out' })
    }
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

/** Where metrics are served: enlil's `metrics` section, else distribution's `http.debug` listener. */
export function metricsSettings(config: Config): { addr?: string; public: boolean; path: string } {
  if (config.metrics.addr || config.metrics.public) return config.metrics
  const debug = config.http.debug
  if (debug.prometheus.enabled && debug.addr) return { addr: debug.addr, public: false, path: debug.prometheus.path }
  return { public: false, path: config.metrics.path }
}

/** Environment variable → config path. distribution's names where they exist. */
export const ENVIRONMENT: Record<string, string> = {
  REGISTRY_HTTP_ADDR: 'http.addr',
  REGISTRY_HTTP_HOST: 'http.host',
  REGISTRY_HTTP_DRAINTIMEOUT: 'http.draintimeout',
  ENLIL_WORKERS: 'http.workers',
  REGISTRY_HTTP_TLS_CERTIFICATE: 'http.tls.certificate',
  REGISTRY_HTTP_TLS_KEY: 'http.tls.key',
  REGISTRY_LOG_LEVEL: 'log.level',
  REGISTRY_LOG_ACCESSLOG_DISABLED: 'log.accesslog.disabled',
  REGISTRY_STORAGE: 'storage.driver',
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'storage.filesystem.rootdirectory',
  REGISTRY_STORAGE_DELETE_ENABLED: 'storage.delete.enabled',
  REGISTRY_STORAGE_REDIRECT_DISABLE: 'storage.redirect.disable',
  REGISTRY_STORAGE_S3_BUCKET: 'storage.s3.bucket',
  REGISTRY_STORAGE_S3_ACCESSKEY: 'storage.s3.accesskey',
  REGISTRY_STORAGE_S3_SECRETKEY: 'storage.s3.secretkey',
  REGISTRY_STORAGE_S3_REGION: 'storage.s3.region',
  REGISTRY_STORAGE_S3_REGIONENDPOINT: 'storage.s3.regionendpoint',
  REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'storage.s3.forcepathstyle',
  REGISTRY_STORAGE_S3_SECURE: 'storage.s3.secure',
  REGISTRY_STORAGE_S3_V4AUTH: 'storage.s3.v4auth',
  REGISTRY_STORAGE_S3_CHUNKSIZE: 'storage.s3.chunksize',
  REGISTRY_STORAGE_S3_ROOTDIRECTORY: 'storage.s3.rootdirectory',
  REGISTRY_STORAGE_S3_ENCRYPT: 'storage.s3.encrypt',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'storage.maintenance.uploadpurging.enabled',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: 'storage.maintenance.uploadpurging.age',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: 'storage.maintenance.uploadpurging.interval',
  // operations
  REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'storage.maintenance.readonly.enabled',
  REGISTRY_HTTP_DEBUG_ADDR: 'http.debug.addr',
  REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'http.debug.prometheus.enabled',
  REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH: 'http.debug.prometheus.path',
  ENLIL_METRICS_ADDR: 'metrics.addr',
  ENLIL_METRICS_PUBLIC: 'metrics.public',
  ENLIL_QUOTAS_TOTAL: 'quotas.total',
  ENLIL_LIMITS_MANIFESTSIZE: 'limits.manifestsize',
  REGISTRY_AUTH: 'auth.mode',
  REGISTRY_AUTH_HTPASSWD_REALM: 'auth.htpasswd.realm',
  REGISTRY_AUTH_HTPASSWD_PATH: 'auth.htpasswd.path',
  REGISTRY_AUTH_TOKEN_REALM: 'auth.token.realm',
  REGISTRY_AUTH_TOKEN_SERVICE: 'auth.token.service',
  REGISTRY_AUTH_TOKEN_ISSUER: 'auth.token.issuer',
  REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: 'auth.token.rootcertbundle',
  ENLIL_AUTH_TOKEN_EXPIRATION: 'auth.token.expiration',
  ENLIL_AUTH_TOKEN_SIGNINGKEY: 'auth.token.signingkey',
  JWT_KEY_B64: 'auth.token.signingkeyb64',
  ENLIL_AUTH_TOKEN_CERTIFICATE: 'auth.token.certificate',
  JWT_CERT_B64: 'auth.token.certificateb64',
  ENLIL_AUTH_TOKEN_USERS: 'auth.token.users',
  ENLIL_AUTH_TOKEN_JWKS: 'auth.token.jwks',
  ENLIL_AUTH_TOKEN_PATH: 'auth.token.path',
  ENLIL_AUTH_TOKEN_S3KEYS: 'auth.token.s3keys',
}

/** What `fly storage create` (Tigris) sets: used when the REGISTRY_STORAGE_S3_* name is absent. */
export const FALLBACK_ENVIRONMENT: Record<string, string> = {
  BUCKET_NAME: 'storage.s3.bucket',
  AWS_ACCESS_KEY_ID: 'storage.s3.accesskey',
  AWS_SECRET_ACCESS_KEY: 'storage.s3.secretkey',
  AWS_ENDPOINT_URL_S3: 'storage.s3.regionendpoint',
  AWS_REGION: 'storage.s3.region',
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** Reads the optional file, overlays the environment, validates. Throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>, file?: string): Config {
  const problems: string[] = []
  let raw: Record<string, unknown> = {}
  if (file) {
    try {
      const text = readFileSync(file, 'utf8')
      const parsed: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) problems.push(`${file}: the top level must be a mapping of options`)
        else raw = parsed as Record<string, unknown>
      }
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  // distribution names the store by its section (`storage: { s3: {...} }`): a file doing so means s3.
  const fileNamesS3 = getPath(raw, 'storage.s3') !== undefined && getPath(raw, 'storage.filesystem') === undefined
  const fileNamesHtpasswd = getPath(raw, 'auth.htpasswd') !== undefined
  const fileNamesToken = getPath(raw, 'auth.token') !== undefined && !fileNamesHtpasswd
  for (const [name, path] of Object.entries(FALLBACK_ENVIRONMENT)) {
    const value = env[name]
    if (value !== undefined && value !== '' && getPath(raw, path) === undefined) setPath(raw, path, value)
  }
  for (const [name, path] of Object.entries(ENVIRONMENT)) {
    const value = env[name]
    if (value !== undefined && value !== '') setPath(raw, path, value)
  }
  if (fileNamesS3 && getPath(raw, 'storage.driver') === undefined) setPath(raw, 'storage.driver', 's3')
  if (fileNamesHtpasswd && getPath(raw, 'auth.mode') === undefined) setPath(raw, 'auth.mode', 'htpasswd')
  if (fileNamesToken && getPath(raw, 'auth.mode') === undefined) setPath(raw, 'auth.mode', 'token')
  if (problems.length > 0) throw new ConfigError(problems)

  const result = configSchema.safeParse(raw)
  if (result.success) return result.data
  const envByPath = Object.fromEntries(Object.entries(ENVIRONMENT).map(([k, v]) => [v, k]))
  throw new ConfigError(result.error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k].join('.')) : []
    if (keys.length > 0) return `unknown option${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`
    const path = issue.path.join('.')
    const fromEnv = envByPath[path] && env[envByPath[path]] !== undefined ? ` (from ${envByPath[path]})` : ''
    return `${path || '(root)'}${fromEnv}: ${issue.message}`
  }))
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let node: unknown = target
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let node = target
  for (const key of keys.slice(0, -1)) {
    const next = node[key]
    if (typeof next !== 'object' || next === null) node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[keys[keys.length - 1]!] = value
}

/** "90s", "30m", "168h", "1h30m", "250ms", or a number of milliseconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return v
  if (/^\d+$/.test(v.trim())) return Number(v.trim())
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  let total = 0
  let consumed = 0
  for (const m of v.trim().matchAll(re)) {
    total += Number(m[1]) * units[m[2]!]!
    consumed += m[0].length
  }
  return consumed > 0 && consumed === v.trim().length ? total : undefined
}

/** "4MiB", "512KiB", "1GiB", "4MB", or a number of bytes. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return v
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)?$/.exec(v.trim())
  if (!m) return undefined
  const units: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1e3, MB: 1e6, GB: 1e9, k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }
  return Math.floor(Number(m[1]) * units[m[2] ?? 'B']!)
}
