import type {JobFile, JobRecord} from '../jobs/job.js'
import type {JobStore} from '../state/job-store.js'

/** Thrown inside a checkpoint when the user moved the job (suspend, cancel, complete) meanwhile. */
export class JobLeftEngine extends Error {}

/**
 * Progress of one running job on its way to the job file. File updates are merged and written
 * at most every `minGapMs`, so a job of many small files costs a few job-file writes a second
 * instead of one per file. Every update it receives describes bytes already flushed to disk, so
 * holding it back a moment never records bytes that are not there; the last ones are applied by
 * the write that ends the run.
 */
export class JobCheckpointer {
  readonly #store: JobStore
  readonly #jobId: string
  readonly #now: () => Date
  readonly #minGapMs: number
  #pending = new Map<number, Partial<JobFile>>()
  #lastWrite = 0
  #activeSince: number
  #writing: Promise<JobRecord | undefined> = Promise.resolve(undefined)

  constructor(store: JobStore, jobId: string, now: () => Date, minGapMs = 200) {
    this.#store = store
    this.#jobId = jobId
    this.#now = now
    this.#minGapMs = minGapMs
    this.#activeSince = now().getTime()
  }

  /** Records a change of one file; resolves with the job when this call wrote it. */
  async file(fileIndex: number, update: Partial<JobFile>): Promise<JobRecord | undefined> {
    this.#pending.set(fileIndex, {...this.#pending.get(fileIndex), ...update})
    if (this.#now().getTime() - this.#lastWrite < this.#minGapMs) return undefined
    return this.flush()
  }

  /** Writes what is pending now (the job must still be CONNECTING or TRANSFERRING). */
  flush(): Promise<JobRecord | undefined> {
    this.#writing = this.#writing.then(() => {
      if (this.#pending.size === 0) return undefined
      this.#lastWrite = this.#now().getTime()
      return this.#store.update(
        this.#jobId,
        (draft) => {
          if (draft.state !== 'CONNECTING' && draft.state !== 'TRANSFERRING') throw new JobLeftEngine()
          this.applyTo(draft)
          // The runner checkpoints once the server has answered: connected means TRANSFERRING.
          draft.state = 'TRANSFERRING'
        },
        this.#now,
        {durable: false},
      )
    })
    return this.#writing
  }

  /** Merges pending file updates and active time into a job being written (and forgets them). */
  applyTo(draft: JobRecord): void {
    const nowMs = this.#now().getTime()
    for (const [index, update] of this.#pending) {
      const file = draft.files[index]
      if (!file) continue
      if (update.bytesTransferred !== undefined && update.bytesTransferred > file.bytesTransferred) draft.transientErrorSince = null
      Object.assign(file, update)
    }
    this.#pending = new Map()
    draft.activeMs += nowMs - this.#activeSince
    this.#activeSince = nowMs
  }

  /** Waits for a write in flight, so the run's last write comes after it. */
  async settle(): Promise<void> {
    await this.#writing.catch(() => undefined)
  }
}
