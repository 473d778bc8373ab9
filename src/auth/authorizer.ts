/** @module What every auth mode implements: one method, as in distribution's auth package. */

export type Action = 'pull' | 'push' | 'delete' | '*'
export interface Access {
  type: 'repository' | 'registry'
  name: string
  actions: Action[]
}
export interface Grant {
  /** The account, or '' for anonymous. */
  subject: string
  access: Access[]
  /**
   * Whether the holder may also pull `name`, a repository the request did not name (a mount
   * without `from` looks for a repository the caller can read). Omitted: only what `access` holds.
   */
  mayPull?(name: string): boolean
}

export interface AuthRequest {
  authorization?: string
  /** The client's address, for the login throttle and `ip` ACL matches. */
  source: string
  /** The registry's public base URL, for challenges (computed only when one is sent). */
  baseUrl: () => string
}

export interface Authorizer {
  readonly mode: string
  /**
   * Resolves to what the request may do; throws RegistryError UNAUTHORIZED (with the challenge in
   * its headers) or DENIED.
   */
  authorize(request: AuthRequest, wanted: Access[]): Promise<Grant>
}
