/** @module What `enlil serve` says about itself at startup, once: where, which config and store, which auth; no secrets. */
import { resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import { metricsSettings } from '../config/settings.js'
import { splitAddr } from './address.js'

export const AUTH_OFF_WARNING = 'authentication is off: anyone who can reach this port can push and pull'

const isWildcard = (host: string) => host === '' || host === '0.0.0.0' || host === '::'

/**
 * Where the listener is, in words, and a URL to reach it from this machine: a wildcard address
 * listens on every interface, and is reached here on localhost.
 */
export function listenDescription(config: Config, port: number): { url: string; listen: string } {
  const { host } = splitAddr(config.http.addr)
  const scheme = config.http.tls.certificate ? 'https' : 'http'
  if (isWildcard(host)) return { url: `${scheme}://localhost:${port}`, listen: `port ${port} on every interface` }
  const shown = host.includes(':') ? `[${host}]` : host
  return { url: `${scheme}://${shown}:${port}`, listen: `${shown}:${port} only` }
}

/** The store in a few words, with a filesystem folder made absolute (a relative one depends on where enlil runs). */
export function storeDescription(config: Config): Record<string, unknown> {
  const s3 = config.storage.s3
  return config.storage.driver === 'filesystem'
    ? { storage: 'filesystem', root: resolve(config.storage.filesystem.rootdirectory) }
    : { storage: 's3', bucket: s3.bucket, endpoint: s3.regionendpoint ?? `AWS (${s3.region})`, prefix: s3.rootdirectory || undefined }
}

export interface Started {
  /** The config file in use; none: defaults and the environment. */
  file: string | undefined
  /** The port bound (port 0 in the config: the one the system chose). */
  port: number
  metricsUrl?: string
}

/** The one startup line: every field a user needs to know what is running, and nothing secret. */
export function startupSummary(config: Config, started: Started): Record<string, unknown> {
  const token = config.auth.token
  const mode = config.auth.mode ?? 'none'
  const auth = mode === 'token' && (token?.rootcertbundle || token?.jwks) ? 'token (external issuer)' : mode
  const endpoints = config.notifications.endpoints.filter((e) => !e.disabled).map((e) => e.name)
  const metrics = metricsSettings(config)
  const { url, listen } = listenDescription(config, started.port)
  return {
    url, listen,
    config: started.file ? resolve(started.file) : 'none (defaults and the environment)',
    workers: config.http.workers, tls: Boolean(config.http.tls.certificate),
    ...storeDescription(config), auth, delete: config.storage.delete.enabled,
    readonly: config.storage.maintenance.readonly.enabled || undefined,
    quotas: config.quotas.total !== undefined || config.quotas.repositories.length > 0 ? { total: config.quotas.total, repositories: config.quotas.repositories.length } : undefined,
    metrics: started.metricsUrl ?? metrics.addr ?? (metrics.public ? `${url}${metrics.path}` : undefined),
  }
}
