/**
 * @module Loading the configuration: defaults ← YAML/JSON file ← environment, validated once by the
 * schema; every problem is reported, one line each (ConfigError).
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { type Config, configSchema } from './schema.js'
import { ENVIRONMENT, FALLBACK_ENVIRONMENT, looksLikeAuth, unknownVariables } from './environment.js'

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
  // As in distribution, whose variables create the section they name: REGISTRY_AUTH_TOKEN_REALM
  // alone means token auth (and its missing parts are reported), never auth silently off.
  const envSets = (prefixes: string[]) => Object.entries(ENVIRONMENT).some(([name]) => prefixes.some((p) => name.startsWith(p)) && env[name] !== undefined && env[name] !== '')
  if (getPath(raw, 'auth.mode') === undefined && envSets(['REGISTRY_AUTH_HTPASSWD_'])) setPath(raw, 'auth.mode', 'htpasswd')
  else if (getPath(raw, 'auth.mode') === undefined && (envSets(['REGISTRY_AUTH_TOKEN_', 'ENLIL_AUTH_TOKEN_']) || (env.JWT_KEY_B64 ?? '') !== '')) setPath(raw, 'auth.mode', 'token')
  if (problems.length > 0) throw new ConfigError(problems)

  const result = configSchema.safeParse(raw)
  if (result.success) {
    // Auth variables were given but none was understood: starting with auth off would expose the registry.
    const authLike = unknownVariables(env).filter(looksLikeAuth)
    if ((result.data.auth.mode ?? 'none') === 'none' && getPath(raw, 'auth.mode') === undefined && authLike.length > 0) {
      throw new ConfigError([`${authLike.join(', ')} look${authLike.length === 1 ? 's' : ''} like auth settings but ${authLike.length === 1 ? 'is not one of' : 'are not'} enlil's, so auth would be off: convert them (\`enlil config convert --env .env\`), use enlil's names (README, "Running it"), or set REGISTRY_AUTH=none to serve without auth`])
    }
    const missing = readUpstreamAccounts(result.data, env)
    if (missing.length > 0) throw new ConfigError(missing)
    return result.data
  }
  const envByPath = Object.fromEntries(Object.entries(ENVIRONMENT).map(([k, v]) => [v, k]))
  const messages = result.error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k].join('.')) : []
    if (keys.length > 0) return `unknown option${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`
    const path = issue.path.join('.')
    const fromEnv = envByPath[path] && env[envByPath[path]] !== undefined ? ` (from ${envByPath[path]})` : ''
    return `${path || '(root)'}${fromEnv}: ${issue.message}`
  })
  const hint = file ? foreignConfigHint(raw, file) : undefined
  throw new ConfigError(hint ? [...messages, hint] : messages)
}

/**
 * Mirror upstreams whose account is named by `usernameenv`/`passwordenv` get it from those
 * variables, read here once like every other setting (the values are never part of a message).
 * Returns a problem per variable that is unset or empty: pulling anonymously instead would hit the
 * upstream's anonymous rate limit or fail on private images, long after the start.
 */
function readUpstreamAccounts(config: Config, env: Record<string, string | undefined>): string[] {
  const problems: string[] = []
  config.mirror.upstreams.forEach((u, i) => {
    for (const field of ['username', 'password'] as const) {
      const name = u[`${field}env`]
      if (!name) continue
      const value = env[name]
      if (value === undefined || value === '') problems.push(`mirror.upstreams.${i}.${field}env: the variable ${name} is not set (it should hold the ${field} for ${u.url})`)
      else u[field] = value
    }
  })
  return problems
}

/**
 * One line for a file written for distribution or docker_auth, whose options enlil does not all
 * take as they are: which command converts it.
 */
function foreignConfigHint(raw: Record<string, unknown>, file: string): string | undefined {
  const distribution = ['health', 'redis', 'middleware', 'reporting', 'notifications', 'proxy', 'validation', 'compatibility'].some((k) => k in raw)
    || ['http.secret', 'http.headers', 'storage.cache', 'log.fields', 'log.formatter', 'auth.token.autoredirect', 'storage.s3.endpoint'].some((p) => getPath(raw, p) !== undefined)
  if (distribution) return `this looks like a distribution config: run \`enlil config convert --distribution ${file} --out enlil.yml\` and serve enlil.yml`
  if (['server', 'users'].some((k) => k in raw) && ('token' in raw || 'acl' in raw)) return `this looks like a docker_auth config: run \`enlil config convert --auth ${file} --out enlil.yml\` and serve enlil.yml`
  return undefined
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
