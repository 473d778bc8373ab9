/**
 * enlil behind an existing token server, as distribution behind cesanta/docker_auth: a small test
 * issuer signs tokens that name their key by an x5c chain, by the JWK thumbprint as kid, or by the
 * legacy libtrust key id, and enlil trusts exactly the keys of its root certificate bundle.
 */
import { execFileSync } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libtrustKeyId } from '../src/auth/external-issuer.js'
import { removeDir, requirePart, type Running, startEnlil, tempDir } from './support/processes.js'

const haveOpenssl = requirePart(existsSync('/usr/bin/openssl'), 'openssl (to make test certificates)', 'apt-get install openssl')

describe.skipIf(!haveOpenssl)('trusting an external token issuer', () => {
  let dir: string
  let enlil: Running
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  beforeAll(async () => {
    dir = tempDir('external')
    // A CA and a leaf it signed (x5c tokens); a self-signed key certificate (kid tokens); a stranger.
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test auth CA')
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=token signer')
    ssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.crt', '-days', '2')
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'direct.key', '-out', 'direct.crt', '-days', '2', '-subj', '/CN=docker_auth')
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'evil.key', '-out', 'evil.crt', '-days', '2', '-subj', '/CN=token signer')
    writeFileSync(join(dir, 'bundle.pem'), readFileSync(join(dir, 'ca.crt'), 'utf8') + readFileSync(join(dir, 'direct.crt'), 'utf8'))
    enlil = await startEnlil(join(dir, 'data'), {
      REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com/token', REGISTRY_AUTH_TOKEN_SERVICE: 'registry.example.com',
      REGISTRY_AUTH_TOKEN_ISSUER: 'Acme auth server', REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: join(dir, 'bundle.pem'),
    })
  })
  afterAll(async () => {
    await enlil?.stop()
    removeDir(dir)
  })

  const key = (name: string) => createPrivateKey(readFileSync(join(dir, `${name}.key`)))
  const der = (name: string) => new X509Certificate(readFileSync(join(dir, `${name}.crt`))).raw.toString('base64')
  const sign = (header: Record<string, unknown>, signer: string, claims: Record<string, unknown> = {}) =>
    new SignJWT({ access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }], ...claims })
      .setProtectedHeader(header as never).setIssuer('Acme auth server').setAudience(String(claims.aud ?? 'registry.example.com')).setSubject('alice')
      .setIssuedAt().setExpirationTime('5m').sign(key(signer))
  const pull = async (token: string) => {
    const res = await fetch(`${enlil.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${token}` } })
    return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' }
  }

  it('challenges with the external realm', async () => {
    const res = await fetch(`${enlil.url}/v2/team/app/tags/list`)
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull"')
  })

  it('accepts tokens whose x5c chain ends at a bundle certificate', async () => {
    expect((await pull(await sign({ alg: 'RS256', x5c: [der('leaf')] }, 'leaf'))).status).toBe(404) // authorized; the repository is empty
    expect((await pull(await sign({ alg: 'RS256', x5c: [der('leaf'), der('ca')] }, 'leaf'))).status).toBe(404)
  })

  it('accepts a kid that is the JWK thumbprint, or the libtrust key id, of a bundle key', async () => {
    const publicKey = new X509Certificate(readFileSync(join(dir, 'direct.crt'))).publicKey
    const thumbprint = await calculateJwkThumbprint(await exportJWK(publicKey))
    expect((await pull(await sign({ alg: 'ES256', kid: thumbprint }, 'direct'))).status).toBe(404)
    const libtrust = libtrustKeyId(publicKey)
    expect(libtrust).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/)
    expect((await pull(await sign({ alg: 'ES256', kid: libtrust }, 'direct'))).status).toBe(404)
  })

  it('refuses tokens from keys outside the bundle, for another audience, or without the scope', async () => {
    const evil = await pull(await sign({ alg: 'ES256', x5c: [der('evil')] }, 'evil'))
    expect(evil.status).toBe(401)
    expect(evil.challenge).toContain('error="invalid_token"')
    expect((await pull(await sign({ alg: 'ES256', kid: 'NOPE:NOPE' }, 'direct'))).status).toBe(401)
    const thumbprint = await calculateJwkThumbprint(await exportJWK(new X509Certificate(readFileSync(join(dir, 'direct.crt'))).publicKey))
    expect((await pull(await sign({ alg: 'ES256', kid: thumbprint }, 'direct', { aud: 'other-registry' }))).status).toBe(401)
    const narrow = await pull(await sign({ alg: 'ES256', kid: thumbprint }, 'direct', { access: [{ type: 'repository', name: 'team/other', actions: ['pull'] }] }))
    expect(narrow.status).toBe(401)
    expect(narrow.challenge).toContain('error="insufficient_scope"')
  })

  it('trusts a JWKS instead of a bundle, from a file or a URL', async () => {
    const jwk = { ...(await exportJWK(new X509Certificate(readFileSync(join(dir, 'direct.crt'))).publicKey)), kid: 'acme-2026', alg: 'ES256', use: 'sig' }
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }))
    const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })))
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`
    try {
      for (const jwks of [join(dir, 'jwks.json'), url]) {
        const trusting = await startEnlil(join(dir, 'data-jwks'), {
          REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com/token', REGISTRY_AUTH_TOKEN_SERVICE: 'registry.example.com',
          REGISTRY_AUTH_TOKEN_ISSUER: 'Acme auth server', ENLIL_AUTH_TOKEN_JWKS: jwks,
        })
        try {
          const ok = await fetch(`${trusting.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${await sign({ alg: 'ES256', kid: 'acme-2026' }, 'direct')}` } })
          expect(ok.status, jwks).toBe(404)
          const bad = await fetch(`${trusting.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${await sign({ alg: 'ES256', kid: 'acme-2026' }, 'evil')}` } })
          expect(bad.status, jwks).toBe(401)
        } finally {
          await trusting.stop()
        }
      }
    } finally {
      server.close()
    }
  })

  it("enlil's own tokens carry x5c when given a certificate, so a trusting registry (distribution, or enlil) verifies them", async () => {
    writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('pw for alice', 4)}\n`)
    const issuing = await startEnlil(join(dir, 'data-issuer'), {
      REGISTRY_AUTH: 'token', ENLIL_AUTH_TOKEN_USERS: join(dir, 'users'), REGISTRY_AUTH_TOKEN_SERVICE: 'registry.example.com',
      REGISTRY_AUTH_TOKEN_ISSUER: 'Acme auth server', ENLIL_AUTH_TOKEN_SIGNINGKEY: join(dir, 'leaf.key'), ENLIL_AUTH_TOKEN_CERTIFICATE: join(dir, 'leaf.crt'),
    })
    try {
      const res = await fetch(`${issuing.url}/auth/token?service=registry.example.com&scope=repository:team/app:pull`, { headers: { Authorization: `Basic ${Buffer.from('alice:pw for alice').toString('base64')}` } })
      const { token } = (await res.json()) as { token: string }
      const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { x5c: string[]; alg: string }
      expect(header.alg).toBe('RS256')
      expect(header.x5c).toEqual([der('leaf')])
      // The registry trusting the CA bundle (started above) accepts enlil's token.
      expect((await pull(token)).status).toBe(404)
    } finally {
      await issuing.stop()
    }
  })
})
