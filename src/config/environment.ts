/**
 * @module Environment variables → config paths, by an explicit table (not reflection): distribution's
 * names where they exist, enlil's own (`ENLIL_*`), and the ones `fly storage create` sets.
 */

/** Environment variable → config path. distribution's names where they exist. */
export const ENVIRONMENT: Record<string, string> = {
  REGISTRY_HTTP_ADDR: 'http.addr',
  REGISTRY_HTTP_HOST: 'http.host',
  REGISTRY_HTTP_DRAINTIMEOUT: 'http.draintimeout',
  ENLIL_WORKERS: 'http.workers',
  ENLIL_HTTP_TRUSTEDPROXIES: 'http.trustedproxies',
  REGISTRY_HTTP_TLS_CERTIFICATE: 'http.tls.certificate',
  REGISTRY_HTTP_TLS_KEY: 'http.tls.key',
  REGISTRY_LOG_LEVEL: 'log.level',
  REGISTRY_LOG_ACCESSLOG_DISABLED: 'log.accesslog.disabled',
  REGISTRY_STORAGE: 'storage.driver',
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'storage.filesystem.rootdirectory',
  ENLIL_STORAGE_FILESYSTEM_METADATA: 'storage.filesystem.metadata',
  ENLIL_STORAGE_FILESYSTEM_FSYNC: 'storage.filesystem.fsync',
  REGISTRY_STORAGE_DELETE_ENABLED: 'storage.delete.enabled',
  REGISTRY_STORAGE_REDIRECT_DISABLE: 'storage.redirect.disable',
  REGISTRY_STORAGE_S3_BUCKET: 'storage.s3.bucket',
  REGISTRY_STORAGE_S3_ACCESSKEY: 'storage.s3.accesskey',
  REGISTRY_STORAGE_S3_SECRETKEY: 'storage.s3.secretkey',
  REGISTRY_STORAGE_S3_REGION: 'storage.s3.region',
  REGISTRY_STORAGE_S3_REGIONENDPOINT: 'storage.s3.regionendpoint',
  REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'storage.s3.forcepathstyle',
  REGISTRY_STORAGE_S3_SECURE: 'storage.s3.secure',
  REGISTRY_STORAGE_S3_V4AUTH: 'storage.s3.v4auth',
  REGISTRY_STORAGE_S3_CHUNKSIZE: 'storage.s3.chunksize',
  REGISTRY_STORAGE_S3_ROOTDIRECTORY: 'storage.s3.rootdirectory',
  REGISTRY_STORAGE_S3_ENCRYPT: 'storage.s3.encrypt',
  ENLIL_STORAGE_S3_EQUALPARTS: 'storage.s3.equalparts',
  ENLIL_STORAGE_S3_TIGRISRENAME: 'storage.s3.tigrisrename',
  ENLIL_STORAGE_S3_TIGRISCONSISTENT: 'storage.s3.tigrisconsistent',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'storage.maintenance.uploadpurging.enabled',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: 'storage.maintenance.uploadpurging.age',
  REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: 'storage.maintenance.uploadpurging.interval',
  ENLIL_STORAGE_MAINTENANCE_UPLOADWRITERLEASE: 'storage.maintenance.uploadwriterlease',
  // operations
  REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'storage.maintenance.readonly.enabled',
  REGISTRY_HTTP_DEBUG_ADDR: 'http.debug.addr',
  REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'http.debug.prometheus.enabled',
  REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH: 'http.debug.prometheus.path',
  ENLIL_METRICS_ADDR: 'metrics.addr',
  ENLIL_METRICS_PUBLIC: 'metrics.public',
  ENLIL_QUOTAS_TOTAL: 'quotas.total',
  ENLIL_CLUSTER_SECRET: 'cluster.secret',
  ENLIL_CLUSTER_ADDR: 'cluster.addr',
  ENLIL_CLUSTER_ADVERTISE: 'cluster.advertise',
  ENLIL_CLUSTER_LEASE: 'cluster.lease',
  ENLIL_LIMITS_MANIFESTSIZE: 'limits.manifestsize',
  REGISTRY_AUTH: 'auth.mode',
  REGISTRY_AUTH_HTPASSWD_REALM: 'auth.htpasswd.realm',
  REGISTRY_AUTH_HTPASSWD_PATH: 'auth.htpasswd.path',
  REGISTRY_AUTH_TOKEN_REALM: 'auth.token.realm',
  REGISTRY_AUTH_TOKEN_SERVICE: 'auth.token.service',
  REGISTRY_AUTH_TOKEN_ISSUER: 'auth.token.issuer',
  REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: 'auth.token.rootcertbundle',
  ENLIL_AUTH_TOKEN_EXPIRATION: 'auth.token.expiration',
  ENLIL_AUTH_TOKEN_SIGNINGKEY: 'auth.token.signingkey',
  JWT_KEY_B64: 'auth.token.signingkeyb64',
  ENLIL_AUTH_TOKEN_CERTIFICATE: 'auth.token.certificate',
  JWT_CERT_B64: 'auth.token.certificateb64',
  ENLIL_AUTH_TOKEN_USERS: 'auth.token.users',
  ENLIL_AUTH_TOKEN_USERS_B64: 'auth.token.usersb64',
  ENLIL_AUTH_TOKEN_JWKS: 'auth.token.jwks',
  ENLIL_AUTH_TOKEN_PATH: 'auth.token.path',
  ENLIL_AUTH_TOKEN_S3KEYS: 'auth.token.s3keys',
  // Garbage collection.
  ENLIL_GC_GRACE: 'gc.grace',
  ENLIL_GC_DELETEUNTAGGED: 'gc.deleteuntagged',
  ENLIL_GC_SCHEDULE_INTERVAL: 'gc.schedule.interval',
  // The web UI.
  ENLIL_UI_ENABLED: 'ui.enabled',
  ENLIL_UI_PATH: 'ui.path',
  // Pull-through cache: distribution's proxy mode, and enlil's cache limits.
  REGISTRY_PROXY_REMOTEURL: 'proxy.remoteurl',
  REGISTRY_PROXY_USERNAME: 'proxy.username',
  REGISTRY_PROXY_PASSWORD: 'proxy.password',
  REGISTRY_PROXY_TTL: 'proxy.ttl',
  ENLIL_MIRROR_MAXSIZE: 'mirror.maxsize',
  ENLIL_MIRROR_EVICTAFTER: 'mirror.evictafter',
}

