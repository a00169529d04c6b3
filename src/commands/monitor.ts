import {Args, Flags} from '@oclif/core'
import {setTimeout as sleep} from 'node:timers/promises'
import {BaseCommand} from '../cli/base-command.js'
import {formatBytes, stateLabel} from '../cli/render/job.js'
import {renderTable} from '../cli/render/table.js'
import {runUntilSignalled} from '../cli/signals.js'
import {formatJobId} from '../lib/jobs/job-ref.js'
import {JobMonitor, type MonitorSnapshot} from '../lib/jobs/job-monitor.js'

export default class Monitor extends BaseCommand {
  static override summary = 'Watch jobs move: state, files, bytes, rate and errors, refreshed until Ctrl-C'
  static override description = 'Without JOB arguments shows every unfinished job. --once prints one snapshot and exits; --jsonl streams one JSON snapshot a line for machines; --json prints the last snapshot when it ends.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> nightly --refresh 5', '<%= config.bin %> <%= command.id %> --once --json', '<%= config.bin %> <%= command.id %> --jsonl > progress.jsonl']
  static override strict = false
  static override args = {job: Args.string({description: 'Jobs to watch (GUID, prefix or name); default all unfinished jobs'})}
  static override flags = {
    refresh: Flags.integer({summary: 'Seconds between refreshes.', default: 1, min: 1}),
    once: Flags.boolean({summary: 'Print one snapshot and exit.'}),
    jsonl: Flags.boolean({summary: 'Write one JSON snapshot a line instead of a table.'}),
  }

  async run(): Promise<MonitorSnapshot> {
    const {argv, flags} = await this.parse(Monitor)
    const monitor = new JobMonitor(this.context(flags), argv as string[])
    const interactive = this.isTty && !flags.jsonl && !flags.once
    return runUntilSignalled(async (signal) => {
      let snapshot = await monitor.snapshot()
      for (;;) {
        if (flags.jsonl) process.stdout.write(JSON.stringify(snapshot) + '\n')
        else if (!this.jsonEnabled()) this.log(`${interactive ? '\x1b[H\x1b[2J' : ''}${renderSnapshot(snapshot, this.isTty)}`)
        if (flags.once || signal.graceful.aborted) return snapshot
        await sleep(flags.refresh * 1000, undefined, {signal: signal.graceful}).catch(() => undefined)
        if (signal.graceful.aborted) return snapshot
        snapshot = await monitor.snapshot()
      }
    })
  }
}

function renderSnapshot(snapshot: MonitorSnapshot, tty: boolean): string {
  const rows = snapshot.jobs.map(({job, rate}) => [
    formatJobId(job.id).slice(0, 9) + '…}',
    job.displayName,
    stateLabel(job),
    `${job.filesTransferred} / ${job.filesTotal}`,
    `${formatBytes(job.bytesTransferred)} / ${formatBytes(job.bytesTotal)}`,
    rate > 0 ? `${formatBytes(Math.round(rate))}/s` : '-',
    job.error ? `${job.errorCount} (${job.error.code})` : String(job.errorCount),
  ])
  const table = rows.length > 0 ? renderTable(['ID', 'NAME', 'STATE', 'FILES', 'BYTES', 'RATE', 'ERRORS'], rows, tty) : 'No jobs.'
  return `${snapshot.time}\n${table}${snapshot.problems.map((p) => `\nWarning: ${p}`).join('')}`
}
