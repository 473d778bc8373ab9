/**
 * `enlil config check` refuses what `enlil serve` refuses: the files the config names are read and
 * parsed by both (issue 18: check said "valid" for a missing htpasswd file, key, users or TLS file
 * and MD5 htpasswd entries, then serve failed with `ENOENT … stat '…'` naming no option).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { removeDir, requirePart, tempDir } from './support/processes.js'
import { enlilCli } from './support/seeds.js'

const openssl = requirePart(existsSync('/usr/bin/openssl'), 'openssl', 'apt-get install openssl')
const dir = tempDir('config-check')
afterAll(() => removeDir(dir))

describe.skipIf(!openssl)('config check and serve agree on the files a config names', () => {
  const md5 = join(dir, 'md5.htpasswd')
  writeFileSync(md5, 'admin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n')

  const cases: [string, Record<string, string>, string][] = [
    ['a missing htpasswd file', { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: join(dir, 'nope') }, `auth.htpasswd.path (REGISTRY_AUTH_HTPASSWD_PATH): ${join(dir, 'nope')}: no such file`],
    ['MD5 htpasswd entries', { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: md5 }, `auth.htpasswd.path (REGISTRY_AUTH_HTPASSWD_PATH): ${md5}:1: the hash of "admin" is not bcrypt`],
    ['a missing users file and signing key', { REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users'), ENLIL_AUTH_TOKEN_SIGNINGKEY: join(dir, 'key.pem') }, `auth.token.signingkey (ENLIL_AUTH_TOKEN_SIGNINGKEY): ${join(dir, 'key.pem')}: no such file`],
    ['a missing TLS certificate', { REGISTRY_HTTP_TLS_CERTIFICATE: join(dir, 'tls.crt'), REGISTRY_HTTP_TLS_KEY: join(dir, 'tls.key') }, `http.tls.certificate (REGISTRY_HTTP_TLS_CERTIFICATE): ${join(dir, 'tls.crt')}: no such file`],
  ]

  it.each(cases)('%s: both refuse, naming the option', async (_what, env, problem) => {
    const checked = await enlilCli(['config', 'check'], env, dir)
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain(problem)
    const served = await enlilCli(['serve'], { ...env, ENLIL_WORKERS: '1', REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'data') }, dir)
    expect(served.code).toBe(1)
    expect(served.stderr).toContain(problem)
    expect(served.stderr).not.toMatch(/ENOENT|stat '/)
  })

  it('with workers, serve says each problem once and forks no worker', async () => {
    const env = { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_PATH: join(dir, 'nope'), ENLIL_WORKERS: '2', REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'data') }
    const served = await enlilCli(['serve'], env, dir)
    expect(served.code).toBe(1)
    expect(served.stderr.split('auth.htpasswd.path (REGISTRY_AUTH_HTPASSWD_PATH)')).toHaveLength(2)
    expect(served.stdout + served.stderr).not.toMatch(/worker/)
  })

  it('checks that the TLS key belongs to the certificate', async () => {
    for (const name of ['a', 'b']) execFileSync('openssl', ['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-days', '1', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', '/CN=x'], { cwd: dir, stdio: 'ignore' })
    const checked = await enlilCli(['config', 'check'], { REGISTRY_HTTP_TLS_CERTIFICATE: join(dir, 'a.crt'), REGISTRY_HTTP_TLS_KEY: join(dir, 'b.key') }, dir)
    expect(checked.code).toBe(1)
    expect(checked.stderr).toMatch(/http\.tls\.key \(REGISTRY_HTTP_TLS_KEY\): .*key values mismatch/)
    expect((await enlilCli(['config', 'check'], { REGISTRY_HTTP_TLS_CERTIFICATE: join(dir, 'a.crt'), REGISTRY_HTTP_TLS_KEY: join(dir, 'a.key') }, dir)).code).toBe(0)
  })
})
