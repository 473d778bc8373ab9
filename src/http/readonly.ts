/** @module Refuses writes while the registry is read-only: 405 UNSUPPORTED, as distribution answers. */
import type { MiddlewareHandler } from 'hono'
import { RegistryError } from '../oci/errors.js'
import type { ReadOnlyState } from '../registry/readonly.js'
import type { AppEnv } from './env.js'

export function refuseWritesWhenReadOnly(state: ReadOnlyState): MiddlewareHandler<AppEnv> {
  return async function refuseWritesWhenReadOnly(c, next) {
    const method = c.req.method
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') {
      const reason = await state.reason()
      if (reason !== undefined) {
        throw new RegistryError('UNSUPPORTED', `the registry is in read-only mode (${reason}): pulls work, pushes and deletes are refused until it is switched off`, { readonly: true })
      }
    }
    await next()
  }
}
