/** @module Settings derived from a validated config, where two options can say the same thing. */
import type { Config } from './schema.js'

/** Where metrics are served: enlil's `metrics` section, else distribution's `http.debug` listener. */
export function metricsSettings(config: Config): { addr?: string; public: boolean; path: string } {
  if (config.metrics.addr || config.metrics.public) return config.metrics
  const debug = config.http.debug
  if (debug.prometheus.enabled && debug.addr) return { addr: debug.addr, public: false, path: debug.prometheus.path }
  return { public: false, path: config.metrics.path }
}
