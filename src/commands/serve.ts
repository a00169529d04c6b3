import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {runUntilSignalled} from '../cli/signals.js'
import {LOG_LEVELS, type LogLevel} from '../lib/log.js'
import {serveStateDir, type ServeResult} from '../lib/server/serve.js'

export default class Serve extends BaseCommand {
  static override summary = 'Run the BITS service for a state directory in the foreground'
  static override description = `Moves queued jobs forward: priorities, time slices, retries after transient errors. One instance per state directory; a second one refuses. It notices new and changed jobs at once (file events).

SIGINT or SIGTERM stops gracefully: running jobs checkpoint and go back to QUEUED, so the next start resumes them. A second signal stops at once; the last checkpoints still hold.

Run it under systemd (contrib/bits.service), launchd or as a Windows service wrapper; see docs/daemon.md.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --log-level debug --log-format json',
    '<%= config.bin %> <%= command.id %> --jsonl | jq -c "select(.type==\\"state\\")"',
    '<%= config.bin %> <%= command.id %> --upload ./inbox=/uploads --listen 0.0.0.0:8080',
    '<%= config.bin %> <%= command.id %> --peers',
    '<%= config.bin %> <%= command.id %> --peers --peers-host 127.0.0.1 --no-peers-discovery',
  ]

  static override flags = {
    'log-level': Flags.option({summary: 'Diagnostics written to stderr.', options: LOG_LEVELS, default: 'info' as LogLevel, env: 'BITS_LOG_LEVEL', helpGroup: 'GLOBAL'})(),
    'log-format': Flags.option({summary: 'Log line format.', options: ['text', 'json'] as const, default: 'text'})(),
    jsonl: Flags.boolean({summary: 'Stream job events to stdout, one JSON object a line.'}),
    'max-background-jobs': Flags.integer({summary: 'Background jobs transferring at once (default: the maxBackgroundJobs setting, 1).', min: 1, max: 64}),
    'time-slice': Flags.integer({summary: 'Seconds a background job transfers before yielding to another of its priority (default: setting, 30).', min: 1}),
    'exit-when-idle': Flags.integer({summary: 'Exit after the queue has been idle this many seconds (used by the background start).', min: 1}),
    'quiet-if-running': Flags.boolean({summary: 'Exit 0 without a message when another instance already serves the directory.', hidden: true}),
    peers: Flags.boolean({summary: 'Also serve the peer cache to trusted peers ([MS-BPCR] over HTTPS).', helpGroup: 'PEERS'}),
    'peers-port': Flags.integer({summary: 'Port of the peer server.', default: 2178, min: 0, max: 65_535, helpGroup: 'PEERS'}),
    'peers-host': Flags.string({summary: 'Address of the peer server: every interface (::, or 0.0.0.0 without IPv6) by default; 127.0.0.1 keeps it on this machine.', default: '::', helpGroup: 'PEERS'}),
    'peers-discovery': Flags.boolean({summary: 'Advertise the peer server and find others by WS-Discovery ([MS-BPDP]) when it listens beyond loopback.', default: true, allowNo: true, helpGroup: 'PEERS'}),
    upload: Flags.string({summary: 'Accept BITS uploads into DIR at URLPATH (default /DIRNAME): DIR[=URLPATH]. Repeatable.', multiple: true, helpGroup: 'UPLOADS'}),
    listen: Flags.string({summary: 'Address of the HTTP endpoint for uploads.', default: '127.0.0.1:8080', helpGroup: 'UPLOADS'}),
    'tls-cert': Flags.string({summary: 'Serve HTTPS with this certificate (PEM).', helpGroup: 'UPLOADS', dependsOn: ['tls-key']}),
    'tls-key': Flags.string({summary: 'Private key of --tls-cert (PEM).', helpGroup: 'UPLOADS', dependsOn: ['tls-cert']}),
    'upload-max-size': Flags.integer({summary: 'Largest upload accepted, in bytes (larger: 413).', min: 1, helpGroup: 'UPLOADS'}),
    'upload-overwrite': Flags.boolean({summary: 'Let an upload replace an existing file.', helpGroup: 'UPLOADS'}),
    'upload-users': Flags.string({summary: 'Users file (bits upload-user): uploaders must authenticate with Basic credentials.', helpGroup: 'UPLOADS'}),
    'upload-notify': Flags.string({summary: 'Back-end URL notified when an upload completes; its answer is the upload-reply.', helpGroup: 'UPLOADS'}),
    'upload-notify-type': Flags.option({summary: 'How the back-end gets the upload.', options: ['reference', 'value'] as const, default: 'reference', helpGroup: 'UPLOADS'})(),
  }

  async run(): Promise<ServeResult> {
    const {flags} = await this.parse(Serve)
    const ctx = this.context(flags)
    ctx.logger = this.logger(flags['log-level'], flags['log-format'])
    const result = await runUntilSignalled((signal) =>
      serveStateDir(ctx, {
        signal,
        quietIfRunning: flags['quiet-if-running'],
        maxBackgroundJobs: flags['max-background-jobs'],
        timeSliceSeconds: flags['time-slice'],
        idleExitSeconds: flags['exit-when-idle'],
        onEvent: flags.jsonl ? (event) => process.stdout.write(JSON.stringify(event) + '\n') : undefined,
        peers: flags.peers ? {host: flags['peers-host'], port: flags['peers-port'], discovery: flags['peers-discovery']} : undefined,
        upload: flags.upload
          ? {
              uploads: flags.upload,
              listen: flags.listen,
              tlsCert: flags['tls-cert'],
              tlsKey: flags['tls-key'],
              maxUploadSize: flags['upload-max-size'],
              allowOverwrite: flags['upload-overwrite'],
              notifyUrl: flags['upload-notify'],
              notifyType: flags['upload-notify-type'],
              usersFile: flags['upload-users'],
            }
          : undefined,
      }),
    )
    return result
  }
}
