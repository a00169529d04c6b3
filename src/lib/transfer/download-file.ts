import {open, stat, truncate, utimes, type FileHandle} from 'node:fs/promises'
import type {Readable} from 'node:stream'
import {errnoCode, HRESULT} from '../errors.js'
import {temporaryPath, type JobFile, type JobRecord, type RemoteValidators} from '../jobs/job.js'
import {headerValue, type HttpResponse, type HttpSession} from './http-session.js'
import {reportsRedirects} from './redirect-policy.js'
import {httpStatusError, TransferError} from './transfer-error.js'
import {localFileError, toTransportError} from './transport-errors.js'

/** What the engine provides to one file's download. */
export interface FileDownloadHooks {
  signal: AbortSignal
  /** Bytes as they arrive, for the rate and the no-progress clock. */
  onBytes(bytes: number): void
  /**
   * Persists a change of the file in the job file. Called only with bytes that are already
   * flushed to disk, so a crash never records bytes that are not there.
   */
  checkpoint(update: Partial<JobFile>): Promise<void>
  /** How often progress is checkpointed while bytes flow. @default 2000 */
  checkpointIntervalMs?: number
  /**
   * Peer caching (client flag): fills the temporary file from peers as far as they can; the
   * origin sends the rest.
   */
  fromPeers?(remote: RemoteFileInfo, temp: string, offset: number): Promise<{offset: number; bytesByPeer: Record<string, number>}>
}

/** Size and validators of the remote file as the origin announces them. */
export interface RemoteFileInfo {
  size: number | null
  validators: RemoteValidators
  acceptsRanges: boolean
  /** URL after redirects, and the redirects themselves. */
  url: string
  redirects: string[]
}

/** Writes are gathered to this size before they reach the disk: fewer syscalls, same memory bound. */
const WRITE_BATCH_BYTES = 1024 * 1024
/** Bytes received but not yet on disk before the body is paused: the memory bound of a download. */
const MAX_WRITES_IN_FLIGHT = 8 * 1024 * 1024

/** A strong ETag, or null: weak ETags never validate a range (RFC 9110 §13.1.5). */
function strongEtag(value: string | undefined): string | null {
  return value && !value.startsWith('W/') ? value : null
}

function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** `bytes START-END/TOTAL` → its numbers; undefined when malformed. */
export function parseContentRange(value: string | undefined): {start: number; end: number; total: number | null} | undefined {
  const match = value && /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim())
  if (!match) return undefined
  const start = Number(match[1])
  const end = Number(match[2])
  const total = match[3] === '*' ? null : Number(match[3])
  if (end < start || (total !== null && end >= total)) return undefined
  return {start, end, total}
}

function contentLength(response: HttpResponse): number | null {
  const text = headerValue(response.headers, 'content-length')
  return text && /^\d+$/.test(text) ? Number(text) : null
}

function statusError(response: HttpResponse, fileIndex: number): TransferError {
  response.body.resume()
  return httpStatusError(response.status, response.url, {retryAfterMs: parseRetryAfter(headerValue(response.headers, 'retry-after'), Date.now()), fileIndex})
}

function invalidResponse(message: string, fileIndex: number): TransferError {
  return new TransferError('TRANSFER_INVALID_RESPONSE', message, {hresult: HRESULT.WINHTTP_INVALID_SERVER_RESPONSE, context: 'REMOTE_FILE', transient: true, fileIndex})
}

/**
 * Learns size, validators and range support with HEAD; when HEAD is refused, with a GET of the
 * first byte (BITS does the same for servers that answer HEAD badly).
 */
