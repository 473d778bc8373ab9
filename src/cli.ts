/** @module The helper commands: `enlil users add`, `enlil keys generate`, `enlil config convert`. */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { ConfigError, loadConfig } from './config.js'
import { convert } from './convert.js'
import { generateKeyPairSync } from 'node:crypto'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import bcrypt from 'bcryptjs'
import { loadSigningKey } from './auth/token.js'
import type { StorageDriver } from './storage/driver.js'
import { readMarker, setReadOnly } from './registry/readonly.js'

/** Reads a password: the first line of stdin, or a prompt without echo on a terminal. */
async function readPassword(): Promise<string> {
  const muted = new Writable({ write: (_chunk, _enc, done) => done() })
  const tty = process.stdin.isTTY
  if (tty) process.stderr.write('Password: ')
  const rl = createInterface({ input: process.stdin, output: tty ? muted : undefined, terminal: tty })
  const line = await new Promise<string>((ok) => {
    rl.once('line', ok)
    rl.once('close', () => ok(''))
  })
  rl.close()
  if (tty) process.stderr.write('\n')
  return line
}

/** `enlil users add NAME --file F`: a bcrypt entry in an htpasswd file, replacing the user's old one. */
export async function usersAdd(args: string[]): Promise<number> {
  const fileIndex = args.indexOf('--file')
  const file = fileIndex >= 0 ? args[fileIndex + 1] : undefined
  const name = args.find((a, i) => !a.startsWith('-') && (fileIndex < 0 || i !== fileIndex + 1))
  if (!name || !file || !/^[^:\s]+$/.test(name)) {
    console.error('usage: enlil users add NAME --file HTPASSWD   (the password is read from stdin, or asked for)')
    return 2
  }
  const password = await readPassword()
  if (password.length < 8) {
    console.error('enlil: the password must have at least 8 characters')
    return 1
  }
  const entry = `${name}:${bcrypt.hashSync(password, 10)}`
  const existed = existsSync(file)
  const lines = existed ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith(`${name}:`)) : []
  writeFileSync(file, `${[...lines, entry].join('\n')}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  console.error(`${existed ? 'updated' : 'created'} ${file}: ${name}`)
  return 0
}

/** `enlil keys generate [--type ec|rsa|ed25519]`: a token signing key, PEM on stdout, its kid on stderr. */
export async function keysGenerate(args: string[]): Promise<number> {
  const typeIndex = args.indexOf('--type')
  const type = typeIndex >= 0 ? args[typeIndex + 1] : 'ec'
  let pem: string
  if (type === 'ec') pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  else if (type === 'rsa') pem = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  else if (type === 'ed25519') pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  else {
    console.error('usage: enlil keys generate [--type ec|rsa|ed25519] > token.pem')
    return 2
  }
  const key = await loadSigningKey(pem)
  process.stdout.write(pem)
  console.error(`${key.alg} key, kid ${key.kid}; base64 for JWT_KEY_B64: base64 -w0 < the file`)
  return 0
}

/**
 * `enlil readonly on|off|status [CONFIG]`: writes or removes the marker object in the store that
 * every instance on it checks (within a few seconds), so one command switches them all.
 */
export async function readOnlyCommand(args: string[], loadDriver: (file: string | undefined) => Promise<StorageDriver>, configured: (file: string | undefined) => boolean): Promise<number> {
  const [action, ...rest] = args
  const reasonIndex = rest.indexOf('--reason')
  const reason = reasonIndex >= 0 ? rest[reasonIndex + 1] : undefined
  const file = rest.find((a, i) => !a.startsWith('-') && (reasonIndex < 0 || i !== reasonIndex + 1))
  if (action !== 'on' && action !== 'off' && action !== 'status') {
    console.error('usage: enlil readonly on|off|status [CONFIG.yml] [--reason TEXT]')
    return 2
  }
  const driver = await loadDriver(file)
  if (action !== 'status') await setReadOnly(driver, action === 'on', reason)
  const marker = await readMarker(driver)
  const byConfig = configured(file)
  const state = byConfig ? 'on (storage.maintenance.readonly.enabled in the configuration)' : marker ? `on since ${marker.since}${marker.reason ? `: ${marker.reason}` : ''}` : 'off'
  console.log(`read-only: ${state}`)
  if (action !== 'status') console.error('every instance on this store follows within a few seconds')
  if (action === 'off' && byConfig) console.error('note: the configuration keeps this instance read-only; change storage.maintenance.readonly.enabled')
  return 0
}

/** Option names whose values are secrets: shown as "***" by `config check`. */
const SECRET_KEYS = new Set(['secretkey', 'accesskey', 'signingkeyb64', 'certificateb64', 'usersb64'])

/** The effective configuration with secrets masked, for `enlil config check`. */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets)
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEYS.has(k) && v ? '***' : maskSecrets(v)]))
}

const CONVERT_USAGE = 'usage: enlil config convert [--distribution config.yml] [--auth auth_config.yml] [--out enlil.yml] [--force]'

/**
 * `enlil config convert`: distribution's config.yml and/or docker_auth's auth_config.yml → an enlil
 * config (stdout, or --out) and, from docker_auth, a users file next to it; notes on stderr.
 */
export async function configConvert(args: string[]): Promise<number> {
  const options: Record<string, string> = {}
  let force = false
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--force') force = true
    else if (['--distribution', '--auth', '--out'].includes(arg) && args[i + 1]) options[arg.slice(2)] = args[++i]!
    else {
      console.error(`enlil: unexpected argument "${arg}"\n${CONVERT_USAGE}`)
      return 2
    }
  }
  if (!options.distribution && !options.auth) {
    console.error(CONVERT_USAGE)
    return 2
  }
  const read = (file: string | undefined): unknown => (file ? parseYaml(readFileSync(file, 'utf8')) : undefined)
  const out = options.out ? resolve(options.out) : undefined
  const usersPath = join(out ? dirname(out) : process.cwd(), 'users.yml')
  let result
  try {
    result = convert({ distribution: read(options.distribution), dockerAuth: read(options.auth), usersPath })
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
  const yaml = `# Converted by \`enlil config convert\` from ${[options.distribution, options.auth].filter(Boolean).join(' and ')}.\n${stringifyYaml(result.config)}`
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
