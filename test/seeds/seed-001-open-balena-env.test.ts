/**
 * Seed 001, jellyfish's registry setup: open-balena-registry trusting jellyfish's tokens, configured
 * by a development `.env` in open-balena's naming (`REGISTRY_TOKEN_AUTH_*`, `REGISTRY_HOST`) with the
 * certificate, key and key id base64-encoded. The `.env` below is verbatim.
 *
 * Shown: given that environment as it is, enlil names every variable it does not know and refuses
 * to start with auth off; `enlil config convert --env .env` turns it into a config trusting the
 * issuer, and enlil then accepts exactly the tokens jellyfish signs (its key, its libtrust key id,
 * its issuer, the registry host as audience) and challenges everyone else with the realm. The
 * certificate also works given straight to REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE as base64.
 */
import { createPrivateKey } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, describe, expect, it } from 'vitest'
import { parseDotenv } from '../../src/config/dotenv.js'
import { removeDir, type Running, startEnlil, tempDir } from '../support/processes.js'
import { enlilCli } from '../support/seeds.js'

// ── The setup's .env, verbatim ──
const DOTENV = `REGISTRY_HOST=registry.ly.fish.local
REGISTRY_SECRETKEY=foobar
REGISTRY_TOKEN_AUTH_CERT_ISSUER=api.ly.fish.local
REGISTRY_TOKEN_AUTH_JWT_ALGO=ES256
REGISTRY_TOKEN_AUTH_REALM=http://api.ly.fish.local/v1/registry
REGISTRY_TOKEN_AUTH_CERT="LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqVENDQVRPZ0F3SUJBZ0lVVjVRZ2xNSDRuK2wrZGF6eE1PZG1vQldqTFhJd0NnWUlLb1pJemowRUF3SXcKSERFYU1CZ0dBMVVFQXd3UllYQnBMbXg1TG1acGMyZ3ViRzlqWVd3d0hoY05NakF4TVRJMk1UY3pNalEwV2hjTgpNakl4TVRJMk1UY3pNalEwV2pBY01Sb3dHQVlEVlFRRERCRmhjR2t1YkhrdVptbHphQzVzYjJOaGJEQlpNQk1HCkJ5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEEwSUFCRE5IUkNWYmthZlpZaWxGY3dXd2F0bkN6bEt1VHlEZmdLTVoKZ3BhbUJVR08vRlNIMGhjTU9CYTE5V3p2eFJXN05GOWNwRmVIZSszQndWdnB4OGIxOTZTalV6QlJNQjBHQTFVZApEZ1FXQkJRelc5SDJab3VDa2NsaVJrRHYwRnJUQSthbmtUQWZCZ05WSFNNRUdEQVdnQlF6VzlIMlpvdUNrY2xpClJrRHYwRnJUQSthbmtUQVBCZ05WSFJNQkFmOEVCVEFEQVFIL01Bb0dDQ3FHU000OUJBTUNBMGdBTUVVQ0lHRWQKTXF1UGJtcTNoV1hRbkowTUpieHc1RWJLMEFWQndhem9GR2F6RFVxTkFpRUF4MzFqdEpPUUEveWNPQlIyZDEyTgpQZ3dacjdZWTN3TUJ4RWtaS2VXR3FuQT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
REGISTRY_TOKEN_AUTH_CERT_KEY="LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUtYdzQxTDFBdFRGK01kMzJ1Rnd1NnpKWExNRktaTzBBRGNEWEh1bEZFNk5vQW9HQ0NxR1NNNDkKQXdFSG9VUURRZ0FFTTBkRUpWdVJwOWxpS1VWekJiQnEyY0xPVXE1UElOK0FveG1DbHFZRlFZNzhWSWZTRnd3NApGclgxYk8vRkZiczBYMXlrVjRkNzdjSEJXK25IeHZYM3BBPT0KLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo="
REGISTRY_TOKEN_AUTH_CERT_KID="UEYzSDoyNkZSOkxZUzM6VElZVToySlVJOkEySEU6N1pYVDpHM0I1OkhYNzQ6NVVFQjpTTlUyOkI1Skw="
REGISTRY2_CACHE_ENABLED=false
`
// ── end of the .env ──

const vars = parseDotenv(DOTENV)
const OPEN_BALENA_NAMES = Object.keys(vars).filter((n) => n.startsWith('REGISTRY_'))