export async function probeRemoteFile(session: HttpSession, url: string, fileIndex: number, signal: AbortSignal): Promise<RemoteFileInfo> {
  const head = await session.request({url, method: 'HEAD', signal})
  head.body.resume()
  const info = (response: HttpResponse, size: number | null, acceptsRanges: boolean): RemoteFileInfo => ({
    size,
    validators: {etag: strongEtag(headerValue(response.headers, 'etag')), lastModified: headerValue(response.headers, 'last-modified') ?? null},
    acceptsRanges,
    url: response.url,
    redirects: response.redirects,
  })
  if (head.status >= 200 && head.status < 300) {
    const ranges = headerValue(head.headers, 'accept-ranges')?.toLowerCase()
    const size = contentLength(head)
    if (ranges?.includes('bytes') && size !== null) return info(head, size, true)
    if (ranges === 'none') return info(head, size, false)
  } else if (![400, 403, 405, 501].includes(head.status)) {
    throw statusError(head, fileIndex)
  }
  const first = await session.request({url, headers: {range: 'bytes=0-0'}, signal})
  first.body.resume()
  if (first.status === 206) {
    const range = parseContentRange(headerValue(first.headers, 'content-range'))
    return info(first, range?.total ?? null, true)
  }
  if (first.status >= 200 && first.status < 300) return info(first, contentLength(first), false)
  throw statusError(first, fileIndex)
}

function sameRemote(file: JobFile, remote: RemoteFileInfo): boolean {
  if (file.bytesTotal === null) return true
  if (remote.size !== file.bytesTotal) return false
  if (file.validators.etag && remote.validators.etag && file.validators.etag !== remote.validators.etag) return false
  if (file.validators.lastModified && remote.validators.lastModified && file.validators.lastModified !== remote.validators.lastModified) return false
  return true
}

/** How many bytes of the temporary file can be trusted: what the job recorded and the disk holds. */
async function resumeOffset(temp: string, recorded: number): Promise<number> {
  const info = await stat(temp).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw localFileError(err, temp)
  })
  if (!info) return 0
  const offset = Math.min(info.size, recorded)
  // Bytes past the last checkpoint may be from an interrupted write: drop them.
  if (info.size > offset) await truncate(temp, offset).catch((err: unknown) => Promise.reject(localFileError(err, temp)))
  return offset
}

/**
 * Downloads one file of a job into its temporary file, resuming where the last checkpoint left
 * off: HEAD for size and validators, then `Range` + `If-Range`, accepting only a 206 whose
 * Content-Range starts where we are. A 200 restarts the file; so does a remote file whose size
 * or validators changed. Dynamic-content jobs need neither size nor ranges and always restart.
 */
