/** @module Types shared by the HTTP layer: what each request carries in Hono's context. */
import type { HttpBindings } from '@hono/node-server'
import type { Logger } from '../observe/log.js'
import type { Endpoint } from '../oci/endpoints.js'
import type { Grant } from '../auth/authorizer.js'

export type AppEnv = {
  /** Set when served by @hono/node-server; absent under `app.request()` in tests. */
  Bindings: Partial<HttpBindings>
  Variables: {
    requestId: string
    log: Logger
    /** The authenticated account ('' when anonymous or auth is off). */
    subject: string
    /**
     * The client's address, computed once per request by the first middleware: the socket's, or
     * what a proxy listed in `http.trustedproxies` says (client-address.ts). Throttle, ACL and log use it.
     */
    clientAddress: string
    /** What auth granted; undefined when auth is off (everything is allowed). */
    grant?: Grant
    /** The endpoint read once from the raw path (http/endpoint.ts); set before auth on every request. */
    endpoint?: Endpoint
    /** Body bytes this request stored (uploads set it; else the access log uses Content-Length). */
    bytesIn?: number
  }
}