/** A token as jellyfish signs them: its EC key, the libtrust key id of the .env, its issuer, the registry host as audience. */
async function jellyfishToken(access: unknown[], kid = Buffer.from(vars.REGISTRY_TOKEN_AUTH_CERT_KID!, 'base64').toString()): Promise<string> {
  const key = createPrivateKey(Buffer.from(vars.REGISTRY_TOKEN_AUTH_CERT_KEY!, 'base64').toString())
  return new SignJWT({ access }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
    .setIssuer('api.ly.fish.local').setAudience('registry.ly.fish.local').setSubject('jellyfish-user')
    .setIssuedAt().setExpirationTime('5m').sign(key)
}

describe('seed 001: open-balena\'s .env', () => {
  const dir = tempDir('seed-001')
  const running: Running[] = []
  writeFileSync(join(dir, '.env'), DOTENV)
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()))
    removeDir(dir)
  })

  it('refuses to start with auth off, naming each variable it does not know and the command that converts them', async () => {
    const served = await enlilCli(['serve'], { ...vars, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'data'), REGISTRY_HTTP_ADDR: '127.0.0.1:0' })
    expect(served.code).toBe(1)
    for (const name of OPEN_BALENA_NAMES.filter((n) => n !== 'REGISTRY_SECRETKEY' && n !== 'REGISTRY_HOST')) expect(served.stderr).toContain(name)
    expect(served.stderr).toContain('so auth would be off: convert them (`enlil config convert --env .env`)')
    const checked = await enlilCli(['config', 'check'], { ...vars })
    expect(checked.code).toBe(1)
    for (const name of OPEN_BALENA_NAMES) expect(checked.stderr).toContain(`unknown environment variable ${name}`)
  })

  it('after `enlil config convert --env .env`, accepts jellyfish\'s tokens and nothing else', async () => {
    const converted = await enlilCli(['config', 'convert', '--env', '.env', '--out', 'enlil/enlil.yml'], {}, dir)
    expect(converted.code, converted.stderr).toBe(0)
    expect(converted.stderr).toContain('note: REGISTRY_TOKEN_AUTH_CERT_KID: dropped: enlil derives the same key id')
    expect(readFileSync(join(dir, 'enlil/enlil.yml'), 'utf8')).toContain('service: registry.ly.fish.local')
    // The same environment as before, now beside the converted file.
    const enlil = await startEnlil(join(dir, 'data'), { ...vars, REGISTRY_CONFIG: join(dir, 'enlil/enlil.yml'), ENLIL_WORKERS: '1' })
    running.push(enlil)
    expect(enlil.output()).toContain('unknown environment variable REGISTRY_TOKEN_AUTH_CERT_KEY')

    const v2 = await fetch(`${enlil.url}/v2/`)
    expect(v2.status).toBe(401)
    expect(v2.headers.get('www-authenticate')).toBe('Bearer realm="http://api.ly.fish.local/v1/registry",service="registry.ly.fish.local"')
    const push = await jellyfishToken([{ type: 'repository', name: 'jellyfish/app', actions: ['pull', 'push'] }])
    expect((await fetch(`${enlil.url}/v2/jellyfish/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${push}` } })).status).toBe(202)
    // Another key id (a different signer) is not trusted.
    const stranger = await jellyfishToken([{ type: 'repository', name: 'jellyfish/app', actions: ['pull', 'push'] }], 'AAAA:BBBB:CCCC:DDDD:EEEE:FFFF:GGGG:HHHH:IIII:JJJJ:KKKK:LLLL')
    expect((await fetch(`${enlil.url}/v2/jellyfish/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${stranger}` } })).status).toBe(401)
  })

  it('takes the base64 certificate in REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE too (it crashed with ENAMETOOLONG)', async () => {
    const enlil = await startEnlil(join(dir, 'data2'), {
      REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: vars.REGISTRY_TOKEN_AUTH_CERT!, REGISTRY_AUTH_TOKEN_REALM: vars.REGISTRY_TOKEN_AUTH_REALM!,
      REGISTRY_AUTH_TOKEN_SERVICE: vars.REGISTRY_HOST!, REGISTRY_AUTH_TOKEN_ISSUER: vars.REGISTRY_TOKEN_AUTH_CERT_ISSUER!, ENLIL_WORKERS: '1',
    })
    running.push(enlil)
    const pull = await jellyfishToken([{ type: 'repository', name: 'jellyfish/app', actions: ['pull'] }])
    expect((await fetch(`${enlil.url}/v2/jellyfish/app/tags/list`, { headers: { Authorization: `Bearer ${pull}` } })).status).toBe(404)
    expect((await fetch(`${enlil.url}/v2/jellyfish/app/tags/list`)).status).toBe(401)
  })
})