export async function downloadFile(session: HttpSession, job: JobRecord, fileIndex: number, outerHooks: FileDownloadHooks): Promise<{size: number; validators: RemoteValidators}> {
  const file = job.files[fileIndex]!
  // What the probe learns is written together with the first bytes, not on its own: one job
  // file write less per file, and validators and bytes always land in the same atomic write.
  let pending: Partial<JobFile> = {}
  const note = (update: Partial<JobFile>) => void Object.assign(pending, update)
  const hooks: FileDownloadHooks = {
    ...outerHooks,
    checkpoint: (update) => {
      const merged = {...pending, ...update}
      pending = {}
      return outerHooks.checkpoint(merged)
    },
  }
  const temp = temporaryPath(file)
  const {signal} = hooks
  const remote = job.dynamicContent ? undefined : await probeRemoteFile(session, file.remoteUrl, fileIndex, signal)

  if (remote) {
    if (remote.size === null) {
      throw new TransferError('TRANSFER_MISSING_SIZE', `Server did not give the size of ${file.remoteUrl} (BG_E_MISSING_FILE_SIZE 0x80200011)`, {
        hresult: HRESULT.BG_E_MISSING_FILE_SIZE,
        context: 'REMOTE_FILE',
        transient: false,
        fileIndex,
        hint: 'Mark the job as dynamic content: bits set JOB --dynamic',
      })
    }
    if (!remote.acceptsRanges) {
      throw new TransferError('TRANSFER_RANGE_UNSUPPORTED', `Server does not support byte ranges for ${file.remoteUrl} (BG_E_INSUFFICIENT_RANGE_SUPPORT 0x80200013)`, {
        hresult: HRESULT.BG_E_INSUFFICIENT_RANGE_SUPPORT,
        context: 'REMOTE_FILE',
        transient: false,
        fileIndex,
        hint: 'Mark the job as dynamic content: bits set JOB --dynamic',
      })
    }
  }

  let offset = job.dynamicContent ? 0 : await resumeOffset(temp, file.bytesTransferred)
  if (remote && !sameRemote(file, remote)) offset = 0
  if (remote) {
    const update: Partial<JobFile> = {bytesTotal: remote.size, validators: remote.validators, bytesTransferred: offset}
    if (remote.redirects.length > 0 && reportsRedirects(job.securityFlags)) update.remoteUrl = remote.url
    note(update)
  }
  const url = remote?.url ?? file.remoteUrl

  if (remote && offset < remote.size! && hooks.fromPeers) {
    const fromPeers = await hooks.fromPeers(remote, temp, offset)
    if (fromPeers.offset > offset) {
      offset = fromPeers.offset
      const bytesFromPeers = {...file.bytesFromPeers}
      for (const [peer, bytes] of Object.entries(fromPeers.bytesByPeer)) bytesFromPeers[peer] = (bytesFromPeers[peer] ?? 0) + bytes
      file.bytesFromPeers = bytesFromPeers
      await hooks.checkpoint({bytesTransferred: offset, bytesFromPeers})
    }
  }

  if (remote && offset === remote.size) return finish(temp, remote.size, remote.validators, hooks)

  const validator = remote?.validators.etag ?? remote?.validators.lastModified
  const headers: Record<string, string> = {}
  if (offset > 0) {
    headers.range = `bytes=${offset}-`
    if (validator) headers['if-range'] = validator
  }
  const response = await session.request({url, method: job.httpMethod === 'GET' ? 'GET' : job.httpMethod, headers, signal})
  let total = remote?.size ?? null
  let validators = remote?.validators ?? {etag: strongEtag(headerValue(response.headers, 'etag')), lastModified: headerValue(response.headers, 'last-modified') ?? null}

  if (response.status === 206 && offset > 0) {
    const range = parseContentRange(headerValue(response.headers, 'content-range'))
    if (!range || range.start !== offset || (total !== null && range.total !== null && range.total !== total)) {
      response.body.destroy()
      throw invalidResponse(`Server answered the range from byte ${offset} of ${url} with Content-Range ${headerValue(response.headers, 'content-range') ?? '(none)'}`, fileIndex)
    }
  } else if (response.status >= 200 && response.status < 300) {
    // A full body: the server ignored the range, or the file changed (If-Range). Start over.
    offset = 0
    total = contentLength(response) ?? (job.dynamicContent ? null : total)
    validators = {etag: strongEtag(headerValue(response.headers, 'etag')), lastModified: headerValue(response.headers, 'last-modified') ?? null}
    if (!job.dynamicContent) note({bytesTotal: total, validators, bytesTransferred: 0})
  } else if (response.status === 416 && remote && offset >= (remote.size ?? 0)) {
    response.body.resume()
    return finish(temp, remote.size!, remote.validators, hooks)
  } else {
    throw statusError(response, fileIndex)
  }

  let written: number
  try {
    written = await writeBody(response.body, temp, offset, file.bytesFromOrigin, hooks)
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err
    throw toTransportError(err, url).withFile(fileIndex)
  }
  const end = offset + written
  if (total !== null && end !== total) {
    throw invalidResponse(`Body of ${url} ended at byte ${end} of ${total}`, fileIndex)
  }
  return finish(temp, end, validators, hooks, {bytesFromOrigin: file.bytesFromOrigin + written})
}

/** The file is whole: stamp it with the server's Last-Modified and record it as transferred. */
async function finish(temp: string, size: number, validators: RemoteValidators, hooks: FileDownloadHooks, extra: Partial<JobFile> = {}): Promise<{size: number; validators: RemoteValidators}> {
  if (size === 0) {
    // An empty remote file got no body write: create its temporary file now.
    const handle = await open(temp, 'a').catch((err: unknown) => Promise.reject(localFileError(err, temp)))
    await handle.close()
  }
  const mtime = validators.lastModified ? Date.parse(validators.lastModified) : Number.NaN
  if (!Number.isNaN(mtime)) await utimes(temp, new Date(mtime), new Date(mtime)).catch(() => undefined)
  await hooks.checkpoint({...extra, bytesTotal: size, bytesTransferred: size, validators, transferred: true})
  return {size, validators}
}

