/**
 * @module `enlil healthcheck`: asks the local /healthz of the configured address; for a container's
 * HEALTHCHECK, so that slim images need no curl or wget.
 */
import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'
import type { Config } from '../config/schema.js'
import { splitAddr } from '../server/serve.js'
import { loadConfig } from '../config/load.js'
import { type Command, usageError, usageLine } from './cli.js'
import { CONFIG_OPTION, chosenConfigFile, reportingConfigProblems } from './config-file.js'

export const healthcheckSpec: Command = {
  name: 'healthcheck',
  summary: "exit 0 when this machine's enlil answers /healthz (the image's HEALTHCHECK)",
  usage: '[CONFIG.yml] [--config CONFIG.yml]',
  description: `Asks /healthz of the enlil this configuration describes, on this machine (a wildcard
http.addr is asked on 127.0.0.1), and exits 0 when it answers 200 within 4 s, else 1 with the
reason on stderr. The image's HEALTHCHECK runs it: slim images have no curl.`,
  options: { config: CONFIG_OPTION },
  positionals: [0, 1],
  run: (parsed) => {
    const chosen = chosenConfigFile(parsed)
    if ('problem' in chosen) return Promise.resolve(usageError('healthcheck', chosen.problem, usageLine('healthcheck', healthcheckSpec)))
    return healthcheckCommand(chosen.file)
  },
}

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
