/**
 * @module Configuration: one zod schema; defaults ← YAML/JSON file ← environment.
 * distribution's environment names are accepted, mapped by an explicit table (not reflection).
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'

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
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    accesslog: z.strictObject({ disabled: bool.default(false) }).prefault({}),
  }).prefault({}),
  storage: z.strictObject({
    driver: z.enum(['filesystem']).default('filesystem'),
    filesystem: z.strictObject({ rootdirectory: z.string().min(1).default('./data') }).prefault({}),
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
  limits: z.strictObject({
    /** Manifest bodies above this get 413. */
    manifestsize: size.default(4 * 1024 * 1024),
  }).prefault({}),
})

export type Config = z.output<typeof configSchema>

/** Environment variable → config path. distribution's names where they exist. */
export const ENVIRONMENT: Record<string, string> = {
  REGISTRY_HTTP_ADDR: 'http.addr',
  REGISTRY_HTTP_HOST: 'http.host',
  REGISTRY_HTTP_DRAINTIMEOUT: 'http.draintimeout',
  REGISTRY_LOG_LEVEL: 'log.level',
  REGISTRY_LOG_ACCESSLOG_DISABLED: 'log.accesslog.disabled',
  REGISTRY_STORAGE: 'storage.driver',
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'storage.filesystem.rootdirectory',
  REGISTRY_STORAGE_DELETE_ENABLED: 'storage.delete.enabled',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'storage.maintenance.uploadpurging.enabled',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: 'storage.maintenance.uploadpurging.age',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: 'storage.maintenance.uploadpurging.interval',
  ENLIL_LIMITS_MANIFESTSIZE: 'limits.manifestsize',
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
  for (const [name, path] of Object.entries(ENVIRONMENT)) {
    const value = env[name]
    if (value !== undefined && value !== '') setPath(raw, path, value)
  }
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
