/**
 * @module The files a config names, read and parsed as `serve` will read them (TLS certificate and
 * key, htpasswd and users files, token keys, certificate bundles, a JWKS file), so that
 * `enlil config check` refuses what `serve` would refuse, and every problem names its option.
 */
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { Config } from '../config/schema.js'
import { ENVIRONMENT } from '../config/environment.js'
import { parseAccounts } from '../auth/accounts.js'
import { loadSigningKey } from '../auth/token.js'
import { bundleLabel, bundleText, splitPemBundle } from '../auth/external-issuer.js'

const envOf = Object.fromEntries(Object.entries(ENVIRONMENT).map(([name, path]) => [path, name]))
const named = (option: string) => (envOf[option] ? `${option} (${envOf[option]})` : option)

/** What went wrong, in words: no node stack, the errno code's meaning instead of `ENOENT: …, stat '…'`. */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  const path = e.path ? `${e.path}: ` : ''
  if (e.code === 'ENOENT') return `${path}no such file`
  if (e.code === 'EACCES' || e.code === 'EPERM') return `${path}enlil may not read it (permissions)`
  if (e.code === 'EISDIR') return `${path}is a folder, not a file`
  if (e.code === 'ENAMETOOLONG') return 'the value is too long for a file name (a base64 or PEM value where a file is expected?)'
  return (e.message ?? String(err)).split('\n')[0]!
}

/** Every problem of the files the config names, as "option (VARIABLE): what is wrong"; [] when all is well. */
export async function configFileProblems(config: Config): Promise<string[]> {
  const problems: string[] = []
  const check = async (option: string, work: () => unknown) => {
    try {
      await work()
    } catch (err) {
      problems.push(`${named(option)}: ${reason(err)}`)
    }
  }
  const read = (path: string) => readFileSync(path, 'utf8')

  const tls = config.http.tls
  if (tls.certificate && tls.key) {
    let cert: string | undefined
    let key: string | undefined
    await check('http.tls.certificate', () => { cert = read(tls.certificate!) })
    await check('http.tls.key', () => { key = read(tls.key!) })
    if (cert !== undefined && key !== undefined) await check('http.tls.key', () => createSecureContext({ cert, key }))
  }

  const mode = config.auth.mode ?? 'none'
  if (mode === 'htpasswd' && config.auth.htpasswd?.path) {
    const path = config.auth.htpasswd.path
    await check('auth.htpasswd.path', () => parseAccounts(read(path), path))
  }
  const token = config.auth.token
  if (mode === 'token' && token) {
    if (token.rootcertbundle) {
      const bundle = token.rootcertbundle
      await check('auth.token.rootcertbundle', () => {
        if (splitPemBundle(bundleText(bundle)).length === 0) throw new Error(`${bundleLabel(bundle)}: holds no PEM certificate`)
      })
    }
    if (token.jwks && !/^https?:\/\//.test(token.jwks)) {
      const jwks = token.jwks
      await check('auth.token.jwks', () => {
        const parsed = JSON.parse(read(jwks)) as { keys?: unknown }
        if (!Array.isArray(parsed.keys)) throw new Error(`${jwks}: not a JWKS (no "keys" list)`)
      })
    }
    if (!token.rootcertbundle && !token.jwks) {
      let pem: string | undefined
      let certificate: string | undefined
      if (token.signingkey) await check('auth.token.signingkey', () => { pem = read(token.signingkey!) })
      else if (token.signingkeyb64) pem = Buffer.from(token.signingkeyb64, 'base64').toString('utf8')
      if (token.certificate) await check('auth.token.certificate', () => { certificate = read(token.certificate!) })
      else if (token.certificateb64) certificate = Buffer.from(token.certificateb64, 'base64').toString('utf8')
      const keyOption = token.signingkey ? 'auth.token.signingkey' : 'auth.token.signingkeyb64'
      if (pem !== undefined || (certificate !== undefined && !token.signingkey)) {
        await check(certificate !== undefined && pem !== undefined ? `${keyOption} and auth.token.certificate` : keyOption, () => loadSigningKey(pem, certificate))
      }
      if (token.users) await check('auth.token.users', () => parseAccounts(read(token.users!), token.users))
      if (token.usersb64) await check('auth.token.usersb64', () => parseAccounts(Buffer.from(token.usersb64!, 'base64').toString('utf8'), 'ENLIL_AUTH_TOKEN_USERS_B64'))
    }
  }
  return problems
}
