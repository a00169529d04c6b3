import {EventEmitter} from 'node:events'
import {watch, type FSWatcher} from 'node:fs'
import type {LibContext} from '../context.js'
import {BitsError, formatHresult, HRESULT} from '../errors.js'
import {toJobView, type JobFile, type JobRecord, type JobState, type JobView} from '../jobs/job.js'
import {JobStore} from '../state/job-store.js'
import type {HttpTimeouts} from '../transfer/dispatcher.js'
import {runDownloadJob, type JobRunner} from '../transfer/job-runner.js'
import {runUploadJob} from '../upload/upload-job.js'
import {TransferError} from '../transfer/transfer-error.js'
import {notifyDue, runNotifyCommand} from './notify-command.js'
import {JobCheckpointer, JobLeftEngine} from './job-checkpointer.js'
import {pickJobsToRun, type RunCandidate} from './job-selection.js'

export interface SchedulerOptions {
  /** Background (non-FOREGROUND) jobs transferring at once. @default 1 (as BITS) */
  maxBackgroundJobs?: number
  /** Length of a background job's turn when others of its priority wait. @default 30000 */
  timeSliceMs?: number
  /** Progress checkpoint interval. @default 2000 */
  checkpointIntervalMs?: number
  /** Safety re-scan when no file event arrives (network file systems). @default 5000 */
  rescanMs?: number
  timeouts?: HttpTimeouts
  /** How each job type moves its bytes; uploads plug in here. */
  runners?: Partial<Record<JobRecord['type'], JobRunner>>
}

/** Events the scheduler emits, for `serve --jsonl` and `transfer`'s progress. */
export interface SchedulerEvents {
  state: [{job: JobView; previous: JobState}]
  progress: [{jobId: string; bytes: number}]
  idle: []
}

type StopReason = 'preempted' | 'shutdown' | 'left-engine'

interface RunningJob {
  id: string
  priority: JobRecord['priority']
  controller: AbortController
  startedAt: number
  done: Promise<void>
}


const ENGINE_STATES: ReadonlySet<JobState> = new Set(['QUEUED', 'CONNECTING', 'TRANSFERRING'])

