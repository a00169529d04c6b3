import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {backgroundDaemonCommand} from '../cli/daemon-command.js'
import {ProgressBar} from '../cli/render/progress-bar.js'
import {runUntilSignalled} from '../cli/signals.js'
import {formatJobId} from '../lib/jobs/job-ref.js'
import {PRIORITIES, type Priority} from '../lib/jobs/job.js'
import {transferSynchronously, type SynchronousTransferResult} from '../lib/transfer/synchronous-transfer.js'
import {BitsError} from '../lib/errors.js'

export default class Transfer extends BaseCommand {
  static override summary = 'Transfer files now: create a job, add the files, resume, wait, complete'
  static override description = `Like bitsadmin /transfer. Give one or more URL LOCAL pairs. Shows a progress bar on a terminal and is quiet otherwise; --json prints the result at the end.

When no "bits serve" runs for the state directory, this process transfers the job itself; otherwise the daemon does and this command waits.

A fatal error cancels the job and exits non-zero with the BITS error code in the message. Transient errors (server unavailable, connection reset) are waited through; --timeout gives up after that many seconds and cancels the job.

Ctrl-C suspends the job and keeps what was downloaded: resume it later with "bits resume JOB" or drop it with "bits cancel JOB".`
  static override examples = [
    '<%= config.bin %> <%= command.id %> https://example.com/big.iso ./big.iso',
    '<%= config.bin %> <%= command.id %> --priority foreground --name images https://example.com/a.img ./a.img https://example.com/b.img ./b.img',
    '<%= config.bin %> <%= command.id %> --dynamic --timeout 600 https://example.com/report.cgi ./report.csv --json',
    '<%= config.bin %> <%= command.id %> --upload ./report.zip https://server.example/uploads/report.zip',
  ]

  static override strict = false
  static override args = {
    url: Args.string({description: 'Remote URL (with --upload: the local file)', required: true}),
    local: Args.string({description: 'Local file (with --upload: the URL); more pairs may follow', required: true}),
  }

  static override flags = {
    name: Flags.string({summary: 'Display name of the job.', default: 'transfer'}),
    priority: Flags.option({summary: 'Job priority.', options: PRIORITIES.map((p) => p.toLowerCase()) as Lowercase<Priority>[], default: 'normal'})(),
    dynamic: Flags.boolean({summary: 'Dynamic content: no size or range support needed; an interruption restarts the file.'}),
    parallel: Flags.integer({summary: 'Files transferred at once (default 1, as BITS).', min: 1, max: 64}),
    timeout: Flags.integer({summary: 'Give up after this many seconds without finishing (the job is cancelled).', min: 1}),
    download: Flags.boolean({summary: 'Download (the default).', hidden: true, exclusive: ['upload']}),
    upload: Flags.boolean({summary: 'Upload LOCAL to URL with the BITS upload protocol (arguments are LOCAL URL; one file).', exclusive: ['download', 'dynamic', 'parallel']}),
  }

  async run(): Promise<SynchronousTransferResult> {
    const {argv, flags} = await this.parse(Transfer)
    const words = argv as string[]
    if (words.length % 2 !== 0) throw new BitsError('USAGE_INVALID_ARG', `Expected URL LOCAL pairs, got ${words.length} argument(s)`, {hint: 'e.g. bits transfer https://host/a ./a https://host/b ./b'})
    const pairs: {remoteUrl: string; localPath: string}[] = []
    for (let i = 0; i < words.length; i += 2) pairs.push(flags.upload ? {localPath: words[i]!, remoteUrl: words[i + 1]!} : {remoteUrl: words[i]!, localPath: words[i + 1]!})
    const ctx = this.context(flags)
    const bar = this.isTty && process.stderr.isTTY ? new ProgressBar() : undefined
    let done = 0
    let total: number | null = null
    const result = await runUntilSignalled((signal) =>
      transferSynchronously(ctx, {
        displayName: flags.name,
        type: flags.upload ? 'upload' : 'download',
        priority: flags.priority.toUpperCase() as Priority,
        dynamic: flags.dynamic,
        parallel: flags.parallel,
        pairs,
        timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
        signal: signal.graceful,
        daemonCommand: backgroundDaemonCommand(this.config, ctx.stateDir, 60),
        onCreated: (job) => bar && process.stderr.write(`Job ${formatJobId(job.id)} created; Ctrl-C suspends it and keeps the bytes.\n`),
        onJob: (job) => {
          total = job.bytesTotal
          done = Math.max(done, job.bytesTransferred)
          bar?.update(done, total, job.state === 'TRANSIENT_ERROR' ? `retrying (${job.error?.code})` : job.state.toLowerCase())
        },
        onBytes: (bytes) => {
          done += bytes
          bar?.update(total === null ? done : Math.min(done, total), total, 'transferring')
        },
      }),
    ).catch((err: unknown) => {
      bar?.clear()
      throw err
    })
    bar?.done(`Transferred ${result.filesKept.length} file(s)`)
    if (!this.jsonEnabled() && !bar) this.log(`Transferred ${result.filesKept.length} file(s): ${result.filesKept.join(', ')}`)
    return result
  }
}
