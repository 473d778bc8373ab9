/**
 * @module `enlil healthcheck`: asks the local /healthz of the configured address; for a container's
 * HEALTHCHECK, so that slim images need no curl or wget.
 */
import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'
import type { Config } from '../config/schema.js'
import { splitAddr } from '../server/address.js'
import { loadConfig } from '../config/load.js'
import { reportingConfigProblems } from './config-file.js'

/** The /healthz URL of this machine's enlil: a wildcard listen address is reached on loopback. */
export function localHealthUrl(config: Config): string {
  const { host, port } = splitAddr(config.http.addr)
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
  return `${config.http.tls.certificate ? 'https' : 'http'}://${local}:${port}/healthz`
}

/** Resolves to true when /healthz answers 200 within `timeoutMs`. */
export function probeHealth(url: string, timeoutMs = 4000): Promise<boolean> {
  return new Promise((ok) => {
    // Liveness of the process on this machine, not the certificate's identity: TLS is not verified.
    const get = url.startsWith('https:') ? httpsGet : httpGet
    const req = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume()
      ok(res.statusCode === 200)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => ok(false))
  })
}

/** `enlil healthcheck [CONFIG.yml]`: exit 0 when the local /healthz answers 200. */
export function healthcheckCommand(file: string | undefined): Promise<number> {
  return reportingConfigProblems(async () => {
    const url = localHealthUrl(loadConfig(process.env, file))
    const healthy = await probeHealth(url)
    if (!healthy) console.error(`enlil: ${url} did not answer 200`)
    return healthy ? 0 : 1
  })
}
