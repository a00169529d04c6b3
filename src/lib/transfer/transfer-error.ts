import {BitsError, formatHresult, hresultForHttpStatus, type ErrorCode} from '../errors.js'
import type {ErrorContext, JobErrorInfo} from '../jobs/job.js'

export interface TransferErrorOptions {
  hresult: number
  context: ErrorContext
  /** Transient errors put the job in TRANSIENT_ERROR (retried); others in ERROR. */
  transient: boolean
  fileIndex?: number | null
  /** Server's Retry-After, in ms: the retry waits at least this long. */
  retryAfterMs?: number
  cause?: unknown
  hint?: string
}

/**
 * A failure of a job's transfer, in BITS terms: the HRESULT, the error context and whether the
 * scheduler retries it. The engine records it as the job's error.
 */
export class TransferError extends BitsError {
  readonly context: ErrorContext
  readonly transient: boolean
  readonly fileIndex: number | null
  readonly retryAfterMs: number | undefined

  constructor(code: ErrorCode, message: string, options: TransferErrorOptions) {
    super(code, message, {hresult: options.hresult, cause: options.cause, hint: options.hint, retryable: options.transient})
    this.name = 'TransferError'
    this.context = options.context
    this.transient = options.transient
    this.fileIndex = options.fileIndex ?? null
    this.retryAfterMs = options.retryAfterMs
  }

  /** The job's error record. */
  toJobError(): JobErrorInfo {
    return {code: formatHresult(this.hresult ?? 0), context: this.context, description: this.message, fileIndex: this.fileIndex}
  }

  withFile(fileIndex: number): TransferError {
    if (this.fileIndex !== null) return this
    return new TransferError(this.code, this.message, {hresult: this.hresult ?? 0, context: this.context, transient: this.transient, fileIndex, retryAfterMs: this.retryAfterMs, cause: this.cause, hint: this.hint})
  }
}

/**
 * BITS's rule for HTTP statuses (reference §3.6): 4xx fatal except 408 and 409; 5xx transient
 * except 501 and 505; 3xx that reach here (not followed) fatal.
 */
export function isTransientHttpStatus(status: number): boolean {
  if (status === 408 || status === 409 || status === 429) return true
  if (status >= 500) return status !== 501 && status !== 505
  return false
}

/** A TransferError for an HTTP status, `0x80190000 + status`, context REMOTE_FILE. */
export function httpStatusError(status: number, url: string, options: {retryAfterMs?: number; fileIndex?: number | null; transient?: boolean} = {}): TransferError {
  const transient = options.transient ?? isTransientHttpStatus(status)
  return new TransferError(transient ? 'TRANSFER_HTTP_STATUS_TRANSIENT' : 'TRANSFER_HTTP_STATUS', `HTTP ${status} from ${url} (${formatHresult(hresultForHttpStatus(status))})`, {
    hresult: hresultForHttpStatus(status),
    context: 'REMOTE_FILE',
    transient,
    fileIndex: options.fileIndex ?? null,
    retryAfterMs: options.retryAfterMs,
  })
}
