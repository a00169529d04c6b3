import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {backgroundDaemonCommand} from '../cli/daemon-command.js'
import {jobArg} from '../cli/flags.js'
import {stateLabel} from '../cli/render/job.js'
import {resumeAndMaybeWait} from '../lib/jobs/resume-and-wait.js'
import type {JobView} from '../lib/jobs/job.js'

export default class Resume extends BaseCommand {
  static override summary = 'Queue a job for transfer (also retries a job in ERROR or TRANSIENT_ERROR at once)'
  static override description = `A job with no files cannot be resumed: that is BG_E_EMPTY (0x80200003) and the job stays SUSPENDED.

When no "bits serve" runs for the state directory, one is started in the background; it exits once the queue has been idle for a while. --no-daemon, BITS_NO_DAEMON=1 or "bits settings autoStartDaemon false" turn that off.

With --wait the command returns when the job is TRANSFERRED (exit 0) or in ERROR (exit 6, with the BITS error code): a CI step can resume and wait.`
  static override examples = ['<%= config.bin %> <%= command.id %> nightly', '<%= config.bin %> <%= command.id %> nightly --wait && <%= config.bin %> complete nightly']
  static override args = {job: jobArg}
  static override flags = {
    wait: Flags.boolean({char: 'w', summary: 'Wait until the job is TRANSFERRED (exit 0) or in ERROR (non-zero).'}),
    'no-daemon': Flags.boolean({summary: 'Do not start bits serve in the background.'}),
  }

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(Resume)
    const ctx = this.context(flags)
    const job = await resumeAndMaybeWait(ctx, args.job, {
      wait: flags.wait,
      noDaemon: flags['no-daemon'],
      daemonCommand: (idle) => backgroundDaemonCommand(this.config, ctx.stateDir, idle),
      onDaemon: (daemon) => {
        if (!daemon.started && daemon.reason && !daemon.pid) this.warn_(`No bits serve runs for ${ctx.stateDir} (${daemon.reason}): the job waits until one does`)
      },
    })
    if (!this.jsonEnabled()) this.log(`Job ${job.displayName} is ${stateLabel(job)}.`)
    return job
  }
}
