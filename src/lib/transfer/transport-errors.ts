import {HRESULT, errnoCode} from '../errors.js'
import {TransferError} from './transfer-error.js'

interface TransportClass {
  hresult: number
  transient: boolean
  what: string
}

/**
 * Connection, DNS, TLS and timeout failures by errno / undici code, mapped to the WinHTTP
 * HRESULTs BITS reports for them (context GENERAL_TRANSPORT). DNS failures and resets are
 * transient in BITS; certificate failures are fatal.
 */
const TRANSPORT_CLASSES: Record<string, TransportClass> = {
  ENOTFOUND: {hresult: HRESULT.WINHTTP_NAME_NOT_RESOLVED, transient: true, what: 'host name not resolved'},
  EAI_AGAIN: {hresult: HRESULT.WINHTTP_NAME_NOT_RESOLVED, transient: true, what: 'host name not resolved'},
  ECONNREFUSED: {hresult: HRESULT.WINHTTP_CANNOT_CONNECT, transient: true, what: 'connection refused'},
  EHOSTUNREACH: {hresult: HRESULT.WINHTTP_CANNOT_CONNECT, transient: true, what: 'host unreachable'},
  ENETUNREACH: {hresult: HRESULT.WINHTTP_CANNOT_CONNECT, transient: true, what: 'network unreachable'},
  ENETDOWN: {hresult: HRESULT.BG_E_NETWORK_DISCONNECTED, transient: true, what: 'network down'},
  ECONNRESET: {hresult: HRESULT.WINHTTP_CONNECTION_ERROR, transient: true, what: 'connection reset'},
  EPIPE: {hresult: HRESULT.WINHTTP_CONNECTION_ERROR, transient: true, what: 'connection closed'},
  ETIMEDOUT: {hresult: HRESULT.WINHTTP_TIMEOUT, transient: true, what: 'timed out'},
  UND_ERR_SOCKET: {hresult: HRESULT.WINHTTP_CONNECTION_ERROR, transient: true, what: 'connection closed by the server'},
  UND_ERR_CLOSED: {hresult: HRESULT.WINHTTP_CONNECTION_ERROR, transient: true, what: 'connection closed'},
  UND_ERR_CONNECT_TIMEOUT: {hresult: HRESULT.WINHTTP_TIMEOUT, transient: true, what: 'connect timed out'},
  UND_ERR_HEADERS_TIMEOUT: {hresult: HRESULT.WINHTTP_TIMEOUT, transient: true, what: 'no response headers in time'},
  UND_ERR_BODY_TIMEOUT: {hresult: HRESULT.WINHTTP_TIMEOUT, transient: true, what: 'the body stalled'},
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: {hresult: HRESULT.WINHTTP_INVALID_SERVER_RESPONSE, transient: true, what: 'body shorter than Content-Length'},
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: {hresult: HRESULT.WINHTTP_CONNECTION_ERROR, transient: true, what: 'request body length mismatch'},
  HPE_INVALID_CONSTANT: {hresult: HRESULT.WINHTTP_INVALID_SERVER_RESPONSE, transient: true, what: 'invalid HTTP response'},
  UND_ERR_INFO: {hresult: HRESULT.WINHTTP_INVALID_SERVER_RESPONSE, transient: true, what: 'invalid HTTP response'},
  CERT_HAS_EXPIRED: {hresult: HRESULT.WINHTTP_SECURE_CERT_DATE_INVALID, transient: false, what: 'server certificate expired'},
  CERT_NOT_YET_VALID: {hresult: HRESULT.WINHTTP_SECURE_CERT_DATE_INVALID, transient: false, what: 'server certificate not yet valid'},
  ERR_TLS_CERT_ALTNAME_INVALID: {hresult: HRESULT.WINHTTP_SECURE_CERT_CN_INVALID, transient: false, what: 'server certificate is for another host'},
  DEPTH_ZERO_SELF_SIGNED_CERT: {hresult: HRESULT.WINHTTP_SECURE_INVALID_CA, transient: false, what: 'self-signed server certificate'},
  SELF_SIGNED_CERT_IN_CHAIN: {hresult: HRESULT.WINHTTP_SECURE_INVALID_CA, transient: false, what: 'untrusted root in the certificate chain'},
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: {hresult: HRESULT.WINHTTP_SECURE_INVALID_CA, transient: false, what: 'server certificate issued by an unknown CA'},
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: {hresult: HRESULT.WINHTTP_SECURE_INVALID_CA, transient: false, what: 'server certificate issued by an unknown CA'},
  UNABLE_TO_GET_ISSUER_CERT: {hresult: HRESULT.WINHTTP_SECURE_INVALID_CA, transient: false, what: 'server certificate issued by an unknown CA'},
  INVALID_PURPOSE: {hresult: HRESULT.WINHTTP_SECURE_CERT_WRONG_USAGE, transient: false, what: 'server certificate is not meant for server authentication'},
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: {hresult: HRESULT.WINHTTP_CLIENT_AUTH_CERT_NEEDED, transient: false, what: 'the server requires a client certificate'},
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: {hresult: HRESULT.WINHTTP_CLIENT_AUTH_CERT_NEEDED, transient: false, what: 'the server refused the client certificate'},
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: {hresult: HRESULT.WINHTTP_CLIENT_AUTH_CERT_NEEDED, transient: false, what: 'the server does not trust the client certificate'},
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: {hresult: HRESULT.WINHTTP_SECURE_FAILURE, transient: false, what: 'TLS handshake refused (a client certificate may be required)'},
  CERT_REVOKED: {hresult: HRESULT.WINHTTP_SECURE_CERT_REVOKED, transient: false, what: 'server certificate revoked'},
  ERR_SSL_WRONG_VERSION_NUMBER: {hresult: HRESULT.WINHTTP_SECURE_FAILURE, transient: false, what: 'TLS handshake failed'},
}

