import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {createContext, type LibContext} from '../../src/lib/context.js'
import type {JobState, JobView} from '../../src/lib/jobs/job.js'
import {addFiles, completeJob, createJob, getJob, resumeJob, setJobProperties} from '../../src/lib/jobs/job-service.js'
import type {JobSettingsChange} from '../../src/lib/jobs/job-settings.js'
import {Scheduler, type SchedulerOptions} from '../../src/lib/scheduler/scheduler.js'

/** Options that keep engine tests fast: short timeouts and frequent checkpoints. */
export const FAST_ENGINE: SchedulerOptions = {
  checkpointIntervalMs: 20,
  rescanMs: 200,
  timeSliceMs: 60_000,
  timeouts: {connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 400},
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

export async function sha256File(file: string): Promise<string> {
  return sha256(await readFile(file))
}

/** A download job with the given files, queued. */
export async function queueJob(ctx: LibContext, name: string, pairs: {remoteUrl: string; localPath: string}[], settings?: JobSettingsChange): Promise<JobView> {
  const job = await createJob(ctx, {displayName: name})
  await addFiles(ctx, job.id, pairs)
  if (settings) await setJobProperties(ctx, job.id, settings)
  return resumeJob(ctx, job.id)
}

/** Polls the job until `predicate` holds; fails with the last state after `timeoutMs`. */
export async function waitForJob(ctx: LibContext, id: string, predicate: (job: JobView) => boolean, timeoutMs = 15_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs
  let job = await getJob(ctx, id)
  while (!predicate(job)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for job ${id}; last state ${job.state} ${JSON.stringify(job.error)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
    job = await getJob(ctx, id)
  }
  return job
}

export const inState = (...states: JobState[]) => (job: JobView) => states.includes(job.state)

/** A scheduler on a state directory, stopped by the returned function. */
export async function startEngine(stateDir: string, options: SchedulerOptions = {}): Promise<{ctx: LibContext; scheduler: Scheduler; stop: () => Promise<void>}> {
  const ctx = createContext(stateDir)
  const scheduler = new Scheduler(ctx, {...FAST_ENGINE, ...options})
  await scheduler.start()
  return {ctx, scheduler, stop: () => scheduler.close()}
}

/**
 * Runs one download job to an end state (TRANSFERRED, ERROR or TRANSIENT_ERROR) with an engine of
 * its own on `stateDir`, in the given environment; completes it when it transferred.
 */
export async function runJobToEnd(stateDir: string, url: string, localPath: string, settings?: JobSettingsChange, env: NodeJS.ProcessEnv = {}): Promise<JobView> {
  const ctx = createContext(stateDir, {env})
  const scheduler = new Scheduler(ctx, FAST_ENGINE)
  await scheduler.start()
  try {
    const job = await queueJob(ctx, path.basename(localPath), [{remoteUrl: url, localPath}], settings)
    const done = await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'))
    if (done.state === 'TRANSFERRED') await completeJob(ctx, job.id)
    return done
  } finally {
    await scheduler.close()
  }
}
