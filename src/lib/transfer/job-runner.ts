import {PeerCachingFlag, temporaryPath, type JobFile, type JobRecord} from '../jobs/job.js'
import type {LibContext} from '../context.js'
import type {RemoteFileInfo} from './download-file.js'
import type {Logger} from '../log.js'
import type {HttpTimeouts} from './dispatcher.js'
import {downloadFile} from './download-file.js'
import {HttpSession} from './http-session.js'
import {TransferError} from './transfer-error.js'

/** What the scheduler gives a job's run. */
export interface JobRunHooks {
  signal: AbortSignal
  onBytes(bytes: number): void
  /** Persists a change to one file (under the job lock); throws when the job left the engine's hands. */
  checkpointFile(fileIndex: number, update: Partial<JobFile>): Promise<void>
  checkpointIntervalMs?: number
  timeouts?: HttpTimeouts
  /** Environment for PRECONFIG proxies (HTTP_PROXY …) and PAC (BITS_PAC_URL). */
  env?: NodeJS.ProcessEnv
  logger?: Logger
  /** The library context, for peer caching (identity, trust, peer table, cache). */
  ctx?: LibContext
}

/** Transfers every file of a job that is not transferred yet; how a job type moves its bytes. */
export type JobRunner = (job: JobRecord, hooks: JobRunHooks) => Promise<void>

/**
 * Runs a download job: files in order, one at a time (BITS), or up to `job.parallel` at once,
 * all over one HTTP session so that connections are reused. The first failure stops the others.
 */
export const runDownloadJob: JobRunner = async (job, hooks) => {
  const session = new HttpSession(job, {...hooks.timeouts, env: hooks.env, logger: hooks.logger})
  const {ctx} = hooks
  // Peer caching loads only for jobs that use it.
  const peers = ctx && job.peerCachingFlags & (PeerCachingFlag.CLIENT | PeerCachingFlag.SERVER) ? await import('../peers/peer-download.js') : undefined
  const abort = new AbortController()
  const onOuterAbort = () => abort.abort(hooks.signal.reason)
  hooks.signal.addEventListener('abort', onOuterAbort, {once: true})
  const pending = job.files.map((file, index) => ({file, index})).filter(({file}) => !file.transferred)
  let failure: unknown
  const worker = async () => {
    for (let next = pending.shift(); next && !abort.signal.aborted; next = pending.shift()) {
      const {index} = next
      try {
        const done = await downloadFile(session, job, index, {
          signal: abort.signal,
          onBytes: hooks.onBytes,
          checkpoint: (update) => hooks.checkpointFile(index, update),
          checkpointIntervalMs: hooks.checkpointIntervalMs,
          fromPeers: peers && job.peerCachingFlags & PeerCachingFlag.CLIENT ? (remote, temp, offset) => peers.fetchFromPeers(ctx!, originFile(job.files[index]!.remoteUrl, remote), temp, offset, {signal: abort.signal, onBytes: hooks.onBytes, stallMs: hooks.timeouts?.bodyTimeoutMs}) : undefined,
        })
        if (peers && job.peerCachingFlags & PeerCachingFlag.SERVER) {
          const file = job.files[index]!
          await peers
            .addFinishedFileToCache(ctx!, originFile(file.remoteUrl, {...done, acceptsRanges: true, url: file.remoteUrl, redirects: []}), temporaryPath(file))
            .catch((err: unknown) => hooks.logger?.warn('peers', `could not add ${file.remoteUrl} to the cache: ${String(err)}`))
        }
      } catch (err) {
        if (failure === undefined) failure = err instanceof TransferError ? err.withFile(index) : err
        abort.abort(failure)
      }
    }
  }
  try {
    await Promise.all(Array.from({length: Math.max(1, Math.min(job.parallel, pending.length))}, worker))
  } finally {
    hooks.signal.removeEventListener('abort', onOuterAbort)
    await session.close().catch(() => session.destroy())
  }
  if (hooks.signal.aborted) throw hooks.signal.reason
  if (failure !== undefined) throw failure
}

/** What peers must match: the origin's size and validators as the probe learned them. */
function originFile(url: string, remote: RemoteFileInfo) {
  return {url, size: remote.size ?? 0, fileModifiedAt: remote.validators.lastModified ? new Date(remote.validators.lastModified).toISOString() : null, etag: remote.validators.etag}
}