function findCode(err: unknown): string | undefined {
  for (let current: unknown = err, depth = 0; current && depth < 6; depth++) {
    const code = errnoCode(current)
    if (code && TRANSPORT_CLASSES[code]) return code
    current = (current as {cause?: unknown}).cause
  }
  return errnoCode(err)
}

/**
 * Turns a failure of the HTTP stack into a TransferError. Anything already a TransferError
 * passes through; unknown failures count as transient transport errors, as BITS does.
 */
export function toTransportError(err: unknown, url: string): TransferError {
  if (err instanceof TransferError) return err
  const code = findCode(err)
  const known = code ? TRANSPORT_CLASSES[code] : undefined
  const message = err instanceof Error ? err.message : String(err)
  const isTls = known !== undefined && !known.transient
  return new TransferError(isTls ? 'TRANSFER_TLS' : code?.includes('TIMEOUT') ? 'TRANSFER_TIMEOUT' : 'TRANSFER_NETWORK', `${known?.what ?? 'transport failure'} for ${url}: ${message}${code ? ` [${code}]` : ''}`, {
    hresult: known?.hresult ?? HRESULT.WINHTTP_CONNECTION_ERROR,
    context: 'GENERAL_TRANSPORT',
    transient: known?.transient ?? true,
    cause: err,
    hint: isTls ? 'Check the server certificate, or relax the check for this job with bits set --security-flags' : undefined,
  })
}

/** A local disk failure (context LOCAL_FILE): fatal, since retrying will not free the disk. */
export function localFileError(err: unknown, file: string): TransferError {
  const code = errnoCode(err)
  const hresult = code === 'ENOSPC' ? HRESULT.ERROR_DISK_FULL : code === 'EACCES' || code === 'EPERM' ? HRESULT.E_ACCESSDENIED : code === 'ENOENT' ? HRESULT.ERROR_PATH_NOT_FOUND : HRESULT.E_FAIL
  return new TransferError('IO_ERROR', `Cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`, {
    hresult,
    context: 'LOCAL_FILE',
    transient: false,
    cause: err,
    hint: code === 'ENOSPC' ? 'Free disk space, then resume the job' : 'Check the destination directory, then resume the job',
  })
}
