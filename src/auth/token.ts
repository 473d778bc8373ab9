/**
 * @module Docker-spec bearer tokens issued and verified by enlil itself: JWTs signed with jose
 * (ES256, RS256 or EdDSA from a PEM key, or an ES256 key generated at start), `kid` = the JWK
 * thumbprint of the public key, claims `iss`, `sub`, `aud` (the service), `exp`/`nbf`/`iat`, `jti`
 * and `access` (the granted scopes).
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomUUID, X509Certificate } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose'
import type { Access, Action } from './authorizer.js'

export type SigningAlgorithm = 'ES256' | 'RS256' | 'EdDSA'

export interface SigningKey {
  alg: SigningAlgorithm
  privateKey: KeyObject | CryptoKey
  publicKey: KeyObject | CryptoKey
  kid: string
  /** Generated at start: tokens die with the process, and instances can't verify each other's. */
  generated: boolean
  /** DER certificates (base64) of the key, sent as `x5c`. */
  x5c?: string[]
}

/**
 * Loads a PEM private key (EC P-256, RSA or Ed25519), or generates an ES256 key when none is given.
 * A PEM certificate of that key adds `x5c` to the tokens; it must hold the same public key.
 */
export async function loadSigningKey(pem?: string, certificatePem?: string): Promise<SigningKey> {
  if (certificatePem && !pem) throw new Error('a token certificate needs its signing key (signingkey or JWT_KEY_B64)')
  const key = await loadKey(pem)
  if (!certificatePem) return key
  const certs = (certificatePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c))
  if (certs.length === 0) throw new Error('the token certificate file holds no PEM certificate')
  const leaf = certs[0]!.publicKey.export({ type: 'spki', format: 'der' })
  const own = (key.publicKey as KeyObject).export({ type: 'spki', format: 'der' })
  if (!leaf.equals(own)) throw new Error('the token certificate is not for the signing key')
  return { ...key, x5c: certs.map((c) => c.raw.toString('base64')) }
}

async function loadKey(pem?: string): Promise<SigningKey> {
  if (!pem) {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    return { alg: 'ES256', privateKey, publicKey, kid: await calculateJwkThumbprint(await exportJWK(publicKey)), generated: true }
  }
  const privateKey = createPrivateKey(pem)
  const publicKey = createPublicKey(privateKey)
  const type = privateKey.asymmetricKeyType
  const curve = privateKey.asymmetricKeyDetails?.namedCurve
  const alg: SigningAlgorithm | undefined = type === 'rsa' ? 'RS256' : type === 'ed25519' ? 'EdDSA' : type === 'ec' && curve === 'prime256v1' ? 'ES256' : undefined
  if (!alg) throw new Error(`unsupported token signing key (${type}${curve ? ` ${curve}` : ''}): use EC P-256, RSA or Ed25519`)
  return { alg, privateKey, publicKey, kid: await calculateJwkThumbprint(await exportJWK(publicKey)), generated: false }
}

/** `repository:name:pull,push` → Access; the name may itself contain colons (a registry host:port). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first <= 0 || last === first) return undefined
  const type = scope.slice(0, first)
  if (type !== 'repository' && type !== 'registry') return undefined
  const actions = scope.slice(last + 1).split(',').filter((a): a is Action => ['pull', 'push', 'delete', '*'].includes(a))
  return { type, name: scope.slice(first + 1, last), actions }
}

export function formatScope(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`
}

export interface TokenOptions {
  key: SigningKey
  issuer: string
  service: string
  /** Lifetime of access tokens, ms. */
  expiresInMs: number
  /** Lifetime of refresh tokens (offline_token), ms. */
  refreshExpiresInMs?: number
}

export interface VerifiedToken {
  subject: string
  access: Access[]
  expiresAt: number
}

const CLOCK_SKEW_S = 30

export function createTokenIssuer(options: TokenOptions) {
  const { key } = options
  const sign = (claims: Record<string, unknown>, subject: string, lifetimeMs: number) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(key.x5c ? { x5c: key.x5c } : {}) })
      .setIssuer(options.issuer)
      .setSubject(subject)
      .setAudience(options.service)
      .setIssuedAt()
      .setNotBefore(Math.floor(Date.now() / 1000) - CLOCK_SKEW_S)
      .setExpirationTime(Math.floor((Date.now() + lifetimeMs) / 1000))
      .setJti(randomUUID())
      .sign(key.privateKey)

  async function verify(token: string, kind: 'access' | 'refresh'): Promise<VerifiedToken> {
    // Only our own algorithm: `alg: none` and HMAC-with-the-public-key confusion never verify.
    const { payload } = await jwtVerify(token, key.publicKey, {
      algorithms: [key.alg], issuer: options.issuer, audience: options.service, clockTolerance: CLOCK_SKEW_S,
    })
    const isRefresh = payload.enlil_refresh === true
    if (isRefresh !== (kind === 'refresh')) throw new Error(`not an ${kind} token`)
    const access = Array.isArray(payload.access) ? (payload.access as Access[]) : []
    return { subject: String(payload.sub ?? ''), access, expiresAt: (payload.exp ?? 0) * 1000 }
  }

  return {
    issue: (subject: string, access: Access[]) => sign({ access }, subject, options.expiresInMs),
    issueRefresh: (subject: string) => sign({ enlil_refresh: true }, subject, options.refreshExpiresInMs ?? 30 * 24 * 3600_000),
    verifyAccess: (token: string) => verify(token, 'access'),
    verifyRefresh: (token: string) => verify(token, 'refresh'),
    expiresInSeconds: Math.floor(options.expiresInMs / 1000),
  }
}
export type TokenIssuer = ReturnType<typeof createTokenIssuer>
