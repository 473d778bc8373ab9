/** @module The auth mode a config names: the registry's authorizer and, in token mode, enlil's own token service. */
import { readFileSync } from 'node:fs'
import type { Config } from '../config/schema.js'
import type { Logger } from '../observe/log.js'
import type { AppOptions } from './app.js'
import { createHtpasswdAuthorizer } from '../auth/htpasswd.js'
import { createAccounts, createAccountsFromText } from '../auth/accounts.js'
import { createTokenIssuer, loadSigningKey } from '../auth/token.js'
import { createTokenAuthorizer } from '../auth/token-authorizer.js'
import { createExternalVerifier } from '../auth/external-issuer.js'
import { mayPullRepository } from '../auth/acl.js'
import { s3Endpoint } from './storage.js'

function s3KeyOptions(config: Config) {
  const s3 = config.storage.s3
  return { bucket: s3.bucket!, region: s3.region, endpoint: s3Endpoint(config), forcePathStyle: s3.forcepathstyle }
}

/** The auth mode of the config: the registry's authorizer and, in token mode, the token service. */
export async function createAuth(config: Config, log: Logger): Promise<Pick<AppOptions, 'authorizer' | 'tokenService'>> {
  if (config.auth.mode === 'htpasswd') {
    return { authorizer: createHtpasswdAuthorizer({ realm: config.auth.htpasswd!.realm, path: config.auth.htpasswd!.path!, acl: config.auth.acl }) }
  }
  if (config.auth.mode !== 'token') return {}
  const token = config.auth.token!
  if (token.rootcertbundle || token.jwks) {
    const verify = await createExternalVerifier({ issuer: token.issuer, service: token.service, rootCertBundle: token.rootcertbundle, jwks: token.jwks })
    return { authorizer: createTokenAuthorizer({ verify, service: token.service, realm: token.realm }) }
  }
  const pem = token.signingkey ? readFileSync(token.signingkey, 'utf8') : token.signingkeyb64 ? Buffer.from(token.signingkeyb64, 'base64').toString('utf8') : undefined
  const certificate = token.certificate ? readFileSync(token.certificate, 'utf8') : token.certificateb64 ? Buffer.from(token.certificateb64, 'base64').toString('utf8') : undefined
  const key = await loadSigningKey(pem, certificate)
  if (key.generated) {
    log.warn('no token signing key configured (auth.token.signingkey or JWT_KEY_B64): generated one; tokens end with this process and other instances cannot verify them')
  }
  const issuer = createTokenIssuer({ key, issuer: token.issuer, service: token.service, expiresInMs: token.expiration })
  const accounts = await tokenAccounts(config)
  const acl = config.auth.acl
  // What the token service would grant: without rules an account gets what it asks, anonymous nothing.
  const mayPull = (subject: string, name: string, source: string) => acl
    ? mayPullRepository(acl, { account: subject, labels: subject ? accounts.labels(subject) : {}, ip: source }, name)
    : subject !== ''
  return {
    authorizer: createTokenAuthorizer({ verify: issuer.verifyAccess, service: token.service, realm: token.realm, path: token.path, mayPull }),
    tokenService: { accounts, issuer, acl },
  }
}

/** Who can get tokens: S3 key pairs, an accounts file, or that file's content from a base64 variable. */
async function tokenAccounts(config: Config) {
  const token = config.auth.token!
  if (token.s3keys) {
    // Loaded only then: the AWS SDK is about 25 MiB of each process's memory.
    const [{ createS3KeyAccounts }, { bucketReader }] = await Promise.all([import('../auth/s3-keys.js'), import('../storage/s3-credentials.js')])
    return createS3KeyAccounts({ canRead: bucketReader(s3KeyOptions(config)) })
  }
  if (token.usersb64) return createAccountsFromText(Buffer.from(token.usersb64, 'base64').toString('utf8'), 'ENLIL_AUTH_TOKEN_USERS_B64')
  return createAccounts(token.users!)
}

