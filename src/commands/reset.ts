import {BaseCommand} from '../cli/base-command.js'
import {formatJobId} from '../lib/jobs/job-ref.js'
import {resetJobs} from '../lib/jobs/job-service.js'

export default class Reset extends BaseCommand {
  static override summary = 'Cancel all of your jobs'
  static override examples = ['<%= config.bin %> <%= command.id %>']

  async run(): Promise<Awaited<ReturnType<typeof resetJobs>>> {
    const {flags} = await this.parse(Reset)
    const result = await resetJobs(this.context(flags))
    if (!this.jsonEnabled()) {
      for (const {job} of result.cancelled) this.log(`${formatJobId(job.id)} canceled.`)
      this.log(`${result.cancelled.length} out of ${result.cancelled.length + result.failed.length} jobs canceled.`)
    }
    for (const failure of result.failed) this.warn_(`${formatJobId(failure.id)} not canceled: ${failure.message}`)
    return result
  }
}
