import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import path from 'node:path'
import {formatHresult, HRESULT} from '../errors.js'
import type {UploadProgress} from '../jobs/job.js'
import {headerValue, type HttpResponse, type HttpSession} from '../transfer/http-session.js'
import {isTransientHttpStatus, TransferError} from '../transfer/transfer-error.js'
import {BITS_UPLOAD_PROTOCOL, parseHresultHeader, UploadErrorContext, UploadHresult} from './upload-protocol.js'

/** Fragments start at 8 MiB and halve after a 413, never below 5 KiB (Windows' floor). */
const FIRST_FRAGMENT = 8 * 1024 * 1024
const SMALLEST_FRAGMENT = 5 * 1024

export interface UploadOptions {
  url: string
  localPath: string
  progress: UploadProgress | null
  /** Bytes the server acknowledged before an interruption (the job's checkpoint). */
  acked: number
  signal: AbortSignal
  /** Persists the upload's state after every acknowledged fragment. */
  checkpoint(progress: UploadProgress, bytesAcked: number): Promise<void>
  onBytes?(bytes: number): void
  /** @default 8 MiB */
  fragmentSize?: number
}

/** An Ack that is not 2xx, as the job's error: BITS-Error-Code (or the spec's BITS-Error) and context. */
export function ackError(response: HttpResponse, what: string): TransferError {
  response.body.resume()
  const code = parseHresultHeader(headerValue(response.headers, 'bits-error-code') ?? headerValue(response.headers, 'bits-error'))
  const context = parseHresultHeader(headerValue(response.headers, 'bits-error-context'))
  const hresult = code && code !== 0 ? code : 0x80190000 + response.status
  const transient = hresult === UploadHresult.BACKEND_TIMEOUT || isTransientHttpStatus(response.status)
  return new TransferError(hresult === UploadHresult.BG_E_TOO_LARGE ? 'UPLOAD_TOO_LARGE' : 'UPLOAD_SERVER_ERROR', `Upload server answered ${what} with HTTP ${response.status} (${formatHresult(hresult)})`, {
    hresult,
    context: context === UploadErrorContext.SERVER_APPLICATION ? 'REMOTE_APPLICATION' : 'REMOTE_FILE',
    transient,
    fileIndex: 0,
  })
}

function isSessionLost(response: HttpResponse): boolean {
  return response.status >= 500 && parseHresultHeader(headerValue(response.headers, 'bits-error-code') ?? headerValue(response.headers, 'bits-error')) === UploadHresult.BG_E_SESSION_NOT_FOUND
}

function localFileChanged(file: string): TransferError {
  return new TransferError('IO_LOCAL_FILE_CHANGED', `${file} changed while it was being uploaded (BG_E_LOCAL_FILE_CHANGED 0x8020001D)`, {
    hresult: HRESULT.BG_E_LOCAL_FILE_CHANGED,
    context: 'LOCAL_FILE',
    transient: false,
    fileIndex: 0,
    hint: 'Cancel the job and upload the file again once it no longer changes',
  })
}

/**
 * Drops the farm host when it made no progress for its fallback timeout (BITS-Host-Id-Fallback-
 * Timeout), so the next packets go to the origin host again; without a timeout the host stays.
 */
export function applyHostFallback(progress: UploadProgress, now: number): UploadProgress {
  if (!progress.hostId || !progress.hostIdFallbackMs || !progress.lastAckAt) return progress
  return now - Date.parse(progress.lastAckAt) > progress.hostIdFallbackMs ? {...progress, hostId: null, hostIdFallbackMs: null} : progress
}

/** The destination with the host the server farm asked for (BITS-Host-Id). */
function targetUrl(url: string, progress: UploadProgress): string {
  if (!progress.hostId) return url
  const target = new URL(url)
  target.hostname = progress.hostId
  return target.href
}

async function post(session: HttpSession, url: string, packet: string, headers: Record<string, string>, signal: AbortSignal, body?: NodeJS.ReadableStream): Promise<HttpResponse> {
  return session.request({url, method: 'BITS_POST', headers: {'BITS-Packet-Type': packet, 'Content-Length': '0', ...headers}, signal, body: body as never})
}

/**
 * Sends a file with the BITS upload protocol: Create-Session (or Ping and carry on with a known
 * session), fragments acknowledged by offset (a 416 or a shorter BITS-Received-Content-Range
 * moves the offset, a 413 shrinks the fragments, a lost session starts over), checkpointing the
 * acknowledged offset after each. Returns the reply URL of an upload-reply, resolved against the
 * destination. Close-Session is the caller's, after any reply is fetched.
 */
