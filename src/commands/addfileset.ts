import {Args} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {addFileSet} from '../lib/jobs/file-set.js'
import type {JobView} from '../lib/jobs/job.js'

export default class AddFileSet extends BaseCommand {
  static override summary = 'Add every file listed in a text file to a job, all or none'
  static override description = 'LISTFILE has one "remote-url local-path" pair a line; lines starting with # are comments; quote a local path containing spaces with double quotes. Use - to read standard input. If any line is bad, no file is added.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> nightly files.txt',
    'printf "https://example.com/a ./a\\nhttps://example.com/b ./b\\n" | <%= config.bin %> <%= command.id %> nightly -',
  ]

  static override args = {
    job: jobArg,
    listfile: Args.string({description: 'Text file of "remote local" pairs, or - for stdin', required: true}),
  }

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(AddFileSet)
    const job = await addFileSet(this.context(flags), args.job, args.listfile, process.stdin)
    if (!this.jsonEnabled()) this.log(`Job ${job.displayName} now has ${job.filesTotal} file(s).`)
    return job
  }
}
