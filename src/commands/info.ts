import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {renderJobInfo} from '../cli/render/job.js'
import {getJob} from '../lib/jobs/job-service.js'
import type {JobView} from '../lib/jobs/job.js'

export default class Info extends BaseCommand {
  static override summary = 'Show a job: state, progress, error and (verbose) every property and file'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly', '<%= config.bin %> <%= command.id %> nightly --verbose', '<%= config.bin %> <%= command.id %> nightly --json | jq -r .result.state']
  static override args = {job: jobArg}
  static override flags = {verbose: Flags.boolean({char: 'v', summary: 'Show every property and the files, with bytes from origin and peers.'})}

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(Info)
    const job = await getJob(this.context(flags), args.job)
    if (!this.jsonEnabled()) this.log(renderJobInfo(job, this.isTty, flags.verbose))
    return job
  }
}
