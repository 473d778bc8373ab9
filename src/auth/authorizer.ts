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
}

export interface Authorizer {
  readonly mode: string
  /**
   * Resolves to what the request may do; throws RegistryError UNAUTHORIZED (with the challenge in
   * its headers) or DENIED.
   */
  authorize(request: { authorization?: string; source: string; baseUrl: string }, wanted: Access[]): Promise<Grant>
}
