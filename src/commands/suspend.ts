import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {suspendJob} from '../lib/jobs/job-service.js'
import type {JobView} from '../lib/jobs/job.js'

export default class Suspend extends BaseCommand {
  static override summary = 'Suspend a job: stop transferring until it is resumed'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly']
  static override args = {job: jobArg}

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(Suspend)
    const job = await suspendJob(this.context(flags), args.job)
    if (!this.jsonEnabled()) this.log(`Job ${job.displayName} is ${job.state}.`)
    return job
  }
}
