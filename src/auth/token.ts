/**
 * @module Docker-spec bearer tokens issued and verified by enlil itself: JWTs signed with jose
 * (ES256, RS256 or EdDSA from a PEM key, or an ES256 key generated at start), `kid` = the JWK
 * thumbprint of the public key, claims `iss`, `sub`, `aud` (the service), `exp`/`nbf`/`iat`, `jti`
 * and `access` (the granted scopes).
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, hkdfSync, KeyObject, randomBytes, randomUUID, X509Certificate } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import { z } from 'zod'
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

export interface VerifiedRefresh {
  subject: string
  /** The credential the account logged in with, as Accounts.credentialOf gave it; undefined in an older token. */
  credential?: string
}

const CLOCK_SKEW_S = 30

const ACTIONS = new Set<string>(['pull', 'push', 'delete', '*'])
const accessClaim = z.array(z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) })).optional()

/**
 * The `access` claim of a verified token (enlil's or an external issuer's), checked for shape: a
 * token that is signed but malformed is refused (the caller answers 401 invalid_token), never
 * half-read. Actions enlil does not know grant nothing.
 */
export function accessOf(payload: JWTPayload): Access[] {
  const parsed = accessClaim.safeParse(payload.access)
  if (!parsed.success) throw new Error('the token\'s access claim is not a list of {type, name, actions}')
  return (parsed.data ?? []).flatMap((a) => (a.type === 'repository' || a.type === 'registry')
    ? [{ type: a.type, name: a.name, actions: a.actions.filter((x): x is Action => ACTIONS.has(x)) }]
    : [])
}

/** Options every token check shares: `exp` is required, so no signed token lives forever. */
export const REQUIRED_CLAIMS = ['exp']

/**
 * Seals a refresh token's credential (AES-256-GCM under a key derived from the signing key, which
 * every instance shares): the token's holder can't read it, and only the signer can open it.
 */
function sealer(key: SigningKey) {
  const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey)
  const secret = Buffer.from(hkdfSync('sha256', privateKey.export({ type: 'pkcs8', format: 'der' }), Buffer.alloc(0), 'enlil refresh-token credential', 32))
  return {
    seal(plain: string): string {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', secret, iv)
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
    },
    open(sealed: string): string {
      const raw = Buffer.from(sealed, 'base64url')
      if (raw.length < 28) throw new Error('malformed credential seal')
      const decipher = createDecipheriv('aes-256-gcm', secret, raw.subarray(0, 12))
      decipher.setAuthTag(raw.subarray(12, 28))
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
    },
  }
}

export function createTokenIssuer(options: TokenOptions) {
  const { key } = options
  const sign = (claims: Record<string, unknown>, subject: string, lifetimeMs: number, audience = options.service) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(key.x5c ? { x5c: key.x5c } : {}) })
      .setIssuer(options.issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt()
      .setNotBefore(Math.floor(Date.now() / 1000) - CLOCK_SKEW_S)
      .setExpirationTime(Math.floor((Date.now() + lifetimeMs) / 1000))
      .setJti(randomUUID())
      .sign(key.privateKey)

  const sealed = sealer(key)

  async function verify(token: string, kind: 'access' | 'refresh'): Promise<JWTPayload> {
    // Only our own algorithm: `alg: none` and HMAC-with-the-public-key confusion never verify.
    const { payload } = await jwtVerify(token, key.publicKey, {
      algorithms: [key.alg], issuer: options.issuer, audience: options.service, clockTolerance: CLOCK_SKEW_S, requiredClaims: REQUIRED_CLAIMS,
    })
    const isRefresh = payload.enlil_refresh === true
    if (isRefresh !== (kind === 'refresh')) throw new Error(`not an ${kind} token`)
    return payload
  }

  return {
    /**
     * An access token for `audience`, the `service` the client asked for (as docker_auth issues
     * them, so enlil can be the token server of other registries); else this registry's service.
     * Only a registry whose service it names accepts it.
     */
    issue: (subject: string, access: Access[], audience?: string) => sign({ access }, subject, options.expiresInMs, audience || options.service),
    /** `credential` (Accounts.credentialOf) is sealed inside, so a refresh can tell a removed account or a changed password. */
    issueRefresh: (subject: string, credential: string) =>
      sign({ enlil_refresh: true, enlil_credential: sealed.seal(credential) }, subject, options.refreshExpiresInMs ?? 30 * 24 * 3600_000),
    async verifyAccess(token: string): Promise<VerifiedToken> {
      const payload = await verify(token, 'access')
      return { subject: String(payload.sub ?? ''), access: accessOf(payload), expiresAt: payload.exp! * 1000 }
    },
    async verifyRefresh(token: string): Promise<VerifiedRefresh> {
      const payload = await verify(token, 'refresh')
      const credential = typeof payload.enlil_credential === 'string' ? sealed.open(payload.enlil_credential) : undefined
      return { subject: String(payload.sub ?? ''), credential }
    },
    expiresInSeconds: Math.floor(options.expiresInMs / 1000),
  }
}
export type TokenIssuer = ReturnType<typeof createTokenIssuer>
