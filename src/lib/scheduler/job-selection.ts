import {PRIORITIES, type Priority} from '../jobs/job.js'

/** A job the scheduler could run now. */
export interface RunCandidate {
  id: string
  priority: Priority
  createdAt: string
  /** When the job last started a turn (0: never): the round-robin order. */
  lastTurn: number
  running: boolean
  runningSince?: number
}

export interface SelectionOptions {
  maxBackgroundJobs: number
  timeSliceMs: number
  now: number
}

export interface Selection {
  start: string[]
  preempt: string[]
  /** When the earliest running turn ends while another job of its priority waits. */
  sliceEndsAt?: number
}

/**
 * Decides which jobs transfer (BITS §3.4): every FOREGROUND job at once; of the background
 * jobs, the highest priority first, and within one priority round-robin: a job keeps its turn
 * for a time slice, then yields to the job that waited longest.
 */
export function pickJobsToRun(candidates: RunCandidate[], options: SelectionOptions): Selection {
  const inTurn = (job: RunCandidate) => job.running && job.runningSince !== undefined && options.now - job.runningSince < options.timeSliceMs
  const foreground = candidates.filter((job) => job.priority === 'FOREGROUND')
  const background = candidates
    .filter((job) => job.priority !== 'FOREGROUND')
    .sort(
      (a, b) =>
        PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) ||
        Number(inTurn(b)) - Number(inTurn(a)) ||
        a.lastTurn - b.lastTurn ||
        a.createdAt.localeCompare(b.createdAt),
    )
  const chosen = background.slice(0, Math.max(0, options.maxBackgroundJobs))
  const chosenIds = new Set(chosen.map((job) => job.id))
  const start = [...foreground, ...chosen].filter((job) => !job.running).map((job) => job.id)
  const preempt = background.filter((job) => job.running && !chosenIds.has(job.id)).map((job) => job.id)

  let sliceEndsAt: number | undefined
  for (const job of chosen) {
    if (!job.running || job.runningSince === undefined) continue
    const competitor = background.some((other) => !chosenIds.has(other.id) && other.priority === job.priority)
    if (competitor) sliceEndsAt = Math.min(sliceEndsAt ?? Infinity, job.runningSince + options.timeSliceMs)
  }
  return {start, preempt, ...(sliceEndsAt === undefined ? {} : {sliceEndsAt})}
}
