import type {LibContext} from '../context.js'
import {JobStore} from '../state/job-store.js'
import {isFinal, toJobView, type JobView} from './job.js'

/** One job as `monitor` shows it: the job plus its transfer rate since the previous look. */
export interface MonitoredJob {
  job: JobView
  /** Bytes per second since the previous snapshot (0 on the first). */
  rate: number
}

export interface MonitorSnapshot {
  time: string
  jobs: MonitoredJob[]
  problems: string[]
}

/**
 * Takes snapshots of jobs (all unfinished ones, or the referenced ones) and computes rates
 * from the difference between snapshots. Pure bookkeeping: the command decides when to look.
 */
export class JobMonitor {
  readonly #ctx: LibContext
  readonly #store: JobStore
  readonly #refs: string[]
  readonly #previous = new Map<string, {at: number; bytes: number}>()
  #ids: string[] | undefined

  constructor(ctx: LibContext, refs: string[] = []) {
    this.#ctx = ctx
    this.#store = new JobStore(ctx.stateDir)
    this.#refs = refs
  }

  async snapshot(): Promise<MonitorSnapshot> {
    const now = this.#ctx.now()
    if (this.#refs.length > 0 && !this.#ids) this.#ids = await Promise.all(this.#refs.map(async (ref) => (await this.#store.resolve(ref)).id))
    const {jobs, problems} = await this.#store.list()
    const chosen = this.#ids ? jobs.filter((job) => this.#ids!.includes(job.id)) : jobs.filter((job) => !isFinal(job.state))
    const monitored = chosen.map((record) => {
      const job = toJobView(record)
      const before = this.#previous.get(job.id)
      const seconds = before ? (now.getTime() - before.at) / 1000 : 0
      const rate = before && seconds > 0 ? Math.max(0, (job.bytesTransferred - before.bytes) / seconds) : 0
      this.#previous.set(job.id, {at: now.getTime(), bytes: job.bytesTransferred})
      return {job, rate}
    })
    return {time: now.toISOString(), jobs: monitored, problems: problems.map((problem) => problem.error.message)}
  }
}
