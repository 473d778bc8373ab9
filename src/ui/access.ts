/**
 * @module Who the web UI serves and what they may do: the same accounts and ACL rules as the API,
 * asked through one small interface that server/ui-access.ts builds from the auth mode.
 */
import type { Action } from '../auth/authorizer.js'

/** The actions the UI offers on a repository. */
export type Right = Exclude<Action, '*'>

export interface UiAccess {
  /**
   * `open`: no auth, everyone may do everything. `accounts`: enlil checks passwords (htpasswd, a
   * users file, S3 key pairs). `external`: an external issuer owns the accounts; the UI browses with
   * its anonymous rights and cannot log anyone in.
   */
  readonly kind: 'open' | 'accounts' | 'external'
  /** The key that signs session cookies; identical on every instance that shares the accounts. */
  sessionKey(): Promise<Uint8Array>
  /**
   * Checks a login through the login throttle. Resolves to the account, or throws: the accounts'
   * InvalidCredentialsError for wrong credentials, a RegistryError (429) while locked out.
   */
  login?(user: string, password: string, source: string): Promise<string>
  /** A fingerprint of what the account logged in with; a session ends when it changes (password changed, account removed). */
  credential?(account: string): string
  /** What `account` ('' for anonymous) may do on repository `name`. */
  rights(account: string, name: string, source: string): Promise<Set<Right>>
  /** Whether the catalog may be listed at all (external issuers grant it as `registry:catalog:*`). */
  mayList(account: string, source: string): Promise<boolean>
  /** Whether the account may run the GC preview: the rules give it every action on the registry. */
  isAdmin(account: string, source: string): boolean
  /** For `accounts` that are S3 key pairs: the login form asks for an access key ID and a secret key. */
  readonly s3Keys?: boolean
  /** For `external`: where accounts log in (the realm), shown to the user. */
  readonly realm?: string
}

const ALL: readonly Right[] = ['pull', 'push', 'delete']
export const everything = () => new Set<Right>(ALL)
export const nothing = () => new Set<Right>()
