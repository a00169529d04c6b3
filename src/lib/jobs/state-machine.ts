import {BitsError, HRESULT} from '../errors.js'
import type {JobState} from './job.js'

/**
 * Allowed state changes (reference §3.3). Events the user triggers (suspend, resume, cancel,
 * complete) and events of the engine (connect, error, finish, time slice over) all pass here.
 */
export const ALLOWED_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  SUSPENDED: ['QUEUED', 'CANCELLED', 'ACKNOWLEDGED'],
  QUEUED: ['CONNECTING', 'SUSPENDED', 'TRANSIENT_ERROR', 'CANCELLED', 'ACKNOWLEDGED'],
  CONNECTING: ['TRANSFERRING', 'QUEUED', 'TRANSIENT_ERROR', 'ERROR', 'TRANSFERRED', 'SUSPENDED', 'CANCELLED', 'ACKNOWLEDGED'],
  TRANSFERRING: ['TRANSFERRED', 'QUEUED', 'TRANSIENT_ERROR', 'ERROR', 'SUSPENDED', 'CANCELLED', 'ACKNOWLEDGED'],
  TRANSIENT_ERROR: ['QUEUED', 'ERROR', 'SUSPENDED', 'CANCELLED', 'ACKNOWLEDGED'],
  ERROR: ['QUEUED', 'SUSPENDED', 'CANCELLED', 'ACKNOWLEDGED'],
  TRANSFERRED: ['ACKNOWLEDGED', 'QUEUED', 'SUSPENDED', 'ERROR', 'CANCELLED'],
  ACKNOWLEDGED: [],
  CANCELLED: [],
}

export function canTransition(from: JobState, to: JobState): boolean {
  return from === to || ALLOWED_TRANSITIONS[from].includes(to)
}

/** Throws BG_E_INVALID_STATE (0x80200002) unless `from → to` is allowed. */
export function assertTransition(from: JobState, to: JobState, jobLabel: string): void {
  if (canTransition(from, to)) return
  throw invalidStateError(jobLabel, from, `cannot go from ${from} to ${to}`)
}

/** BG_E_INVALID_STATE with a hint that fits the state the job is in. */
export function invalidStateError(jobLabel: string, state: JobState, what: string): BitsError {
  const hints: Partial<Record<JobState, string>> = {
    ACKNOWLEDGED: 'The job is completed and final; create a new job',
    CANCELLED: 'The job is cancelled and final; create a new job',
    TRANSFERRED: `Run "bits complete ${jobLabel}" to make its files appear`,
  }
  return new BitsError('JOB_INVALID_STATE', `Job ${jobLabel} is ${state}: ${what} (BG_E_INVALID_STATE 0x80200002)`, {
    hresult: HRESULT.BG_E_INVALID_STATE,
    hint: hints[state] ?? `Check the job with "bits info ${jobLabel}"`,
  })
}