/** What `fly storage create` (Tigris) sets: used when the REGISTRY_STORAGE_S3_* name is absent. */
export const FALLBACK_ENVIRONMENT: Record<string, string> = {
  BUCKET_NAME: 'storage.s3.bucket',
  AWS_ACCESS_KEY_ID: 'storage.s3.accesskey',
  AWS_SECRET_ACCESS_KEY: 'storage.s3.secretkey',
  AWS_ENDPOINT_URL_S3: 'storage.s3.regionendpoint',
  AWS_REGION: 'storage.s3.region',
  // fly.io sets it on every machine: the address of the private network (6PN) the machines share.
  FLY_PRIVATE_IP: 'cluster.advertise',
}

/**
 * Variables enlil reads besides the table (which config file), and distribution's that a working
 * setup sets but enlil needs not (upload state lives in the store, not in signed state; no
 * distribution health checker or blob descriptor cache): accepted without a warning.
 */
const OTHER_NAMES = new Set(['REGISTRY_CONFIG', 'ENLIL_CONFIG', 'REGISTRY_HTTP_SECRET', 'REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR', 'REGISTRY_LOG_FORMATTER'])
const OTHER_PREFIXES = ['REGISTRY_HEALTH_', 'REGISTRY_LOG_FIELDS_', 'ENLIL_TEST_']

/**
 * The `REGISTRY_*` and `ENLIL_*` variables set in `env` that enlil does not read (distribution
 * warns about each too): a typo, or another project's naming (open-balena's `REGISTRY_TOKEN_AUTH_*`).
 * Not Kubernetes' service links (`REGISTRY_SERVICE_HOST`, `REGISTRY_PORT_5000_TCP…` for a Service
 * named registry), nor the test suite's `ENLIL_TEST_*`.
 */
export function unknownVariables(env: Record<string, string | undefined>): string[] {
  return Object.keys(env).filter((name) => /^(REGISTRY|ENLIL)_/.test(name) && env[name] !== undefined
    && !(name in ENVIRONMENT) && !OTHER_NAMES.has(name) && !OTHER_PREFIXES.some((p) => name.startsWith(p))
    && !/^REGISTRY_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?)$/.test(name)).sort()
}

/** Unknown variables that look like auth settings: with them, starting with auth off would be a surprise. */
export const looksLikeAuth = (name: string) => /AUTH|TOKEN|HTPASSWD|JWT|REALM|ISSUER|CERT/.test(name)

/** The startup and `config check` warning for one of unknownVariables(). */
export const unknownVariableWarning = (name: string) => `unknown environment variable ${name}: ignored (enlil's names are in README's option table${/^REGISTRY_TOKEN_AUTH_|^REGISTRY_HOST$/.test(name) ? '; open-balena\'s .env converts with `enlil config convert --env .env`' : ''})`
