import {spawn} from 'node:child_process'
import type {Logger} from '../log.js'
import {NotifyFlag, type JobRecord} from '../jobs/job.js'

/** The job events a notify command line runs for (BITS: only these two). */
export type NotifyEvent = 'TRANSFERRED' | 'ERROR'

/** True when the job's notify flags ask for a notification of `event` and a command line is set. */
export function notifyDue(job: Pick<JobRecord, 'notifyFlags' | 'notifyCmdLine'>, event: NotifyEvent): boolean {
  if (!job.notifyCmdLine || job.notifyFlags & NotifyFlag.DISABLE) return false
  return Boolean(job.notifyFlags & (event === 'TRANSFERRED' ? NotifyFlag.JOB_TRANSFERRED : NotifyFlag.JOB_ERROR))
}

export interface NotifyResult {
  exitCode: number | null
  output: string
}

/**
 * Runs the job's notify command line as BITS does: the program and its arguments, no shell and
 * no variable expansion, with BITS_JOB_ID and BITS_JOB_STATE in the environment. Its output goes
 * to the logger (the daemon log). A program that cannot start counts as a failure (exit null).
 */
export function runNotifyCommand(job: Pick<JobRecord, 'id' | 'state' | 'notifyCmdLine'>, options: {logger: Logger; env?: NodeJS.ProcessEnv; timeoutMs?: number}): Promise<NotifyResult> {
  const line = job.notifyCmdLine
  if (!line) return Promise.resolve({exitCode: 0, output: ''})
  return new Promise((resolve) => {
    let output = ''
    const child = spawn(line.program, line.args, {
      shell: false,
      env: {...(options.env ?? process.env), BITS_JOB_ID: job.id, BITS_JOB_STATE: job.state},
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    })
    const collect = (chunk: Buffer) => {
      if (output.length < 64 * 1024) output += chunk.toString()
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 5 * 60_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      options.logger.warn('notify', `job ${job.id}: cannot run ${line.program}: ${err.message}`)
      resolve({exitCode: null, output})
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const text = output.trim()
      options.logger.info('notify', `job ${job.id}: ${line.program} exited ${code}`, text ? {output: text.slice(0, 4000)} : undefined)
      resolve({exitCode: code, output})
    })
  })
}
