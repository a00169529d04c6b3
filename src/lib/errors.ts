/**
 * The one error family of openbits. Every error thrown on purpose is a `BitsError` with a stable
 * `code` (API: never rename one), the process exit code it maps to, whether trying again later can
 * help, and a hint naming the next step. Where BITS has a name for the failure, `hresult` carries
 * its HRESULT (`0x80200003`), so users can match what Windows prints.
 */

/** Exit codes by class of failure; `docs/exit-codes.md` documents this table. */
export const ExitCode = {
  OK: 0,
  UNKNOWN: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  INVALID_STATE: 4,
  TRANSIENT: 5,
  PERMANENT_REMOTE: 6,
  LOCAL_IO: 7,
  STATE_STORE: 8,
  PEER_OR_SERVER: 9,
  STILL_ACTIVE: 10,
  INTERNAL: 70,
  INTERRUPTED: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

interface CodeSpec {
  exitCode: ExitCodeValue
  retryable: boolean
}

/**
 * Every stable error code and what it means for the process. One table, so the exit status of a
 * failure never depends on which command hit it.
 */
export const ERROR_CODES = {
  UNKNOWN: {exitCode: ExitCode.UNKNOWN, retryable: false},
  USAGE_INVALID_ARG: {exitCode: ExitCode.USAGE, retryable: false},
  USAGE_AMBIGUOUS_JOB: {exitCode: ExitCode.USAGE, retryable: false},
  USAGE_STRING_TOO_LONG: {exitCode: ExitCode.USAGE, retryable: false},
  USAGE_UNSUPPORTED: {exitCode: ExitCode.USAGE, retryable: false},
  JOB_NOT_FOUND: {exitCode: ExitCode.NOT_FOUND, retryable: false},
  FILE_NOT_FOUND: {exitCode: ExitCode.NOT_FOUND, retryable: false},
  JOB_INVALID_STATE: {exitCode: ExitCode.INVALID_STATE, retryable: false},
  JOB_EMPTY: {exitCode: ExitCode.INVALID_STATE, retryable: false},
  JOB_TOO_MANY_FILES: {exitCode: ExitCode.INVALID_STATE, retryable: false},
  JOB_FAILED: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_NETWORK: {exitCode: ExitCode.TRANSIENT, retryable: true},
  TRANSFER_TIMEOUT: {exitCode: ExitCode.TRANSIENT, retryable: true},
  TRANSFER_HTTP_STATUS: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_HTTP_STATUS_TRANSIENT: {exitCode: ExitCode.TRANSIENT, retryable: true},
  TRANSFER_RANGE_UNSUPPORTED: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_MISSING_SIZE: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_INVALID_RESPONSE: {exitCode: ExitCode.TRANSIENT, retryable: true},
  TRANSFER_TLS: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_REDIRECT_DISALLOWED: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_AUTH_REQUIRED: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_PROXY: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_MAX_TIME: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  TRANSFER_NO_PROGRESS: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  IO_ERROR: {exitCode: ExitCode.LOCAL_IO, retryable: false},
  IO_LOCAL_FILE_CHANGED: {exitCode: ExitCode.LOCAL_IO, retryable: false},
  STATE_LOCKED: {exitCode: ExitCode.STATE_STORE, retryable: true},
  STATE_CORRUPT: {exitCode: ExitCode.STATE_STORE, retryable: false},
  STATE_UNREADABLE: {exitCode: ExitCode.STATE_STORE, retryable: false},
  SERVER_ALREADY_RUNNING: {exitCode: ExitCode.PEER_OR_SERVER, retryable: false},
  SERVER_LISTEN: {exitCode: ExitCode.PEER_OR_SERVER, retryable: false},
  PEER_UNREACHABLE: {exitCode: ExitCode.PEER_OR_SERVER, retryable: true},
  PEER_PROTOCOL: {exitCode: ExitCode.PEER_OR_SERVER, retryable: false},
  PEER_UNTRUSTED: {exitCode: ExitCode.PEER_OR_SERVER, retryable: false},
  PEER_TRUST_FULL: {exitCode: ExitCode.PEER_OR_SERVER, retryable: true},
  PEER_QUARANTINED: {exitCode: ExitCode.PEER_OR_SERVER, retryable: true},
  DISCOVERY_FAILED: {exitCode: ExitCode.PEER_OR_SERVER, retryable: true},
  CACHE_MISS: {exitCode: ExitCode.NOT_FOUND, retryable: false},
  CACHE_CORRUPT: {exitCode: ExitCode.STATE_STORE, retryable: false},
  CACHE_FULL: {exitCode: ExitCode.LOCAL_IO, retryable: false},
  UPLOAD_PROTOCOL: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  UPLOAD_SESSION_UNKNOWN: {exitCode: ExitCode.TRANSIENT, retryable: true},
  UPLOAD_SERVER_ERROR: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  UPLOAD_TOO_LARGE: {exitCode: ExitCode.PERMANENT_REMOTE, retryable: false},
  JOB_STILL_ACTIVE: {exitCode: ExitCode.STILL_ACTIVE, retryable: true},
  INTERRUPTED: {exitCode: ExitCode.INTERRUPTED, retryable: true},
  INTERNAL: {exitCode: ExitCode.INTERNAL, retryable: false},
} as const satisfies Record<string, CodeSpec>

export type ErrorCode = keyof typeof ERROR_CODES

/** HRESULTs of BITS that openbits reproduces, by their BITS names. */
export const HRESULT = {
  BG_S_PARTIAL_COMPLETE: 0x00200017,
  BG_E_NOT_FOUND: 0x80200001,
  BG_E_INVALID_STATE: 0x80200002,
  BG_E_EMPTY: 0x80200003,
  BG_E_NETWORK_DISCONNECTED: 0x80200010,
  BG_E_MISSING_FILE_SIZE: 0x80200011,
  BG_E_INSUFFICIENT_HTTP_SUPPORT: 0x80200012,
  BG_E_INSUFFICIENT_RANGE_SUPPORT: 0x80200013,
  BG_E_TOO_MANY_FILES: 0x8020001c,
  BG_E_LOCAL_FILE_CHANGED: 0x8020001d,
  BG_E_TOO_LARGE: 0x80200020,
  BG_E_STRING_TOO_LONG: 0x80200021,
  BG_E_INVALID_PROXY_INFO: 0x8020003f,
  BG_E_INVALID_CREDENTIALS: 0x80200040,
  BG_E_VALIDATION_FAILED: 0x80200053,
  BG_E_MAXDOWNLOAD_TIMEOUT: 0x80200054,
  E_INVALIDARG: 0x80070057,
  E_ACCESSDENIED: 0x80070005,
  E_NOTIMPL: 0x80004001,
  E_FAIL: 0x80004005,
  ERROR_DISK_FULL: 0x80070070,
  ERROR_FILE_NOT_FOUND: 0x80070002,
  ERROR_PATH_NOT_FOUND: 0x80070003,
  WINHTTP_TIMEOUT: 0x80072ee2,
  WINHTTP_NAME_NOT_RESOLVED: 0x80072ee7,
  WINHTTP_CANNOT_CONNECT: 0x80072efd,
  WINHTTP_CONNECTION_ERROR: 0x80072efe,
  WINHTTP_INVALID_SERVER_RESPONSE: 0x80072f78,
  WINHTTP_SECURE_FAILURE: 0x80072f8f,
  WINHTTP_SECURE_CERT_DATE_INVALID: 0x80072f05,
  WINHTTP_SECURE_CERT_CN_INVALID: 0x80072f06,
  WINHTTP_SECURE_INVALID_CA: 0x80072f0d,
  WINHTTP_SECURE_CERT_REV_FAILED: 0x80072f19,
  WINHTTP_SECURE_CERT_REVOKED: 0x80072f8a,
  WINHTTP_SECURE_CERT_WRONG_USAGE: 0x80072f17,
  WINHTTP_CLIENT_AUTH_CERT_NEEDED: 0x80072f0c,
  WINHTTP_REDIRECT_FAILED: 0x80072f7a,
} as const

/** `0x80190194` for HTTP 404: BITS maps status n to `0x80190000 + n`. */
export function hresultForHttpStatus(status: number): number {
  return 0x80190000 + status
}

/** Formats an HRESULT the way bitsadmin prints it: `0x` and eight hex digits. */
export function formatHresult(value: number): string {
  return '0x' + (value >>> 0).toString(16).padStart(8, '0')
}

export interface BitsErrorOptions {
  hint?: string
  hresult?: number
  details?: Record<string, unknown>
  cause?: unknown
  /** Overrides the table for this instance (a transport error the caller knows to be final). */
  retryable?: boolean
}

/** Base of every error openbits throws on purpose. */
export class BitsError extends Error {
  readonly code: ErrorCode
  readonly exitCode: ExitCodeValue
  readonly retryable: boolean
  readonly hint: string | undefined
  readonly hresult: number | undefined
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, options: BitsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'BitsError'
    this.code = code
    this.exitCode = ERROR_CODES[code].exitCode
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable
    this.hint = options.hint
    this.hresult = options.hresult
    this.details = options.details
  }

  /** The `error` member of the `--json` failure envelope. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      name: this.name,
      message: this.message,
      ...(this.hresult === undefined ? {} : {hresult: formatHresult(this.hresult)}),
      ...(this.hint === undefined ? {} : {hint: this.hint}),
      retryable: this.retryable,
      ...(this.details === undefined ? {} : {details: this.details}),
    }
  }
}

/** True when `err`, or anything in its `cause` chain, is worth retrying later. */
export function isRetryable(err: unknown): boolean {
  for (let current: unknown = err, depth = 0; current && depth < 10; depth++) {
    if (current instanceof BitsError) return current.retryable
    current = (current as {cause?: unknown}).cause
  }
  return false
}

/** Wraps anything that is not a `BitsError` as an internal failure, keeping it as the cause. */
export function toBitsError(err: unknown): BitsError {
  if (err instanceof BitsError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new BitsError('INTERNAL', `Unexpected failure: ${message}`, {
    cause: err,
    hint: 'Run again with --log-level debug and report the output at the openbits issue tracker',
  })
}

/** Node's errno code of a system error (`ENOENT`), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as {code?: unknown} | null)?.code
  return typeof code === 'string' ? code : undefined
}