export async function uploadFile(session: HttpSession, options: UploadOptions): Promise<{progress: UploadProgress; replyUrl: string | null}> {
  const {localPath, signal} = options
  const info = await stat(localPath).catch(() => undefined)
  if (!info?.isFile()) throw localFileChanged(localPath)
  let progress: UploadProgress = options.progress ?? {sessionId: null, hostId: null, fileSize: info.size, fileMtimeMs: info.mtimeMs, replyUrl: null, replyBytes: 0}
  if (progress.fileSize !== info.size || progress.fileMtimeMs !== info.mtimeMs) throw localFileChanged(localPath)
  progress = applyHostFallback(progress, Date.now())
  const name = path.basename(localPath)
  let fragment = options.fragmentSize ?? FIRST_FRAGMENT
  let acked = 0

  const createSession = async () => {
    const response = await post(session, targetUrl(options.url, {...progress, hostId: null}), 'Create-Session', {'BITS-Supported-Protocols': BITS_UPLOAD_PROTOCOL, 'Content-Name': name}, signal)
    if (response.status !== 200 && response.status !== 201) throw ackError(response, 'Create-Session')
    response.body.resume()
    const id = headerValue(response.headers, 'bits-session-id')
    if (!id) throw new TransferError('UPLOAD_PROTOCOL', 'Upload server created a session without a BITS-Session-Id', {hresult: HRESULT.WINHTTP_INVALID_SERVER_RESPONSE, context: 'REMOTE_FILE', transient: true, fileIndex: 0})
    const fallbackSeconds = Number(headerValue(response.headers, 'bits-host-id-fallback-timeout'))
    progress = {
      ...progress,
      sessionId: id,
      hostId: headerValue(response.headers, 'bits-host-id') ?? null,
      hostIdFallbackMs: Number.isFinite(fallbackSeconds) && fallbackSeconds < 0xffffffff ? fallbackSeconds * 1000 : null,
      lastAckAt: new Date().toISOString(),
      replyUrl: null,
    }
    acked = 0
    await options.checkpoint(progress, acked)
  }

  if (progress.sessionId) {
    // Resuming: Windows sends a Ping first, then fragments from the last acknowledged offset.
    const ping = await post(session, targetUrl(options.url, progress), 'Ping', {}, signal)
    ping.body.resume()
    acked = Math.min(info.size, options.acked)
  } else {
    await createSession()
  }

  let replyUrl: string | null = progress.replyUrl
  while (acked < info.size) {
    const current = await stat(localPath).catch(() => undefined)
    if (!current || current.size !== progress.fileSize || current.mtimeMs !== progress.fileMtimeMs) throw localFileChanged(localPath)
    const length = Math.min(fragment, info.size - acked)
    const body = createReadStream(localPath, {start: acked, end: acked + length - 1, highWaterMark: 256 * 1024})
    const response = await post(session, targetUrl(options.url, progress), 'Fragment', {
      'BITS-Session-Id': progress.sessionId!,
      'Content-Name': name,
      'Content-Range': `bytes ${acked}-${acked + length - 1}/${info.size}`,
      'Content-Length': String(length),
    }, signal, body).finally(() => body.destroy())
    const received = Number(headerValue(response.headers, 'bits-received-content-range'))
    if (response.status === 200 || response.status === 201 || response.status === 416) {
      response.body.resume()
      const next = Number.isSafeInteger(received) ? received : acked + length
      if (next > acked) options.onBytes?.(next - acked)
      acked = Math.min(next, info.size)
      if (response.status !== 416 && acked === info.size) {
        const reply = headerValue(response.headers, 'bits-reply-url')
        // IIS sends reply URLs relative to the destination's directory, with backslashes.
        replyUrl = reply ? new URL(reply.replaceAll('\\', '/'), targetUrl(options.url, progress)).href : null
        progress = {...progress, replyUrl}
      }
      progress = {...progress, lastAckAt: new Date().toISOString()}
      await options.checkpoint(progress, acked)
    } else if (response.status === 413 && fragment > SMALLEST_FRAGMENT && parseHresultHeader(headerValue(response.headers, 'bits-error-code')) !== UploadHresult.BG_E_TOO_LARGE) {
      // A fragment too big for the HTTP layer: shrink it. The upload itself being too large
      // (BG_E_TOO_LARGE) is final and falls through to the error below.
      response.body.resume()
      fragment = Math.max(SMALLEST_FRAGMENT, Math.floor(fragment / 2))
    } else if (isSessionLost(response)) {
      response.body.resume()
      await createSession()
    } else {
      throw ackError(response, 'a fragment')
    }
  }
  return {progress, replyUrl}
}

/** Sends Close-Session: the server commits the file and forgets the session. */
export async function closeSession(session: HttpSession, url: string, progress: UploadProgress, localPath: string, signal: AbortSignal): Promise<void> {
  const response = await post(session, targetUrl(url, progress), 'Close-Session', {'BITS-Session-Id': progress.sessionId!, 'Content-Name': path.basename(localPath)}, signal)
  if (response.status !== 200 && response.status !== 201) throw ackError(response, 'Close-Session')
  response.body.resume()
}

/** Sends Cancel-Session (best effort, for `bits cancel`). */
export async function cancelSession(session: HttpSession, url: string, progress: UploadProgress, signal: AbortSignal): Promise<boolean> {
  const response = await post(session, targetUrl(url, progress), 'Cancel-Session', {'BITS-Session-Id': progress.sessionId!}, signal)
  response.body.resume()
  return response.status === 200 || response.status === 201
}