/**
 * Moves queued jobs forward with BITS semantics: priorities pre-empt, jobs of one background
 * priority share time in slices, FOREGROUND jobs all run at once, transient errors are retried
 * after the min retry delay and become fatal after the no-progress timeout. State lives only in
 * the job files, so any `bits` command works beside it, and a restart resumes every job.
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  readonly #ctx: LibContext
  readonly #store: JobStore
  readonly #options: Required<Omit<SchedulerOptions, 'timeouts' | 'runners'>> & Pick<SchedulerOptions, 'timeouts'>
  readonly #runners: Record<JobRecord['type'], JobRunner>
  readonly #running = new Map<string, RunningJob>()
  readonly #notifying = new Set<string>()
  /** When each job last had its turn: the round-robin order within a priority. */
  readonly #lastTurn = new Map<string, number>()
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #scanSoon: NodeJS.Timeout | undefined
  #scanQueued = false
  #scanning: Promise<void> | undefined
  #stopped = false
  #idle = false

  constructor(ctx: LibContext, options: SchedulerOptions = {}) {
    super()
    this.#ctx = ctx
    this.#store = new JobStore(ctx.stateDir)
    this.#options = {
      maxBackgroundJobs: options.maxBackgroundJobs ?? 1,
      timeSliceMs: options.timeSliceMs ?? 30_000,
      checkpointIntervalMs: options.checkpointIntervalMs ?? 2000,
      rescanMs: options.rescanMs ?? 5000,
      timeouts: options.timeouts,
    }
    this.#runners = {download: runDownloadJob, upload: runUploadJob, 'upload-reply': runUploadJob, ...options.runners}
  }

  /** True while no job is queued, running or waiting to retry. */
  get isIdle(): boolean {
    return this.#idle
  }

  /** Starts watching the jobs directory; jobs interrupted by a crash go back to QUEUED. */
  async start(): Promise<void> {
    await this.#store.init()
    const {jobs} = await this.#store.list()
    for (const job of jobs) {
      if (job.state === 'CONNECTING' || job.state === 'TRANSFERRING') await this.#setState(job.id, 'QUEUED').catch(() => undefined)
    }
    this.#watcher = watch(this.#store.dir, () => this.#requestScan())
    this.#watcher.on('error', (err) => this.#ctx.logger.warn('scheduler', `watching ${this.#store.dir} failed; polling instead`, {error: String(err)}))
    await this.scan()
  }

  /** Looks at every job now (the file watcher calls this; tests may too). */
  async scan(): Promise<void> {
    if (this.#scanning) {
      this.#scanQueued = true
      return this.#scanning
    }
    this.#scanning = this.#scanOnce().finally(() => {
      this.#scanning = undefined
      if (this.#scanQueued && !this.#stopped) {
        this.#scanQueued = false
        void this.scan()
      }
    })
    return this.#scanning
  }

  /** Graceful stop: running jobs checkpoint and go back to QUEUED, so a restart resumes them. */
  async close(): Promise<void> {
    this.#stopped = true
    this.#watcher?.close()
    clearTimeout(this.#timer)
    clearTimeout(this.#scanSoon)
    const runs = [...this.#running.values()]
    for (const run of runs) run.controller.abort('shutdown' satisfies StopReason)
    await Promise.allSettled(runs.map((run) => run.done))
    await this.#scanning
  }

  /** Forced stop: abandons runs without waiting; the last checkpoints still hold. */
  destroy(): void {
    this.#stopped = true
    this.#watcher?.close()
    clearTimeout(this.#timer)
    clearTimeout(this.#scanSoon)
    for (const run of this.#running.values()) run.controller.abort('shutdown' satisfies StopReason)
  }

  #requestScan(): void {
    if (this.#stopped || this.#scanSoon) return
    // File events come in bursts (temp file, rename, our own checkpoints): one scan per burst,
    // and never more than one every 50 ms, however steady the stream of events.
    this.#scanSoon = setTimeout(() => {
      this.#scanSoon = undefined
      void this.scan()
    }, 50)
  }

  async #scanOnce(): Promise<void> {
    if (this.#stopped) return
    const now = this.#ctx.now().getTime()
    const {jobs, problems} = await this.#store.list()
    for (const problem of problems) this.#ctx.logger.debug('scheduler', `skipping unreadable job file ${problem.file}`)
    let nextWake = now + this.#options.rescanMs

    const candidates: RunCandidate[] = []
    for (const job of jobs) {
      const running = this.#running.get(job.id)
      if (running && !ENGINE_STATES.has(job.state)) {
        // The user suspended, cancelled or completed it: stop moving bytes for it.
        running.controller.abort('left-engine' satisfies StopReason)
        continue
      }
      if (job.notifyPending && job.notifyPending.state === job.state && !this.#notifying.has(job.id)) {
        const due = Date.parse(job.notifyPending.dueAt)
        if (due <= now) this.#notify(job)
        else nextWake = Math.min(nextWake, due)
      }
      if (job.state === 'TRANSIENT_ERROR') {
        const due = job.retryAt ? Date.parse(job.retryAt) : now
        if (due <= now) await this.#retryOrGiveUp(job, now)
        else nextWake = Math.min(nextWake, due)
        continue
      }
      if (ENGINE_STATES.has(job.state)) {
        candidates.push({id: job.id, priority: job.priority, createdAt: job.createdAt, lastTurn: this.#lastTurn.get(job.id) ?? 0, running: Boolean(running), runningSince: running?.startedAt})
      }
    }

    const selection = pickJobsToRun(candidates, {maxBackgroundJobs: this.#options.maxBackgroundJobs, timeSliceMs: this.#options.timeSliceMs, now})
    for (const id of selection.preempt) this.#running.get(id)?.controller.abort('preempted' satisfies StopReason)
    for (const id of selection.start) {
      const job = jobs.find((candidate) => candidate.id === id)!
      this.#startRun(job)
    }
    if (selection.sliceEndsAt !== undefined) nextWake = Math.min(nextWake, selection.sliceEndsAt)

    const waiting = jobs.some((job) => ENGINE_STATES.has(job.state) || job.state === 'TRANSIENT_ERROR' || (job.notifyPending !== null && job.notifyPending.state === job.state))
    const idle = !waiting && this.#running.size === 0 && this.#notifying.size === 0
    const becameIdle = idle && !this.#idle
    this.#idle = idle
    if (becameIdle) this.emit('idle')

    if (!this.#stopped) {
      clearTimeout(this.#timer)
      this.#timer = setTimeout(() => void this.scan(), Math.max(10, nextWake - this.#ctx.now().getTime()))
      this.#timer.unref()
    }
  }

  /** TRANSIENT_ERROR whose retry is due: back to QUEUED, unless it made no progress for too long. */
  async #retryOrGiveUp(job: JobRecord, now: number): Promise<void> {
    await this.#store
      .update(job.id, (draft) => {
        if (draft.state !== 'TRANSIENT_ERROR') return
        const since = draft.transientErrorSince ? Date.parse(draft.transientErrorSince) : now
        if (now - since >= draft.noProgressTimeout * 1000) {
          draft.state = 'ERROR'
          if (notifyDue(draft, 'ERROR')) draft.notifyPending = {state: 'ERROR', dueAt: new Date(now).toISOString()}
          draft.error = {...(draft.error ?? {code: formatHresult(HRESULT.E_FAIL), context: 'GENERAL_TRANSPORT', fileIndex: null, description: ''}), description: `${draft.error?.description ?? 'Transient error'}; no progress for ${draft.noProgressTimeout} s (no-progress timeout)`}
        } else {
          draft.state = 'QUEUED'
        }
        draft.retryAt = null
      }, this.#ctx.now)
      .then((updated) => this.#emitState(updated, 'TRANSIENT_ERROR'))
      .catch((err: unknown) => this.#ctx.logger.warn('scheduler', `cannot retry job ${job.id}: ${String(err)}`))
  }

  #startRun(job: JobRecord): void {
    const controller = new AbortController()
    const run: RunningJob = {id: job.id, priority: job.priority, controller, startedAt: this.#ctx.now().getTime(), done: Promise.resolve()}
    this.#lastTurn.set(job.id, run.startedAt)
    this.#running.set(job.id, run)
    run.done = this.#run(job, controller)
      .catch((err: unknown) => this.#ctx.logger.error('scheduler', `job ${job.id} run failed: ${String(err)}`))
      .finally(() => {
        this.#running.delete(job.id)
        this.#requestScan()
      })
  }

  async #run(initial: JobRecord, controller: AbortController): Promise<void> {
    const {signal} = controller
    const runner = this.#runners[initial.type]
    const job = await this.#store.update(
      initial.id,
      (draft) => {
        if (!ENGINE_STATES.has(draft.state)) throw new JobLeftEngine()
        draft.state = 'CONNECTING'
      },
      this.#ctx.now,
    ).catch((err: unknown) => {
      if (err instanceof JobLeftEngine || (err instanceof BitsError && err.code === 'JOB_INVALID_STATE')) return undefined
      throw err
    })
    if (!job) return
    this.#emitState(job, initial.state)
    this.#ctx.logger.info('scheduler', `job ${job.id} (${job.displayName}) started`)

    const remainingMs = job.maxDownloadTime * 1000 - job.activeMs
    const maxTimeError = new TransferError('TRANSFER_MAX_TIME', `Job exceeded its max download time of ${job.maxDownloadTime} s (BG_E_MAXDOWNLOAD_TIMEOUT 0x80200054)`, {
      hresult: HRESULT.BG_E_MAXDOWNLOAD_TIMEOUT,
      context: 'GENERAL_QUEUE_MANAGER',
      transient: false,
      hint: 'Raise it with bits set JOB --max-download-time SECONDS, then resume',
    })
    let maxTimeTimer: NodeJS.Timeout | undefined
    // setTimeout cannot wait past 2^31-1 ms (24.8 days); a run that long is re-armed by its next turn.
    if (remainingMs < 2 ** 31) maxTimeTimer = setTimeout(() => controller.abort(maxTimeError), Math.max(0, remainingMs))

    const checkpointer = new JobCheckpointer(this.#store, job.id, this.#ctx.now)
    const checkpointFile = async (fileIndex: number, update: Partial<JobFile>) => {
      const updated = await checkpointer.file(fileIndex, update).catch((err: unknown) => {
        if (err instanceof JobLeftEngine) controller.abort('left-engine' satisfies StopReason)
        throw err
      })
      if (updated?.state === 'TRANSFERRING' && job.state !== 'TRANSFERRING') {
        this.#emitState(updated, job.state)
        job.state = 'TRANSFERRING'
      }
    }

    try {
      await runner(job, {
        signal,
        onBytes: (bytes) => this.emit('progress', {jobId: job.id, bytes}),
        checkpointFile,
        checkpointIntervalMs: this.#options.checkpointIntervalMs,
        timeouts: this.#options.timeouts,
        env: this.#ctx.env,
        logger: this.#ctx.logger,
        ctx: this.#ctx,
      })
      await this.#finishRun(job.id, checkpointer, (draft) => {
        if (draft.files.every((file) => file.transferred)) {
          draft.state = 'TRANSFERRED'
          draft.transferCompletedAt = this.#ctx.now().toISOString()
          draft.error = null
          if (notifyDue(draft, 'TRANSFERRED')) draft.notifyPending = {state: 'TRANSFERRED', dueAt: this.#ctx.now().toISOString()}
        } else {
          draft.state = 'QUEUED'
        }
      })
    } catch (err) {
      const reason = signal.aborted ? signal.reason : undefined
      if (reason === 'left-engine') return
      if (reason === 'preempted' || reason === 'shutdown') {
        await this.#finishRun(job.id, checkpointer, (draft) => {
          draft.state = 'QUEUED'
        })
        return
      }
      const failure = reason instanceof TransferError ? reason : err
      await this.#recordFailure(job, failure, checkpointer)
    } finally {
      clearTimeout(maxTimeTimer)
    }
  }

  async #finishRun(id: string, checkpointer: JobCheckpointer, change: (draft: JobRecord) => void): Promise<void> {
    await checkpointer.settle()
    let previous: JobState = 'TRANSFERRING'
    const updated = await this.#store
      .update(id, (draft) => {
        previous = draft.state
        if (draft.state !== 'CONNECTING' && draft.state !== 'TRANSFERRING') return
        checkpointer.applyTo(draft)
        change(draft)
      }, this.#ctx.now)
      .catch((err: unknown) => {
        this.#ctx.logger.warn('scheduler', `cannot record the end of job ${id}: ${String(err)}`)
        return undefined
      })
    if (updated) this.#emitState(updated, previous)
  }

  async #recordFailure(job: JobRecord, err: unknown, checkpointer: JobCheckpointer): Promise<void> {
    const failure =
      err instanceof TransferError
        ? err
        : new TransferError('INTERNAL', `Unexpected failure: ${err instanceof Error ? err.message : String(err)}`, {hresult: HRESULT.E_FAIL, context: 'GENERAL_QUEUE_MANAGER', transient: false, cause: err})
    // A custom HTTP method makes every error fatal (BITS 10.2).
    const transient = failure.transient && job.httpMethod === 'GET' && job.noProgressTimeout > 0
    const now = this.#ctx.now()
    await this.#finishRun(job.id, checkpointer, (draft) => {
      draft.error = failure.toJobError()
      if (transient) {
        draft.state = 'TRANSIENT_ERROR'
        draft.errorCount += 1
        draft.transientErrorSince ??= now.toISOString()
        const delayMs = Math.max(draft.minRetryDelay * 1000, failure.retryAfterMs ?? 0)
        draft.retryAt = new Date(now.getTime() + delayMs).toISOString()
      } else {
        draft.state = 'ERROR'
        draft.retryAt = null
        if (notifyDue(draft, 'ERROR')) draft.notifyPending = {state: 'ERROR', dueAt: now.toISOString()}
      }
    })
    this.#ctx.logger.warn('scheduler', `job ${job.id} ${transient ? 'transient error' : 'error'}: ${failure.message}`, {code: failure.toJobError().code})
  }

  /**
   * Runs the notify command line for the state the job reached. A non-zero exit while the job is
   * still in that state (not completed or cancelled by the program) runs it again after the min
   * retry delay, as BITS does.
   */
  #notify(job: JobRecord): void {
    this.#notifying.add(job.id)
    void runNotifyCommand(job, {logger: this.#ctx.logger, env: this.#ctx.env})
      .then(({exitCode}) =>
        this.#store.update(job.id, (draft) => {
          if (!draft.notifyPending || draft.notifyPending.state !== draft.state) return
          draft.notifyPending = exitCode === 0 ? null : {state: draft.state, dueAt: new Date(this.#ctx.now().getTime() + draft.minRetryDelay * 1000).toISOString()}
        }, this.#ctx.now),
      )
      .catch((err: unknown) => this.#ctx.logger.warn('notify', `job ${job.id}: ${String(err)}`))
      .finally(() => {
        this.#notifying.delete(job.id)
        this.#requestScan()
      })
  }

  async #setState(id: string, state: JobState): Promise<void> {
    await this.#store.update(id, (draft) => {
      draft.state = state
    }, this.#ctx.now)
  }

  #emitState(job: JobRecord, previous: JobState): void {
    if (job.state !== previous) this.emit('state', {job: toJobView(job), previous})
  }
}

