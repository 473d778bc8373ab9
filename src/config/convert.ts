/**
 * @module `enlil config convert`: a distribution `config.yml` and/or a cesanta/docker_auth
 * `auth_config.yml` in, the equivalent enlil config out, plus the files it refers to (docker_auth's
 * users) and a note for everything dropped or changed. Pure: parsed documents in, data out; the
 * CLI reads and writes the files.
 */
import { X509Certificate } from 'node:crypto'
import { aclRuleSchema } from '../auth/acl.js'
import { bundleText, libtrustKeyId } from '../auth/external-issuer.js'
import { ENVIRONMENT, FALLBACK_ENVIRONMENT } from './environment.js'

type Doc = Record<string, unknown>

export interface ConvertInput {
  /** distribution's config.yml, parsed. */
  distribution?: unknown
  /** docker_auth's auth_config.yml, parsed. */
  dockerAuth?: unknown
  /** A `.env` file's variables (open-balena's `REGISTRY_TOKEN_AUTH_*` naming), parsed. */
  environment?: Record<string, string>
  /** Where the users file will be written (the config refers to it by this path). */
  usersPath?: string
}

export interface ConvertResult {
  config: Doc
  files: { path: string; content: string }[]
  notes: string[]
}

const isDoc = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v)
const section = (doc: Doc, key: string): Doc => (isDoc(doc[key]) ? doc[key] : {})

/** Copies the listed keys that are present from `from` to `to` (optionally renamed). */
function copy(from: Doc, to: Doc, keys: (string | [string, string])[]): void {
  for (const k of keys) {
    const [src, dst] = typeof k === 'string' ? [k, k] : k
    if (from[src] !== undefined && from[src] !== null) to[dst] = from[src]
  }
}

/** The keys of `doc` other than `handled`, each turned into a note with `why`. */
function leftovers(doc: Doc, prefix: string, handled: string[], why: (key: string) => string, notes: string[]): void {
  for (const key of Object.keys(doc)) if (!handled.includes(key)) notes.push(`${prefix}${key}: ${why(key)}`)
}

