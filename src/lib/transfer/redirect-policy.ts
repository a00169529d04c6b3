import {formatHresult, hresultForHttpStatus, HRESULT} from '../errors.js'
import {SecurityFlag} from '../jobs/job.js'
import {TransferError} from './transfer-error.js'

/** BITS follows at most this many redirects. */
export const MAX_REDIRECTS = 10

export interface RedirectStep {
  from: string
  to: string
  status: number
  /** 1 for the first redirect. */
  hops: number
  securityFlags: number
}

/**
 * Applies the job's redirect policy (security flags mask 0x700) to one redirect, throwing the
 * fatal error BITS reports when the redirect is not allowed.
 */
export function checkRedirect(step: RedirectStep): void {
  const policy = step.securityFlags & SecurityFlag.REDIRECT_POLICY_MASK
  if (policy === SecurityFlag.REDIRECT_POLICY_DISALLOW) {
    throw new TransferError('TRANSFER_REDIRECT_DISALLOWED', `Redirect ${step.status} from ${step.from} to ${step.to} is not allowed by the job's redirect policy (${formatHresult(hresultForHttpStatus(step.status))})`, {
      hresult: hresultForHttpStatus(step.status),
      context: 'REMOTE_FILE',
      transient: false,
      hint: 'Point the job at the final URL, or allow redirects with bits set --redirect-policy allow-silent',
    })
  }
  if (step.hops > MAX_REDIRECTS) {
    throw new TransferError('TRANSFER_REDIRECT_DISALLOWED', `More than ${MAX_REDIRECTS} redirects starting at ${step.from}`, {
      hresult: HRESULT.WINHTTP_REDIRECT_FAILED,
      context: 'REMOTE_FILE',
      transient: false,
    })
  }
  const target = new URL(step.to)
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new TransferError('TRANSFER_REDIRECT_DISALLOWED', `Redirect to ${step.to} leaves HTTP; BITS does not follow it`, {hresult: HRESULT.WINHTTP_REDIRECT_FAILED, context: 'REMOTE_FILE', transient: false})
  }
  if (new URL(step.from).protocol === 'https:' && target.protocol === 'http:' && !(step.securityFlags & SecurityFlag.REDIRECT_POLICY_ALLOW_HTTPS_TO_HTTP)) {
    throw new TransferError('TRANSFER_REDIRECT_DISALLOWED', `Redirect from HTTPS ${step.from} to plain HTTP ${step.to} is refused`, {
      hresult: HRESULT.WINHTTP_REDIRECT_FAILED,
      context: 'REMOTE_FILE',
      transient: false,
      hint: 'Allow it with bits set --security-flags 0x800 if the content is not sensitive',
    })
  }
}

/** True when the job asks for the remote name to follow redirects (ALLOW_REPORT). */
export function reportsRedirects(securityFlags: number): boolean {
  return (securityFlags & SecurityFlag.REDIRECT_POLICY_MASK) === SecurityFlag.REDIRECT_POLICY_ALLOW_REPORT
}
