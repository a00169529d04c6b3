import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {stateLabel} from '../cli/render/job.js'
import {resumeJob} from '../lib/jobs/job-service.js'
import type {JobView} from '../lib/jobs/job.js'

export default class Resume extends BaseCommand {
  static override summary = 'Queue a job for transfer (also retries a job in ERROR or TRANSIENT_ERROR at once)'
  static override description = 'A job with no files cannot be resumed: that is BG_E_EMPTY (0x80200003) and the job stays SUSPENDED.'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly']
  static override args = {job: jobArg}

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(Resume)
    const job = await resumeJob(this.context(flags), args.job)
    if (!this.jsonEnabled()) this.log(`Job ${job.displayName} is ${stateLabel(job)}.`)
    return job
  }
}
