/**
 * @module Trusting an external token issuer (cesanta/docker_auth, a platform's auth server), as
 * distribution's `auth.token` does: tokens are verified with the public key of a certificate in
 * the configured bundle, found by the token's `x5c` chain, by a `kid` that is the key's JWK
 * thumbprint or its legacy libtrust key id, or with a JWKS.
 */
import { createHash, type KeyObject, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { calculateJwkThumbprint, createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, exportJWK, type JWTVerifyGetKey, jwtVerify } from 'jose'
import { accessOf, REQUIRED_CLAIMS, type VerifiedToken } from './token.js'

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'PS256']

export interface ExternalIssuerOptions {
  issuer: string
  service: string
  /** The certificates whose keys sign tokens (distribution's rootcertbundle): a PEM file, PEM text, or base64 of it (bundleText). */
  rootCertBundle?: string
  /** A JWKS: an http(s) URL or a file. */
  jwks?: string
}

/** The key id libtrust (docker_auth, distribution 2) derives: base32 of the SPKI's SHA-256, first 240 bits, in groups of 4. */
export function libtrustKeyId(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' })
  const hash = createHash('sha256').update(der).digest().subarray(0, 30)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of hash) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out.match(/.{4}/g)!.join(':')
}

/**
 * The PEM text of a certificate bundle setting: the text itself (it holds `-----BEGIN`), that text
 * base64-encoded on one line (open-balena's and fly secrets' form), or else the path of a file.
 */
export function bundleText(value: string): string {
  if (value.includes('-----BEGIN')) return value
  const compact = value.replace(/\s+/g, '')
  if (compact.length >= 64 && /^[A-Za-z0-9+/]+=*$/.test(compact)) {
    const decoded = Buffer.from(compact, 'base64').toString('utf8')
    if (decoded.includes('-----BEGIN')) return decoded
  }
  return readFileSync(value, 'utf8')
}

/** How a bundle setting is named in messages: its path, never a whole inline certificate. */
export const bundleLabel = (value: string) => (value.includes('-----BEGIN') || (!value.includes('/') && value.length > 100) || value.length > 255 ? 'the inline certificate bundle' : value)

export function splitPemBundle(text: string): X509Certificate[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem))
}

export async function createExternalVerifier(options: ExternalIssuerOptions): Promise<(token: string) => Promise<VerifiedToken>> {
  const roots = options.rootCertBundle ? splitPemBundle(bundleText(options.rootCertBundle)) : []
  if (options.rootCertBundle && roots.length === 0) throw new Error(`${bundleLabel(options.rootCertBundle)}: no certificates found`)
  const byKid = new Map<string, KeyObject>()
  for (const cert of roots) {
    const key = cert.publicKey
    byKid.set(await calculateJwkThumbprint(await exportJWK(key)), key)
    byKid.set(libtrustKeyId(key), key)
  }
  let jwks: JWTVerifyGetKey | undefined
  if (options.jwks) {
    jwks = /^https?:\/\//.test(options.jwks)
      ? createRemoteJWKSet(new URL(options.jwks), { cacheMaxAge: 10 * 60_000 })
      : createLocalJWKSet(JSON.parse(readFileSync(options.jwks, 'utf8')))
  }

  /** The signing key of a token: from its x5c chain (ending at a bundle certificate), its kid, or the JWKS. */
  function keyFromChain(x5c: string[]): KeyObject {
    const chain = x5c.map((b64) => new X509Certificate(Buffer.from(b64, 'base64')))
    const now = new Date()
    for (const cert of chain) {
      if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now) throw new Error('a certificate of the x5c chain is outside its validity period')
    }
    for (let i = 0; i < chain.length - 1; i++) {
      if (!chain[i]!.verify(chain[i + 1]!.publicKey)) throw new Error('the x5c chain does not verify')
    }
    const last = chain[chain.length - 1]!
    const trusted = roots.some((root) => root.fingerprint256 === last.fingerprint256 || (last.checkIssued(root) && last.verify(root.publicKey)))
    if (!trusted) throw new Error('the x5c chain does not end at a certificate of the root bundle')
    return chain[0]!.publicKey
  }

  return async (token) => {
    const header = decodeProtectedHeader(token)
    const verifyOptions = { algorithms: ALGORITHMS, issuer: options.issuer, audience: options.service, clockTolerance: 30, requiredClaims: REQUIRED_CLAIMS }
    let payload
    if (Array.isArray(header.x5c) && header.x5c.length > 0) {
      payload = (await jwtVerify(token, keyFromChain(header.x5c), verifyOptions)).payload
    } else if (header.kid && byKid.has(header.kid)) {
      payload = (await jwtVerify(token, byKid.get(header.kid)!, verifyOptions)).payload
    } else if (jwks) {
      payload = (await jwtVerify(token, jwks, verifyOptions)).payload
    } else {
      throw new Error(`no trusted key for this token (kid ${header.kid ?? 'absent'}, no x5c)`)
    }
    return { subject: String(payload.sub ?? ''), access: accessOf(payload), expiresAt: payload.exp! * 1000 }
  }
}
