/**
 * @module Webhooks: registry events (push, pull, delete, mount) POSTed to configured endpoints in
 * distribution's notification envelope, so receivers written for distribution work unchanged.
 *
 * Best-effort and in memory, by design: `publish` only queues (a request never waits for, or fails
 * because of, a receiver); each endpoint sends its events in order, one envelope each, retrying a
 * failure with exponential backoff up to `maxbackoff`; a full queue drops its oldest event with a
 * warning, and events still queued when the process stops are lost. Registry state never depends
 * on them.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from './log.js'
import { metrics } from './metrics.js'

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json'

export type EventAction = 'push' | 'pull' | 'delete' | 'mount'

export interface EventTarget {
  mediaType?: string
  size?: number
  digest?: string
  /** distribution sends the size twice (`length` is the older name). */
  length?: number
  repository: string
  url?: string
  tag?: string
  /** Mounts: the repository the blob came from. */
  fromRepository?: string
}

export interface EventRequest {
  id: string
  addr: string
  host: string
  method: string
  useragent: string
}

export interface RegistryEvent {
  id: string
  timestamp: string
  action: EventAction
  target: EventTarget
  request: EventRequest
  actor: { name?: string }
  source: { addr: string; instanceID: string }
}

export interface EndpointConfig {
  name: string
  url: string
  disabled?: boolean
  headers?: Record<string, string | string[]>
  timeout?: number
  threshold?: number
  backoff?: number
  maxbackoff?: number
  queuesize?: number
  ignoredmediatypes?: string[]
  ignore?: { mediatypes?: string[]; actions?: string[] }
}

export interface Notifier {
  publish(action: EventAction, target: EventTarget, request: EventRequest, actor: string | undefined): void
  /** Stops sending; queued events are dropped. */
  close(): void
}

/** undefined when no endpoint is enabled: callers then skip building events at all. */
export function createNotifier(endpoints: EndpointConfig[], source: { addr: string }, log: Logger): Notifier | undefined {
  const queues = endpoints.filter((e) => !e.disabled).map((e) => new EndpointQueue(e, log))
  if (queues.length === 0) return undefined
  const instanceID = randomUUID()
  return {
    publish(action, target, request, actor) {
      const event: RegistryEvent = {
        id: randomUUID(), timestamp: new Date().toISOString(), action, target, request,
        actor: actor ? { name: actor } : {}, source: { addr: source.addr, instanceID },
      }
      for (const q of queues) q.offer(event)
    },
    close() {
      for (const q of queues) q.close()
    },
  }
}

class EndpointQueue {
  readonly #queue: RegistryEvent[] = []
  readonly #ignoredTypes: Set<string>
  readonly #ignoredActions: Set<string>
  readonly #headers: Record<string, string>
  #sending = false
  #closed = false
  #failures = 0
  #wake: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(private readonly config: EndpointConfig, private readonly log: Logger) {
    this.#ignoredTypes = new Set([...(config.ignoredmediatypes ?? []), ...(config.ignore?.mediatypes ?? [])])
    this.#ignoredActions = new Set(config.ignore?.actions ?? [])
    this.#headers = { 'Content-Type': EVENTS_MEDIA_TYPE }
    for (const [k, v] of Object.entries(config.headers ?? {})) this.#headers[k] = Array.isArray(v) ? v.join(', ') : v
  }

  offer(event: RegistryEvent): void {
    if (this.#closed || this.#ignoredActions.has(event.action)) return
    if (event.target.mediaType && this.#ignoredTypes.has(event.target.mediaType)) return
    if (this.#queue.length >= (this.config.queuesize ?? 1000)) {
      const dropped = this.#queue.shift()!
      metrics.events.inc([this.config.name, 'dropped'])
      this.log.warn('notification queue full: dropped the oldest event', { endpoint: this.config.name, action: dropped.action, repository: dropped.target.repository, digest: dropped.target.digest })
    }
    this.#queue.push(event)
    if (!this.#sending) void this.#run()
  }

  close(): void {
    this.#closed = true
    this.#queue.length = 0
    clearTimeout(this.#timer)
    this.#wake?.()
  }

  async #run(): Promise<void> {
    this.#sending = true
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const event = this.#queue[0]!
        const error = await this.#send(event)
        if (error === undefined) {
          // The event may have been dropped (queue full) while it was being sent.
          if (this.#queue[0] === event) this.#queue.shift()
          if (this.#failures >= (this.config.threshold ?? 5)) this.log.info('notification endpoint recovered', { endpoint: this.config.name })
          this.#failures = 0
          metrics.events.inc([this.config.name, 'sent'])
          continue
        }
        this.#failures++
        metrics.events.inc([this.config.name, 'failed'])
        const fields = { endpoint: this.config.name, failures: this.#failures, error, queued: this.#queue.length }
        if (this.#failures === (this.config.threshold ?? 5)) this.log.warn('notification endpoint is failing; retrying with backoff', fields)
        else this.log.debug('notification delivery failed', fields)
        const delay = Math.min((this.config.backoff ?? 1_000) * 2 ** (this.#failures - 1), this.config.maxbackoff ?? 60_000)
        await new Promise<void>((ok) => {
          this.#wake = ok
          this.#timer = setTimeout(ok, delay)
          this.#timer.unref()
        })
        this.#wake = undefined
      }
    } finally {
      this.#sending = false
    }
  }

  /** undefined on success (2xx or 3xx, as distribution counts it), else why it failed. */
  async #send(event: RegistryEvent): Promise<string | undefined> {
    try {
      const res = await fetch(this.config.url, {
        method: 'POST', headers: this.#headers, body: JSON.stringify({ events: [event] }),
        signal: AbortSignal.timeout(this.config.timeout ?? 5_000), redirect: 'manual',
      })
      await res.body?.cancel()
      return res.status >= 200 && res.status < 400 ? undefined : `HTTP ${res.status}`
    } catch (err) {
      return (err as Error).message
    }
  }
}
