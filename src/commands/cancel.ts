import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {cancelJob, type CancelResult} from '../lib/jobs/job-service.js'

export default class Cancel extends BaseCommand {
  static override summary = 'Cancel a job and delete its temporary and unfinished files'
  static override description = 'CANCELLED is final. Files already made available by complete are not touched.'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly']
  static override args = {job: jobArg}

  async run(): Promise<CancelResult> {
    const {args, flags} = await this.parse(Cancel)
    const result = await cancelJob(this.context(flags), args.job)
    if (!this.jsonEnabled()) this.log(`Job ${result.job.displayName} is CANCELLED; deleted ${result.filesDeleted.length} temporary file(s).`)
    return result
  }
}