/** distribution's log levels → enlil's. */
const LOG_LEVELS: Record<string, string> = { debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error', fatal: 'error', panic: 'error' }

/** What distribution sections enlil does not have mean, for the notes. */
const DISTRIBUTION_SECTIONS: Record<string, string> = {
  middleware: 'not converted: enlil has no middleware; on S3 it already answers blob GETs with presigned redirects (storage.redirect), so a CDN in front of the bucket (cloudfront) is configured there, not in enlil',
  health: 'dropped: enlil serves /healthz (liveness) and /readyz (readiness, checks the store) for your orchestrator',
  redis: 'dropped: enlil needs no shared cache; several instances share only the store',
  reporting: 'dropped: no error reporting service integration',
  validation: 'dropped: enlil validates manifests and their references itself',
  compatibility: 'dropped: enlil serves the manifests it stores as they are',
  loglevel: 'dropped: use log.level',
}

function convertDistribution(dist: Doc, out: Doc, notes: string[]): void {
  if (dist.version !== undefined && String(dist.version) !== '0.1') notes.push(`version: ${String(dist.version)} is not distribution's 0.1; converted as if it were`)

  const log = section(dist, 'log')
  if (Object.keys(log).length > 0) {
    const target: Doc = {}
    if (log.level !== undefined) {
      const level = LOG_LEVELS[String(log.level)]
      if (level) target.level = level
      else notes.push(`log.level: "${String(log.level)}" is unknown; left at info`)
      if (level && level !== log.level) notes.push(`log.level: ${String(log.level)} became ${level}`)
    }
    const access = section(log, 'accesslog')
    if (access.disabled !== undefined) target.accesslog = { disabled: access.disabled }
    leftovers(log, 'log.', ['level', 'accesslog'], (k) => (k === 'formatter' ? 'dropped: enlil always logs JSON lines' : k === 'fields' ? 'dropped: enlil has no extra log fields' : 'dropped: not supported'), notes)
    if (Object.keys(target).length > 0) out.log = target
  }

  const http = section(dist, 'http')
  if (Object.keys(http).length > 0) {
    const target: Doc = {}
    copy(http, target, ['addr', 'host', 'draintimeout'])
    if (isDoc(http.headers)) target.headers = http.headers
    const debug = section(http, 'debug')
    if (Object.keys(debug).length > 0) {
      const d: Doc = {}
      copy(debug, d, ['addr'])
      const prometheus = section(debug, 'prometheus')
      if (Object.keys(prometheus).length > 0) {
        d.prometheus = {}
        copy(prometheus, d.prometheus as Doc, ['enabled', 'path'])
      }
      if (prometheus.enabled !== true && prometheus.enabled !== 'true') notes.push('http.debug: enlil\'s debug listener serves only Prometheus metrics (http.debug.prometheus.enabled); without them it is not opened. Health: /healthz and /readyz on the main port')
      leftovers(debug, 'http.debug.', ['addr', 'prometheus'], () => 'dropped: not supported', notes)
      target.debug = d
    }
    if (http.net !== undefined && http.net !== 'tcp') notes.push(`http.net: ${String(http.net)} is unsupported: enlil listens on TCP only (http.addr)`)
    if (http.secret !== undefined) notes.push('http.secret: dropped: enlil keeps upload state in the store, nothing to sign between instances')
    if (http.prefix !== undefined && http.prefix !== '/') notes.push(`http.prefix: ${String(http.prefix)} is unsupported: enlil serves /v2/ at the root of its host; strip the prefix in your proxy`)
    const tls = section(http, 'tls')
    if (tls.certificate !== undefined || tls.key !== undefined) {
      const t: Doc = {}
      copy(tls, t, ['certificate', 'key'])
      target.tls = t
    }
    leftovers(tls, 'http.tls.', ['certificate', 'key'], (k) => (k === 'letsencrypt' ? 'unsupported: get the certificate with a proxy (Caddy) or certbot and give enlil the files' : k === 'clientcas' ? 'unsupported: no client certificate authentication' : 'dropped: not supported'), notes)
    leftovers(http, 'http.', ['addr', 'host', 'draintimeout', 'net', 'secret', 'prefix', 'tls', 'headers', 'debug'], (k) => (k === 'relativeurls' ? 'dropped: enlil sends absolute URLs built from http.host or the request' : k === 'http2' || k === 'h2c' ? 'dropped: enlil speaks HTTP/1.1' : 'dropped: not supported'), notes)
    if (Object.keys(target).length > 0) out.http = target
  }

  const storage = section(dist, 'storage')
  if (Object.keys(storage).length > 0) {
    const target: Doc = {}
    const fs = section(storage, 'filesystem')
    const s3 = section(storage, 's3')
    if (storage.filesystem !== undefined) {
      target.filesystem = {}
      copy(fs, target.filesystem as Doc, ['rootdirectory'])
      leftovers(fs, 'storage.filesystem.', ['rootdirectory'], () => 'dropped: not needed', notes)
      // distribution's default root; enlil's default is ./data.
      if (fs.rootdirectory === undefined) (target.filesystem as Doc).rootdirectory = '/var/lib/registry'
    } else if (storage.s3 !== undefined) {
      const s: Doc = {}
      copy(s3, s, ['bucket', 'accesskey', 'secretkey', 'region', 'regionendpoint', 'forcepathstyle', 'secure', 'v4auth', 'chunksize', 'rootdirectory', 'encrypt'])
      target.s3 = s
      target.driver = 's3'
      leftovers(s3, 'storage.s3.', ['bucket', 'accesskey', 'secretkey', 'region', 'regionendpoint', 'forcepathstyle', 'secure', 'v4auth', 'chunksize', 'rootdirectory', 'encrypt'], (k) =>
        k === 'endpoint' ? `dropped: distribution's s3 driver has no "endpoint" (it went to AWS); for MinIO, Tigris or Ceph set storage.s3.regionendpoint${s3.regionendpoint === undefined ? ` (e.g. regionendpoint: ${String(s3.endpoint)})` : ''}`
          : k.startsWith('multipartcopy') ? 'dropped: enlil copies above 5 GiB in parts by itself'
          : k === 'keyid' ? 'unsupported: SSE-KMS keys; encrypt uses AES256'
            : k === 'storageclass' ? 'dropped: objects get the bucket\'s default storage class'
              : 'dropped: not supported', notes)
    }
    for (const other of ['azure', 'gcs', 'swift', 'oss', 'inmemory']) {
      if (storage[other] !== undefined) notes.push(`storage.${other}: unsupported store: enlil stores in a folder or an S3-compatible bucket; the converted config uses ${target.s3 ? 's3' : 'the filesystem store'}; set storage yourself`)
    }
    // distribution refuses deletes (405) unless storage.delete.enabled says otherwise; enlil's default is on.
    const del = section(storage, 'delete')
    target.delete = { enabled: del.enabled ?? false }
    if (del.enabled === undefined) notes.push('storage.delete: absent, so deletes stay off as in distribution (storage.delete.enabled: false); set it to true to allow them')
    const redirect = section(storage, 'redirect')
    if (redirect.disable !== undefined) target.redirect = { disable: redirect.disable }
    const purging = section(section(storage, 'maintenance'), 'uploadpurging')
    if (Object.keys(purging).length > 0) {
      const p: Doc = {}
      copy(purging, p, ['enabled', 'age', 'interval'])
      if (purging.dryrun !== undefined) notes.push('storage.maintenance.uploadpurging.dryrun: dropped: enlil purges or does not')
      target.maintenance = { uploadpurging: p }
    }
    const readonly = section(section(storage, 'maintenance'), 'readonly')
    if (readonly.enabled !== undefined) target.maintenance = { ...(isDoc(target.maintenance) ? target.maintenance : {}), readonly: { enabled: readonly.enabled } }
    leftovers(section(storage, 'maintenance'), 'storage.maintenance.', ['uploadpurging', 'readonly'], () => 'dropped: not supported', notes)
    if (storage.cache !== undefined) notes.push('storage.cache: dropped: enlil caches immutable content (manifests by digest, blob sizes) in memory by itself')
    if (storage.tag !== undefined) notes.push('storage.tag: dropped: not needed')
    out.storage = target
  }

  const auth = section(dist, 'auth')
  if (isDoc(auth.htpasswd)) {
    const h: Doc = {}
    copy(auth.htpasswd, h, ['realm', 'path'])
    out.auth = { htpasswd: h }
  } else if (isDoc(auth.token)) {
    const t: Doc = {}
    copy(auth.token, t, ['realm', 'service', 'issuer', 'rootcertbundle', 'jwks'])
    leftovers(auth.token, 'auth.token.', ['realm', 'service', 'issuer', 'rootcertbundle', 'jwks'], (k) => (k === 'autoredirect' ? 'dropped: set auth.token.realm to the public token URL' : k === 'signingalgorithms' ? 'dropped: enlil accepts ES256, RS256 and EdDSA' : 'dropped: not supported'), notes)
    out.auth = { token: t }
  }
  if (auth.silly !== undefined) notes.push('auth.silly: unsupported (a test mode of distribution); no auth converted')
  leftovers(auth, 'auth.', ['htpasswd', 'token', 'silly'], () => 'unsupported auth mode', notes)

  const notifications = section(dist, 'notifications')
  if (Object.keys(notifications).length > 0) {
    const endpoints = Array.isArray(notifications.endpoints) ? notifications.endpoints.filter(isDoc) : []
    const n: Doc = {}
    if (isDoc(notifications.events)) n.events = notifications.events
    n.endpoints = endpoints.map((e, i) => {
      const endpoint: Doc = {}
      copy(e, endpoint, ['name', 'url', 'disabled', 'headers', 'timeout', 'threshold', 'backoff', 'ignoredmediatypes', 'ignore'])
      leftovers(e, `notifications.endpoints[${i}].`, ['name', 'url', 'disabled', 'headers', 'timeout', 'threshold', 'backoff', 'ignoredmediatypes', 'ignore'], () => 'dropped: not supported', notes)
      return endpoint
    })
    leftovers(notifications, 'notifications.', ['events', 'endpoints'], () => 'dropped: not supported', notes)
    out.notifications = n
  }


  // Proxy mode: enlil reads distribution's proxy section as it is (one upstream, no prefix).
  const proxy = section(dist, 'proxy')
  if (proxy.remoteurl !== undefined) {
    const p: Doc = {}
    copy(proxy, p, ['remoteurl', 'username', 'password', 'ttl'])
    out.proxy = p
    notes.push('proxy: kept: the whole registry mirrors proxy.remoteurl and refuses pushes, as before; mirror.upstreams can mirror several registries under prefixes beside pushed repositories (README, "Mirror Docker Hub")')
  }
  leftovers(proxy, 'proxy.', ['remoteurl', 'username', 'password', 'ttl'], () => 'dropped: not supported', notes)

  for (const [key, why] of Object.entries(DISTRIBUTION_SECTIONS)) if (dist[key] !== undefined) notes.push(`${key}: ${why}`)
  leftovers(dist, '', ['version', 'log', 'http', 'storage', 'auth', 'notifications', 'proxy', ...Object.keys(DISTRIBUTION_SECTIONS)], () => 'dropped: unknown to enlil', notes)
}

/** docker_auth authenticators and authorizers enlil does not have. */
const DOCKER_AUTH_UNSUPPORTED = ['ldap_auth', 'google_auth', 'github_auth', 'gitlab_auth', 'oidc_auth', 'mongo_auth', 'xorm_auth', 'ext_auth', 'plugin_authn', 'acl_mongo', 'acl_xorm', 'ext_authz', 'casbin_authz', 'plugin_authz']

/**
 * docker_auth → enlil as its own token server: the same users (with labels), ACL, signing key and
 * issuer, so clients log in as before and the registry accepts what it accepted.
 */
function convertDockerAuth(da: Doc, out: Doc, files: ConvertResult['files'], notes: string[], usersPath: string): void {
  const auth = (out.auth = isDoc(out.auth) ? out.auth : {}) as Doc
  const previous = isDoc(auth.token) ? auth.token : {}
  if (auth.htpasswd) {
    notes.push('auth.htpasswd: replaced by token auth from the docker_auth config')
    delete auth.htpasswd
  }
  const token: Doc = {}
  const daToken = section(da, 'token')
  const server = section(da, 'server')

  // The registry's own view wins for what clients and tokens already carry: realm, service, issuer.
  const issuer = previous.issuer ?? daToken.issuer
  if (previous.issuer !== undefined && daToken.issuer !== undefined && previous.issuer !== daToken.issuer) {
    notes.push(`auth.token.issuer: distribution expects "${String(previous.issuer)}" but docker_auth issues "${String(daToken.issuer)}"; kept distribution's`)
  }
  if (issuer !== undefined) token.issuer = issuer
  if (previous.service !== undefined) token.service = previous.service
  const prefix = typeof server.path_prefix === 'string' ? server.path_prefix.replace(/\/+$/, '') : ''
  const path = `${prefix}/auth`
  if (typeof previous.realm === 'string') {
    token.realm = previous.realm
    const realmPath = new URL(previous.realm, 'http://x').pathname
    token.path = realmPath !== '/' && !realmPath.startsWith('/v2') ? realmPath : path
    notes.push(`auth.token.realm: kept (${previous.realm}); enlil now answers it at ${String(token.path)}: route that path to enlil instead of docker_auth (or drop the proxy's separate auth location)`)
  } else {
    token.path = path
  }
  if (daToken.expiration !== undefined) token.expiration = typeof daToken.expiration === 'number' ? `${daToken.expiration}s` : daToken.expiration
  if (daToken.key !== undefined) token.signingkey = daToken.key
  else notes.push('token.key: missing; enlil generates a key at every start unless auth.token.signingkey is set')
  if (daToken.certificate !== undefined) token.certificate = daToken.certificate
  if (daToken.key !== undefined) notes.push(`auth.token.signingkey: ${String(daToken.key)} and certificate ${String(daToken.certificate ?? '(none)')} are docker_auth's paths; make sure enlil can read them there`)
  if (previous.rootcertbundle !== undefined) notes.push('auth.token.rootcertbundle: dropped: enlil now issues the tokens itself with docker_auth\'s key')
  leftovers(daToken, 'token.', ['issuer', 'expiration', 'key', 'certificate'], (k) => (k === 'disable_legacy_key_id' ? 'dropped: enlil\'s tokens carry the JWK thumbprint as kid, and x5c when there is a certificate' : 'dropped: not supported'), notes)
  // Alone (the token server of a split layout), enlil listens where docker_auth did.
  const http = isDoc(out.http) ? out.http : undefined
  if (server.addr !== undefined && http?.addr === undefined) {
    out.http = { ...(http ?? {}), addr: server.addr }
    notes.push(`server.addr: kept as http.addr (${String(server.addr)}): enlil serves tokens there, at ${String(token.path)}, as docker_auth did`)
  } else if (server.addr !== undefined) {
    notes.push(`server.addr: dropped: enlil serves tokens on the registry's address (http.addr), at ${String(token.path)}; to keep two processes (registry, token server), convert each config alone`)
  }
  leftovers(server, 'server.', ['addr', 'path_prefix'], (k) => (k === 'certificate' || k === 'key' || k === 'letsencrypt' ? 'dropped: TLS of the token endpoint is enlil\'s (http.tls) or your proxy\'s' : k === 'real_ip_header' || k === 'real_ip_pos' ? 'dropped: enlil takes the client address from X-Forwarded-For only when the connection comes from a proxy listed in http.trustedproxies (none by default)' : 'dropped: not supported'), notes)

  const users = section(da, 'users')
  if (Object.keys(users).length > 0) {
    files.push({ path: usersPath, content: usersYaml(users) })
    token.users = usersPath
  } else {
    notes.push('users: none in the docker_auth config; add accounts to auth.token.users before starting')
  }

  const acl = Array.isArray(da.acl) ? da.acl : undefined
  if (acl) {
    const rules: unknown[] = []
    acl.forEach((rule, i) => {
      const parsed = aclRuleSchema.safeParse(rule)
      if (parsed.success) rules.push(rule)
      else notes.push(`acl[${i}]: dropped: ${parsed.error.issues.map((x) => `${x.path.join('.') || 'rule'}: ${x.message}`).join('; ')}`)
    })
    auth.acl = rules
  } else {
    notes.push('acl: none: docker_auth then refuses everything, enlil gives accounts all they ask and anonymous nothing; add rules to auth.acl')
  }
  for (const key of DOCKER_AUTH_UNSUPPORTED) if (da[key] !== undefined) notes.push(`${key}: unsupported: enlil's accounts are the users file (or S3 key pairs); these users cannot log in`)
  leftovers(da, '', ['server', 'token', 'users', 'acl', ...DOCKER_AUTH_UNSUPPORTED], () => 'dropped: unknown to enlil', notes)

  delete auth.token
  auth.token = token
  auth.mode = 'token'
}

/** docker_auth's users map as enlil's users file: the same YAML shape, passwords and labels kept. */
function usersYaml(users: Doc): string {
  const lines = ['# Converted from docker_auth by `enlil config convert`: bcrypt passwords and labels as they were.', 'users:']
  for (const [name, entry] of Object.entries(users)) {
    const e = isDoc(entry) ? entry : {}
    const fields: string[] = []
    if (e.password !== undefined) fields.push(`password: ${JSON.stringify(String(e.password))}`)
    if (isDoc(e.labels)) fields.push(`labels: ${JSON.stringify(e.labels)}`)
    lines.push(`  ${JSON.stringify(name)}: {${fields.join(', ')}}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * open-balena's registry variables (jellyfish and balena's API sign the tokens) → enlil trusting
 * that issuer. enlil's own and distribution's names stay in the environment, read as they are.
 */
const OPEN_BALENA: Record<string, { path?: string; note?: string }> = {
  REGISTRY_TOKEN_AUTH_CERT: { path: 'auth.token.rootcertbundle' },
  REGISTRY_TOKEN_AUTH_CERT_ISSUER: { path: 'auth.token.issuer' },
  REGISTRY_TOKEN_AUTH_REALM: { path: 'auth.token.realm' },
  REGISTRY_HOST: { path: 'auth.token.service', note: 'became auth.token.service (the audience of the tokens, as open-balena\'s registry sets it); set http.host to https://<host> if clients reach enlil through another name' },
  REGISTRY_TOKEN_AUTH_CERT_KEY: { note: 'dropped: the signer\'s private key stays with the token server; the registry needs only the certificate (REGISTRY_TOKEN_AUTH_CERT)' },
  REGISTRY_TOKEN_AUTH_CERT_KID: { note: 'dropped: enlil derives the same key id (libtrust form) from the certificate' },
  REGISTRY_TOKEN_AUTH_JWT_ALGO: { note: 'dropped: the algorithm follows the certificate\'s key (ES256, RS256, EdDSA…)' },
  REGISTRY_SECRETKEY: { note: 'dropped: enlil keeps upload state in the store, nothing to sign between instances' },
}

function convertEnvironment(env: Record<string, string>, out: Doc, notes: string[]): void {
  const set = (path: string, value: unknown) => {
    const keys = path.split('.')
    let node = out
    for (const k of keys.slice(0, -1)) node = (node[k] = isDoc(node[k]) ? node[k] : {}) as Doc
    node[keys.at(-1)!] = value
  }
  for (const [name, value] of Object.entries(env)) {
    const known = ENVIRONMENT[name] ?? FALLBACK_ENVIRONMENT[name]
    const balena = OPEN_BALENA[name]
    if (known) notes.push(`${name}: enlil reads it as it is (${known}); keep it in the environment`)
    else if (name === 'REGISTRY_CONFIG' || name === 'ENLIL_CONFIG') notes.push(`${name}: names the config file; point it at the converted one`)
    else if (balena) {
      if (balena.path) set(balena.path, value)
      notes.push(`${name}: ${balena.note ?? `became ${balena.path}`}`)
    } else notes.push(`${name}: dropped: ${/^(REGISTRY|ENLIL)_/.test(name) ? 'unknown to enlil' : 'not read by enlil'}`)
  }
  const token = isDoc(out.auth) && isDoc(out.auth.token) ? out.auth.token : undefined
  if (!token) return
  ;(out.auth as Doc).mode = 'token'
  // The certificate and the key id the signer puts in its tokens must agree, or no token verifies.
  const cert = typeof token.rootcertbundle === 'string' ? token.rootcertbundle : undefined
  const kid = env.REGISTRY_TOKEN_AUTH_CERT_KID
  if (cert) {
    try {
      const pem = bundleText(cert)
      const certificate = new X509Certificate(pem)
      if (new Date(certificate.validTo) < new Date()) notes.push(`REGISTRY_TOKEN_AUTH_CERT: the certificate expired on ${certificate.validTo}; tokens signed by its key are still accepted by key id, but renew it`)
      const decodedKid = kid ? Buffer.from(kid, 'base64').toString('utf8') : undefined
      const derived = libtrustKeyId(certificate.publicKey)
      if (decodedKid && /^[A-Z2-7]{4}(:[A-Z2-7]{4}){11}$/.test(decodedKid) && decodedKid !== derived) notes.push(`REGISTRY_TOKEN_AUTH_CERT_KID: ${decodedKid} is not the key id of REGISTRY_TOKEN_AUTH_CERT (${derived}): tokens with it will not verify`)
    } catch (err) {
      notes.push(`REGISTRY_TOKEN_AUTH_CERT: not a certificate enlil can read (${(err as Error).message.split('\n')[0]})`)
    }
  }
  if (!token.realm) notes.push('auth.token.realm: missing: set it to the URL of the token server (REGISTRY_TOKEN_AUTH_REALM)')
}

export function convert(input: ConvertInput): ConvertResult {
  const notes: string[] = []
  const files: ConvertResult['files'] = []
  const config: Doc = {}
  if (input.environment !== undefined) convertEnvironment(input.environment, config, notes)
  if (input.distribution !== undefined) {
    if (!isDoc(input.distribution)) throw new Error('the distribution config is not a mapping of options')
    convertDistribution(input.distribution, config, notes)
  }
  if (input.dockerAuth !== undefined) {
    if (!isDoc(input.dockerAuth)) throw new Error('the docker_auth config is not a mapping of options')
    if (input.distribution === undefined) notes.push('storage: no distribution config given: the filesystem store in ./data (set storage yourself)')
    convertDockerAuth(input.dockerAuth, config, files, notes, input.usersPath ?? 'users.yml')
  } else if (isDoc(config.auth) && isDoc(config.auth.token) && config.auth.token.rootcertbundle === undefined && config.auth.token.jwks === undefined) {
    notes.push('auth.token: no rootcertbundle: give the token server\'s certificates (auth.token.rootcertbundle), or its docker_auth config (--auth) to make enlil the token server')
  }
  return { config, files, notes }
}
