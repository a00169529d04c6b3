import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {renderJobList} from '../cli/render/job.js'
import {listJobs, type JobList} from '../lib/jobs/job-service.js'

export default class List extends BaseCommand {
  static override summary = 'List your transfer jobs'
  static override description = 'Completed (ACKNOWLEDGED) and CANCELLED jobs leave the list, as in BITS; --all shows them too. A job file that cannot be read is reported as a warning and the other jobs are still listed.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --verbose', "<%= config.bin %> <%= command.id %> --json | jq '.result.jobs[] | {displayName, state}'"]
  static override flags = {
    verbose: Flags.boolean({char: 'v', summary: 'Show every property of each job.'}),
    all: Flags.boolean({summary: 'Include ACKNOWLEDGED and CANCELLED jobs.'}),
  }

  async run(): Promise<JobList> {
    const {flags} = await this.parse(List)
    const result = await listJobs(this.context(flags), {all: flags.all})
    for (const problem of result.problems) this.warn_(`${problem.message}${problem.hint ? ` (${problem.hint})` : ''}`)
    if (!this.jsonEnabled()) this.log(renderJobList(result.jobs, this.isTty, flags.verbose))
    return result
  }
}
