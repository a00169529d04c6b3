import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {completeJob, type CompleteResult} from '../lib/jobs/job-service.js'

export default class Complete extends BaseCommand {
  static override summary = 'Complete a job: its transferred files appear under their final names'
  static override description = 'On a download job that is not TRANSFERRED yet, complete keeps only the files that finished and discards the rest (BG_S_PARTIAL_COMPLETE 0x00200017). Upload jobs complete only when TRANSFERRED. If a rename fails the job keeps its state; fix the cause and complete again.'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly']
  static override args = {job: jobArg}

  async run(): Promise<CompleteResult> {
    const {args, flags} = await this.parse(Complete)
    const result = await completeJob(this.context(flags), args.job)
    if (result.partial) this.warn_(`Partial complete (BG_S_PARTIAL_COMPLETE ${result.hresult}): kept ${result.filesKept.length} file(s), discarded ${result.filesDiscarded.length} unfinished: ${result.filesDiscarded.join(', ')}`)
    if (!this.jsonEnabled()) this.log(`Job ${result.job.displayName} is ACKNOWLEDGED; ${result.filesKept.length} file(s) in place.`)
    return result
  }
}
