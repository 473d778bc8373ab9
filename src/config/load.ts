/**
 * @module Loading the configuration: defaults ← YAML/JSON file ← environment, validated once by the
 * schema; every problem is reported, one line each (ConfigError).
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { type Config, configSchema } from './schema.js'
import { ENVIRONMENT, FALLBACK_ENVIRONMENT } from './environment.js'

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
