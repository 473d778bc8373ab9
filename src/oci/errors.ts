/** @module The spec's error codes (distribution-spec, code-1 … code-14) with their HTTP statuses: the one table. */

export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Not in the spec's table; distribution's codes for the same situations.
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
  // Transient storage trouble (throttling, unreachable backend): the client may retry.
  UNAVAILABLE: { status: 503, message: 'storage temporarily unavailable, retry later' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERROR_CODES

export interface ErrorResponseOverrides {
  status?: number
  headers?: Record<string, string>
}

/** The only error the core throws on purpose; http/ renders it as the spec's JSON envelope. */
export class RegistryError extends Error {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly detail?: unknown,
    readonly response: ErrorResponseOverrides = {},
  ) {
    super(message ?? ERROR_CODES[code].message)
    this.name = 'RegistryError'
  }

  get status(): number {
    return this.response.status ?? ERROR_CODES[this.code].status
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError
}
