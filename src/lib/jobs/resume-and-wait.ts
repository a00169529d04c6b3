import type {LibContext} from '../context.js'
import {startDaemonForQueuedWork, type DaemonCommand} from '../server/daemon-launcher.js'
import {jobFailedError, waitForOutcome} from '../transfer/synchronous-transfer.js'
import {formatJobId} from './job-ref.js'
import {resumeJob} from './job-service.js'
import type {JobView} from './job.js'

export interface ResumeOptions {
  wait?: boolean
  noDaemon?: boolean
  daemonCommand: (idleExitSeconds: number) => DaemonCommand
  onDaemon?(daemon: {started: boolean; pid?: number; reason?: string}): void
  signal?: AbortSignal
}

/**
 * `bits resume`: queue the job, make sure a daemon will move it, and with `wait` return only
 * when it is TRANSFERRED (or throw the job's BITS error when it lands in ERROR).
 */
export async function resumeAndMaybeWait(ctx: LibContext, ref: string, options: ResumeOptions): Promise<JobView> {
  const job = await resumeJob(ctx, ref)
  if (job.state !== 'TRANSFERRED') options.onDaemon?.(await startDaemonForQueuedWork(ctx, options.daemonCommand, {disabled: options.noDaemon}))
  if (!options.wait) return job
  const outcome = await waitForOutcome(ctx, job.id, {signal: options.signal})
  if (outcome.state !== 'TRANSFERRED') throw jobFailedError(outcome, `Job ${formatJobId(job.id)} is ${outcome.state}`)
  return outcome
}
