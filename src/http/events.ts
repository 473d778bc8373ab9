/** @module Builds distribution-style events from a request and hands them to the notifier (never awaited). */
import type { Context } from 'hono'
import type { EventAction, EventTarget } from '../observe/notifications.js'
import type { AppEnv } from './env.js'
import { absolute, type RouteDeps } from './routes/deps.js'

export const BLOB_MEDIA_TYPE = 'application/octet-stream'

/** `target.url` is filled from the repository and digest; `kind` says which URL. */
export function publishEvent(c: Context<AppEnv>, deps: RouteDeps, action: EventAction, kind: 'blobs' | 'manifests', target: Omit<EventTarget, 'url' | 'length'>): void {
  const notifier = deps.notifier
  if (!notifier) return
  const url = target.digest ? absolute(c, deps, `/v2/${target.repository}/${kind}/${target.digest}`) : undefined
  notifier.publish(action, { ...target, ...(target.size !== undefined ? { length: target.size } : {}), ...(url ? { url } : {}) }, {
    id: c.var.requestId,
    addr: c.env?.incoming?.socket?.remoteAddress ?? '',
    host: c.req.header('host') ?? new URL(c.req.url).host,
    method: c.req.method,
    useragent: c.req.header('user-agent') ?? '',
  }, c.var.subject || undefined)
}
