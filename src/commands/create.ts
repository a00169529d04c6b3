import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {formatJobId} from '../lib/jobs/job-ref.js'
import {createJob} from '../lib/jobs/job-service.js'
import type {JobView} from '../lib/jobs/job.js'

export default class Create extends BaseCommand {
  static override summary = 'Create a transfer job (SUSPENDED until you resume it)'
  static override description = 'Creates a job and prints its GUID. Add files with addfile, then start it with resume. Display names need not be unique; use the GUID when they are not.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> nightly',
    '<%= config.bin %> <%= command.id %> --upload report-upload',
    'JOB=$(<%= config.bin %> <%= command.id %> nightly --json | jq -r .result.id)',
  ]

  static override args = {name: Args.string({description: 'Display name of the job (at most 256 characters)', required: true})}
  static override flags = {
    download: Flags.boolean({summary: 'Download job (the default).', exclusive: ['upload', 'upload-reply']}),
    upload: Flags.boolean({summary: 'Upload job: one file to a BITS upload server.', exclusive: ['download', 'upload-reply']}),
    'upload-reply': Flags.boolean({summary: 'Upload job whose server answers with a reply file.', exclusive: ['download', 'upload']}),
    description: Flags.string({summary: 'Description (at most 1024 characters).'}),
  }

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(Create)
    const type = flags.upload ? 'upload' : flags['upload-reply'] ? 'upload-reply' : 'download'
    const job = await createJob(this.context(flags), {displayName: args.name, type, description: flags.description})
    if (!this.jsonEnabled()) this.log(`Created job ${formatJobId(job.id)}.`)
    return job
  }
}
