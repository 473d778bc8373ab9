/** @module What `enlil serve` says about itself at startup: where, which store, which auth; no secrets. */
import { type Config } from '../config/schema.js'
import { metricsSettings } from '../config/settings.js'

export function startupSummary(config: Config): Record<string, unknown> {
  const s3 = config.storage.s3
  const store = config.storage.driver === 'filesystem'
    ? { storage: 'filesystem', root: config.storage.filesystem.rootdirectory }
    : { storage: 's3', bucket: s3.bucket, endpoint: s3.regionendpoint ?? `AWS (${s3.region})`, prefix: s3.rootdirectory || undefined }
  const token = config.auth.token
  const mode = config.auth.mode ?? 'none'
  const auth = mode === 'token' && (token?.rootcertbundle || token?.jwks) ? 'token (external issuer)' : mode
  const endpoints = config.notifications.endpoints.filter((e) => !e.disabled).map((e) => e.name)
  return {
    addr: config.http.addr, workers: config.http.workers, tls: Boolean(config.http.tls.certificate),
    ...store, auth, delete: config.storage.delete.enabled,
    readonly: config.storage.maintenance.readonly.enabled || undefined,
    quotas: config.quotas.total !== undefined || config.quotas.repositories.length > 0 ? { total: config.quotas.total, repositories: config.quotas.repositories.length } : undefined,
    metricsAddr: metricsSettings(config).addr,
    notifications: endpoints.length > 0 ? endpoints : undefined,
  }
}
