/**
 * @module The processes of one registry, as the store knows them: each announces its id and the
 * address of its internal listener under `_enlil/instances/<id>`, valid for a lease it renews, so
 * that another process can forward an upload request to the one holding the upload's live digest
 * (http/forwarding.ts). An announcement whose lease ran out is a process gone: its uploads are
 * finished elsewhere, reading the stored bytes back.
 *
 * The announcement also carries a key id (a hash of the cluster secret): processes with another
 * secret (another machine's `--workers` without a configured secret) ignore each other.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EDGE_SERVER_OPTIONS } from '../http/client-error.js'
import { type ForwardingOptions, internalHandlers, PROCESS_ID } from '../http/forwarding.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../observe/log.js'
import { paths } from '../registry/paths.js'
import type { StorageDriver } from '../storage/driver.js'
import { splitAddr } from './address.js'
import type { RequestListener } from 'node:http'

interface Announcement {
  url: string
  key: string
  /** Unix ms until which the process counts as alive. */
  until: number
}

/** Announcements this long past their lease are deleted by the next process that starts. */
const FORGET_AFTER_MS = 60 * 60_000

export interface Cluster extends ForwardingOptions {
  /** Opens the internal listener in front of `app` and announces this process in the store. */
  start(app: RequestListener): Promise<void>
  /** Withdraws the announcement (new requests stop coming) and closes the internal listener, cutting what still runs after `drainMs`. */
  stop(drainMs: number): Promise<void>
}

/** The cluster of this process, or undefined when no secret is configured (each process finishes its uploads alone). */
export function createCluster(config: Config, driver: StorageDriver, log: Logger): Cluster | undefined {
  const settings = config.cluster
  if (!settings.secret) return undefined
  const secret = Buffer.from(settings.secret, 'utf8')
  const key = createHash('sha256').update('enlil-cluster-key\n').update(secret).digest('hex').slice(0, 16)
  const self = randomBytes(8).toString('hex')
  const leaseMs = Math.max(3_000, settings.lease)
  const advertise = settings.advertise
  const addr = settings.addr ? splitAddr(settings.addr) : { host: advertise ?? '127.0.0.1', port: 0 }
  const known = new Map<string, Announcement>()
  let server: Server | undefined
  let renewal: NodeJS.Timeout | undefined
  let announcement: Announcement | undefined

  const announce = async () => {
    if (!announcement) return
    announcement.until = Date.now() + leaseMs
    await driver.putContent(paths.instance(self), JSON.stringify(announcement))
  }

  async function forgetStale(): Promise<void> {
    const now = Date.now()
    for (const id of (await driver.list(paths.instances)).slice(0, 1_000)) {
      if (!PROCESS_ID.test(id) || id === self) continue
      const entry = parse(await driver.getContent(paths.instance(id)).catch(() => undefined))
      if (!entry || entry.until < now - FORGET_AFTER_MS) await driver.delete(paths.instance(id), 'file').catch(() => {})
    }
  }

  return {
    self,
    secret,

    async lookup(id) {
      if (!PROCESS_ID.test(id)) return undefined
      const cached = known.get(id)
      if (cached && cached.until > Date.now()) return cached.url
      const entry = parse(await driver.getContent(paths.instance(id)))
      if (!entry || entry.key !== key || entry.until <= Date.now()) {
        known.delete(id)
        return undefined
      }
      if (known.size >= 1_000) known.clear()
      known.set(id, entry)
      return entry.url
    },

    async start(app) {
      const handlers = internalHandlers({ self, secret }, app)
      const internal = createServer(EDGE_SERVER_OPTIONS, handlers.request)
      internal.on('checkContinue', handlers.checkContinue)
      internal.requestTimeout = 0
      internal.keepAliveTimeout = 5_000
      await new Promise<void>((ok, fail) => {
        internal.once('error', fail)
        // exclusive: a worker of --workers gets a port of its own, not the one the primary shares.
        internal.listen({ port: addr.port, host: addr.host, exclusive: true }, () => {
          internal.off('error', fail)
          ok()
        })
      })
      server = internal
      const port = (internal.address() as AddressInfo).port
      let host = advertise ?? addr.host
      if (host === '0.0.0.0' || host === '::') host = '127.0.0.1'
      announcement = { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, key, until: 0 }
      if (!advertise && settings.addr && !/^(127\.|::1$|localhost$)/.test(addr.host)) {
        log.warn('cluster.addr is set without cluster.advertise: other instances reach this one at the host of cluster.addr', { url: announcement.url })
      }
      // An unreachable store must not stop the process (its requests get 503 until the store is
      // back, as without forwarding, and /readyz says so): the renewal below announces it then (and
      // warns while it can't). Until then, the others
      // finish its uploads with a read-back.
      await announce().catch((err: unknown) => log.debug('could not announce this process in the store for upload forwarding; retrying with each renewal', { err }))
      renewal = setInterval(() => {
        announce().catch((err: unknown) => log.warn('could not renew this process\'s announcement in the store; uploads it holds may be finished elsewhere with a read-back', { err }))
      }, Math.floor(leaseMs / 3))
      renewal.unref()
      void forgetStale().catch(() => {})
      log.debug('announced for upload forwarding', { id: self, url: announcement.url })
    },

    async stop(drainMs) {
      clearInterval(renewal)
      if (announcement) await driver.delete(paths.instance(self), 'file').catch(() => {})
      announcement = undefined
      if (server) {
        const closing = new Promise<void>((ok) => server!.close(() => ok()))
        server.closeIdleConnections()
        const deadline = setTimeout(() => server?.closeAllConnections(), drainMs)
        await closing
        clearTimeout(deadline)
      }
    },
  }
}

function parse(content: Buffer | undefined): Announcement | undefined {
  if (!content || content.length > 1_024) return undefined
  try {
    const value = JSON.parse(content.toString('utf8')) as Partial<Announcement>
    if (typeof value.url !== 'string' || !/^http:\/\/[^/?#@\s]+$/.test(value.url)) return undefined
    if (typeof value.key !== 'string' || typeof value.until !== 'number') return undefined
    return { url: value.url, key: value.key, until: value.until }
  } catch {
    return undefined
  }
}
