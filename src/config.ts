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
  // ── Garbage collection and retention (src/registry/gc.ts, src/registry/retention.ts) ──
  gc: z.strictObject({
    /** Blobs and manifests written less than this long ago are never collected (pushes in progress). */
    grace: duration.default(3600_000),
    /** Also remove manifests no tag reaches (never children, subjects or referrers of kept ones). */
    deleteuntagged: bool.default(false),
    schedule: z.strictObject({
      /** Run GC inside `serve` this often (one worker runs it); 0, the default, never. */
      interval: duration.default(0),
    }).prefault({}),
  }).prefault({}),
  /** Which tags go, per repository pattern; the first matching policy applies. Applied by GC. */
  retention: z.array(retentionPolicySchema).default([]),
  // ── end of garbage collection and retention ──
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
    if (config.storage.driver !== 's3') return
    const s3 = config.storage.s3
    if (!s3.bucket) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'bucket'], message: 'required with the s3 store (REGISTRY_STORAGE_S3_BUCKET or BUCKET_NAME)' })
    if (!s3.v4auth) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'v4auth'], message: 'only AWS Signature Version 4 is supported' })
    if (s3.chunksize < 5 * 1024 * 1024) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'chunksize'], message: 'must be at least 5 MiB (S3 refuses smaller multipart parts)' })
    if (Boolean(s3.accesskey) !== Boolean(s3.secretkey)) ctx.addIssue({ code: 'custom', path: ['storage', 's3', s3.accesskey ? 'secretkey' : 'accesskey'], message: 'accesskey and secretkey go together' })
  })

export type Config = z.output<typeof configSchema>

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
  // Garbage collection.
  ENLIL_GC_GRACE: 'gc.grace',
  ENLIL_GC_DELETEUNTAGGED: 'gc.deleteuntagged',
  ENLIL_GC_SCHEDULE_INTERVAL: 'gc.schedule.interval',
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
