import {Args} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {addFiles} from '../lib/jobs/job-service.js'
import type {JobView} from '../lib/jobs/job.js'

export default class AddFile extends BaseCommand {
  static override summary = 'Add a file to a job'
  static override description = 'For download jobs LOCAL is where the file appears on complete; its directory must exist. Relative paths resolve against the current directory (Windows BITS rejects them). Upload jobs take exactly one file: LOCAL is the file to send.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> nightly https://example.com/a.bin ./a.bin',
    '<%= config.bin %> <%= command.id %> {5D3A8E2C-...} https://example.com/b.iso /srv/images/b.iso',
  ]

  static override args = {
    job: jobArg,
    url: Args.string({description: 'Remote URL (http or https, at most 2200 characters)', required: true}),
    local: Args.string({description: 'Local file path', required: true}),
  }

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(AddFile)
    const job = await addFiles(this.context(flags), args.job, [{remoteUrl: args.url, localPath: args.local}])
    if (!this.jsonEnabled()) this.log(`Added ${args.url} -> ${job.files.at(-1)!.localPath} to job ${job.displayName} (${job.filesTotal} file(s)).`)
    return job
  }
}
