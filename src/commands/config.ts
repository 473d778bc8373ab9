/** @module `enlil config check` (the effective settings, secrets masked) and `enlil config convert` (distribution's and docker_auth's configs → enlil's). */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { ConfigError, loadConfig } from '../config/load.js'
import { parseDotenv } from '../config/dotenv.js'
import { configFileIn, reportingConfigProblems } from './config-file.js'
import { convert } from '../config/convert.js'
import { unknownVariables, unknownVariableWarning } from '../config/environment.js'
import { configFileProblems } from '../server/preflight.js'

/** Option names whose values are secrets: shown as "***" by `config check`. */
const SECRET_KEYS = new Set(['secretkey', 'accesskey', 'signingkeyb64', 'certificateb64', 'usersb64', 'password'])

/** The effective configuration with secrets masked, for `enlil config check`. */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets)
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEYS.has(k) && v ? '***' : maskSecrets(v)]))
}

/** `enlil config check [CONFIG.yml]`: validates, and prints the effective settings with secrets masked. */
export function configCheck(args: string[]): Promise<number> {
  const file = configFileIn(args)
  return reportingConfigProblems(async () => {
    for (const name of unknownVariables(process.env)) console.error(`enlil: warning: ${unknownVariableWarning(name)}`)
    const config = loadConfig(process.env, file)
    // What serve would refuse at start (missing or malformed files) is refused here too.
    const problems = await configFileProblems(config)
    if (problems.length > 0) throw new ConfigError(problems)
    console.log(JSON.stringify(maskSecrets(config), null, 2))
    console.error(`enlil: configuration ${file ? `in ${file} ` : ''}is valid`)
    return 0
  })
}

/**
 * `enlil config convert`: distribution's config.yml and/or docker_auth's auth_config.yml → an enlil
 * config (stdout, or --out) and, from docker_auth, a users file next to it; notes on stderr.
 */
export async function configConvert(options: { distribution?: string; auth?: string; env?: string; out?: string; force: boolean }): Promise<number> {
  const force = options.force
  const read = (file: string | undefined): unknown => (file ? parseYaml(readFileSync(file, 'utf8')) : undefined)
  const out = options.out ? resolve(options.out) : undefined
  const usersPath = join(out ? dirname(out) : process.cwd(), 'users.yml')
  let result
  try {
    result = convert({ distribution: read(options.distribution), dockerAuth: read(options.auth), environment: options.env ? parseDotenv(readFileSync(options.env, 'utf8')) : undefined, usersPath })
  } catch (err) {
    console.error(`enlil: ${(err as Error).message.split('\n')[0]}`)
    return 1
  }
  const targets = [...(out ? [out] : []), ...result.files.map((f) => f.path)]
  const existing = targets.filter((t) => existsSync(t))
  if (existing.length > 0 && !force) {
    console.error(`enlil: ${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; remove, choose another --out, or --force`)
    return 1
  }
  const yaml = `# Converted by \`enlil config convert\` from ${[options.distribution, options.auth, options.env].filter(Boolean).join(' and ')}.\n${stringifyYaml(result.config)}`
  // --out /etc/enlil/enlil.yml on a machine without /etc/enlil yet.
  if (out) mkdirSync(dirname(out), { recursive: true })
  for (const file of result.files) {
    writeFileSync(file.path, file.content, { mode: 0o600 })
    console.error(`enlil: wrote ${file.path}`)
  }
  if (out) {
    writeFileSync(out, yaml)
    console.error(`enlil: wrote ${out}`)
  } else {
    process.stdout.write(yaml)
  }
  for (const note of result.notes) console.error(`note: ${note}`)
  if (out) {
    try {
      loadConfig({}, out)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const problem of err.problems) console.error(`enlil: the converted config needs attention: ${problem}`)
      return 1
    }
  }
  return 0
}
