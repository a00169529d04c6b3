import type {LibContext} from '../context.js'
import {BitsError} from '../errors.js'
import {isFinal, type JobType, type JobView, type Priority} from '../jobs/job.js'
import {formatJobId} from '../jobs/job-ref.js'
import {addFiles, cancelJob, completeJob, createJob, getJob, hasQueuedWork, resumeJob, setJobProperties, suspendJob, type CompleteResult, type FilePair} from '../jobs/job-service.js'
import {watchJob} from '../jobs/job-watch.js'
import {Daemon, type DaemonOptions} from '../server/daemon.js'
import {ensureDaemon, type DaemonCommand} from '../server/daemon-launcher.js'
import {proxyEnvironment, readSettings} from '../settings.js'

export interface SynchronousTransferInput {
  displayName: string
  type?: JobType
  priority?: Priority
  dynamic?: boolean
  /** Files of the job transferred at once. */
  parallel?: number
  pairs: FilePair[]
  /** Give up (cancel the job) after this long in ms without reaching TRANSFERRED. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Progress: the job as its file changes, and bytes as they arrive when this process transfers. */
  onJob?(job: JobView): void
  onBytes?(bytes: number): void
  /** The job was created (before any byte moves): lets a front-end say what Ctrl-C will do. */
  onCreated?(job: JobView): void
  daemonOptions?: DaemonOptions
  /** How to start a background daemon for jobs still queued when this transfer ends. */
  daemonCommand?: DaemonCommand
}

export interface SynchronousTransferResult extends CompleteResult {
  /** True when this process moved the bytes; false when a running daemon did. */
  transferredInProcess: boolean
}

/** Waits until the job is TRANSFERRED or ERROR (or final), reporting each change. */
export function waitForOutcome(ctx: LibContext, id: string, options: {signal?: AbortSignal; onJob?(job: JobView): void} = {}): Promise<JobView> {
  return watchJob(
    ctx,
    id,
    (job) => {
      options.onJob?.(job)
      return job.state === 'TRANSFERRED' || job.state === 'ERROR' || isFinal(job.state)
    },
    {signal: options.signal},
  )
}

/** The BITS error of a failed job, as a thrown error carrying its HRESULT. */
export function jobFailedError(job: JobView, what: string): BitsError {
  const code = job.error?.code ?? '0x80004005'
  return new BitsError('JOB_FAILED', `${what}: ${job.error?.description ?? job.state} (${code}, context ${job.error?.context ?? 'UNKNOWN'})`, {
    hresult: Number.parseInt(code, 16),
    details: {job: job.id, error: job.error},
    hint: job.error?.context === 'LOCAL_FILE' ? 'Check the destination directory and disk space' : 'Check the URL and the server, then try again',
  })
}

/**
 * `bits transfer`: create, add, resume, wait, complete, as bitsadmin /transfer does. When no
 * daemon serves the state directory this process runs the scheduler itself, so a CI step needs
 * nothing in the background; otherwise it waits for the daemon. A fatal error cancels the job;
 * transient errors are waited through until `timeoutMs`.
 */
export async function transferSynchronously(ctx: LibContext, input: SynchronousTransferInput): Promise<SynchronousTransferResult> {
  if (input.pairs.length === 0) throw new BitsError('USAGE_INVALID_ARG', 'No files to transfer', {hint: 'Give URL LOCAL pairs'})
  const created = await createJob(ctx, {displayName: input.displayName, type: input.type})
  try {
    await addFiles(ctx, created.id, input.pairs)
    if (input.priority || input.dynamic || input.parallel) {
      await setJobProperties(ctx, created.id, {priority: input.priority, dynamicContent: input.dynamic || undefined, parallel: input.parallel})
    }
  } catch (err) {
    // bitsadmin creates no job when a file cannot be added.
    await cancelJob(ctx, created.id).catch(() => undefined)
    throw err
  }
  input.onCreated?.(await getJob(ctx, created.id))

  const settings = await readSettings(ctx.stateDir)
  let daemon: Daemon | undefined
  try {
    daemon = await Daemon.start({...ctx, env: proxyEnvironment(settings, ctx.env)}, {maxBackgroundJobs: settings.maxBackgroundJobs, timeSliceMs: settings.timeSliceSeconds * 1000, ...input.daemonOptions})
  } catch (err) {
    if (!(err instanceof BitsError && err.code === 'SERVER_ALREADY_RUNNING')) throw err
  }
  const onProgress = ({jobId, bytes}: {jobId: string; bytes: number}) => {
    if (jobId === created.id) input.onBytes?.(bytes)
  }
  daemon?.scheduler.on('progress', onProgress)

  const abort = new AbortController()
  const onOuterAbort = () => abort.abort(input.signal!.reason)
  input.signal?.addEventListener('abort', onOuterAbort, {once: true})
  const timer = input.timeoutMs === undefined ? undefined : setTimeout(() => abort.abort('timeout'), input.timeoutMs)
  try {
    await resumeJob(ctx, created.id)
    await daemon?.scheduler.scan()
    let outcome: JobView
    try {
      outcome = await waitForOutcome(ctx, created.id, {signal: abort.signal, onJob: input.onJob})
    } catch (err) {
      if (abort.signal.reason === 'timeout') {
        const job = await getJob(ctx, created.id)
        await cancelJob(ctx, created.id).catch(() => undefined)
        throw new BitsError('TRANSFER_TIMEOUT', `Job ${formatJobId(created.id)} did not finish within ${Math.round(input.timeoutMs! / 1000)} s (last state ${job.state}${job.error ? `, ${job.error.code}: ${job.error.description}` : ''}); it was cancelled`, {
          hint: 'Raise --timeout, or check the server',
        })
      }
      if (input.signal?.aborted) {
        // Ctrl-C keeps the bytes: the job is suspended and can be resumed later.
        await suspendJob(ctx, created.id).catch(() => undefined)
        throw new BitsError('INTERRUPTED', `Interrupted; job ${formatJobId(created.id)} is SUSPENDED with its progress kept`, {
          hint: `Resume it with "bits resume ${formatJobId(created.id)}", or drop it with "bits cancel ${formatJobId(created.id)}"`,
        })
      }
      throw err
    }
    if (outcome.state !== 'TRANSFERRED') {
      if (!isFinal(outcome.state)) await cancelJob(ctx, created.id).catch(() => undefined)
      throw jobFailedError(outcome, `Transfer failed and job ${formatJobId(created.id)} was cancelled`)
    }
    const completed = await completeJob(ctx, created.id)
    return {...completed, transferredInProcess: daemon !== undefined}
  } finally {
    clearTimeout(timer)
    input.signal?.removeEventListener('abort', onOuterAbort)
    daemon?.scheduler.off('progress', onProgress)
    if (daemon) {
      await daemon.close()
      if (input.daemonCommand && settings.autoStartDaemon && (await hasQueuedWork(ctx))) await ensureDaemon(ctx, input.daemonCommand).catch(() => undefined)
    }
  }
}
