import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {renderFileList} from '../cli/render/job.js'
import {getJob} from '../lib/jobs/job-service.js'
import type {JobFileView} from '../lib/jobs/job.js'

export default class ListFiles extends BaseCommand {
  static override summary = 'List the files of a job'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly', '<%= config.bin %> <%= command.id %> nightly --json']
  static override args = {job: jobArg}

  async run(): Promise<{id: string; files: JobFileView[]}> {
    const {args, flags} = await this.parse(ListFiles)
    const job = await getJob(this.context(flags), args.job)
    if (!this.jsonEnabled()) this.log(renderFileList(job, this.isTty))
    return {id: job.id, files: job.files}
  }
}