/**
 * Streams a body into the temporary file from `offset`, with backpressure (the next chunk is
 * read only once the previous batch is written) and writes gathered into 1 MiB batches.
 * Progress is checkpointed on a timer, each time after an fdatasync of what it records.
 */
async function writeBody(body: Readable, temp: string, offset: number, originBase: number, hooks: FileDownloadHooks): Promise<number> {
  let handle: FileHandle
  try {
    handle = await open(temp, offset === 0 ? 'w' : 'r+')
  } catch (err) {
    body.destroy()
    throw localFileError(err, temp)
  }
  let position = offset
  let batch: Buffer[] = []
  let batchBytes = 0
  let checkpointedAt = offset
  // Disk work (batched writes, checkpoints) runs one step at a time, from the body loop and from
  // the checkpoint timer alike, so a checkpoint never records bytes still being written.
  let diskQueue: Promise<void> = Promise.resolve()
  const onDisk = (step: () => Promise<void>) => (diskQueue = diskQueue.then(step))

  // Batches are handed to the disk queue without waiting, so the network keeps flowing while the
  // disk writes; the body is only paused once MAX_WRITES_IN_FLIGHT bytes wait for the disk.
  let inFlight = 0
  const writeBatch = (): Promise<void> => {
    if (batchBytes === 0) return diskQueue
    const chunks = batch
    const bytes = batchBytes
    batch = []
    batchBytes = 0
    inFlight += bytes
    const queued = onDisk(async () => {
      try {
        await handle.writev(chunks, position)
      } catch (err) {
        throw localFileError(err, temp)
      }
      position += bytes
      inFlight -= bytes
    })
    // A failed write is reported by the next await on the queue; never as an unhandled rejection.
    queued.catch(() => undefined)
    return queued
  }
  /** Runs inside the disk queue: everything queued before it is written. */
  const checkpoint = async () => {
    if (position === checkpointedAt) return
    await handle.datasync().catch((err: unknown) => Promise.reject(localFileError(err, temp)))
    checkpointedAt = position
    await hooks.checkpoint({bytesTransferred: position, bytesFromOrigin: originBase + (position - offset)})
  }
  const interval = hooks.checkpointIntervalMs ?? 2000
  // The first checkpoint comes early, so a job shows progress without waiting a full interval;
  // a small file finishes before it and costs one job write in all.
  let timer: NodeJS.Timeout | undefined
  let timerFailure: unknown
  let bodyDone = false
  const armTimer = (delay: number) => {
    if (bodyDone) return
    timer = setTimeout(() => {
      writeBatch()
      onDisk(checkpoint).then(
        () => armTimer(interval),
        (err: unknown) => {
          timerFailure = err
          body.destroy(err instanceof Error ? err : new Error(String(err)))
        },
      )
    }, delay)
  }
  armTimer(Math.min(interval, 250))

  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer
      batch.push(buffer)
      batchBytes += buffer.length
      hooks.onBytes(buffer.length)
      if (batchBytes >= WRITE_BATCH_BYTES) {
        const queued = writeBatch()
        if (inFlight > MAX_WRITES_IN_FLIGHT) await queued
      }
    }
    bodyDone = true
    clearTimeout(timer)
    await writeBatch()
    await handle.datasync().catch((err: unknown) => Promise.reject(localFileError(err, temp)))
    return position - offset
  } catch (err) {
    bodyDone = true
    clearTimeout(timer)
    body.destroy()
    // Keep what arrived before the failure: the next attempt resumes from it.
    writeBatch()
    await onDisk(checkpoint).catch(() => undefined)
    throw timerFailure ?? err
  } finally {
    await handle.close().catch(() => undefined)
  }
}
