import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {jobArg} from '../cli/flags.js'
import {readSecret} from '../cli/prompt.js'
import {renderJobInfo} from '../cli/render/job.js'
import {parseCommandLine} from '../lib/jobs/command-line.js'
import {PRIORITIES, type JobView, type Priority} from '../lib/jobs/job.js'
import {setJobProperties} from '../lib/jobs/job-service.js'
import {parseCredentialSpec} from '../lib/jobs/job-settings.js'
import {buildSettingsChange} from '../lib/jobs/settings-flags.js'

const nullable = 'NULL or "" clears it.'

export default class Set extends BaseCommand {
  static override summary = 'Change job properties'
  static override description = `Each flag changes one property; flags not given leave theirs alone. Numbers take "default" to go back to the BITS default. Passwords are never taken from the command line: set BITS_PASSWORD, or answer the prompt.

Security flags (--security-flags, decimal or 0x hex): 0x1 check CRL, 0x2 ignore wrong host name, 0x4 ignore expired certificate, 0x8 ignore unknown CA, 0x10 ignore wrong certificate usage, 0x100 redirect allow-report, 0x200 redirect disallow, 0x800 allow HTTPS to HTTP redirects.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> nightly --priority high --min-retry-delay 60',
    '<%= config.bin %> <%= command.id %> nightly --notify-cmdline "/usr/bin/logger done"',
    'BITS_PASSWORD=s3cret <%= config.bin %> <%= command.id %> nightly --credentials server:basic:alice',
    '<%= config.bin %> <%= command.id %> nightly --custom-header "X-A: 1" --custom-header "X-B: 2"',
    '<%= config.bin %> <%= command.id %> nightly --proxy override:http://p:3128 --proxy-bypass "<local>"',
    '<%= config.bin %> <%= command.id %> nightly --redirect-policy disallow --security-flags 0x4',
  ]

  static override args = {job: jobArg}
  static override flags = {
    'display-name': Flags.string({summary: 'Display name (at most 256 characters).'}),
    description: Flags.string({summary: 'Description (at most 1024 characters).'}),
    priority: Flags.option({summary: 'Priority.', options: PRIORITIES.map((p) => p.toLowerCase()) as Lowercase<Priority>[]})(),
    'min-retry-delay': Flags.string({summary: 'Seconds to wait after a transient error (at least 5; default 600).'}),
    'no-progress-timeout': Flags.string({summary: 'Seconds without progress before a transient error becomes fatal (default 1209600; 0 = no retries).'}),
    'max-download-time': Flags.string({summary: 'Seconds of transfer time before the job fails (default 7776000).'}),
    'notify-flags': Flags.string({summary: 'Notification flags: 1 transferred, 2 error, 4 disable (default 3).'}),
    'notify-cmdline': Flags.string({summary: `Program and arguments to run on TRANSFERRED or ERROR, run without a shell. ${nullable}`}),
    proxy: Flags.string({summary: 'Proxy usage: preconfig, no_proxy, autodetect, or override:LIST (comma-separated proxies).'}),
    'proxy-bypass': Flags.string({summary: `Hosts that bypass the override proxy (";" or space separated, <local> = hosts without a dot). ${nullable}`}),
    credentials: Flags.string({summary: 'TARGET:SCHEME:USER, target server|proxy, scheme basic|digest; the password comes from BITS_PASSWORD or a prompt.', multiple: true}),
    'remove-credentials': Flags.string({summary: 'TARGET:SCHEME to remove.', multiple: true}),
    'custom-header': Flags.string({summary: 'A "Name: value" header sent with every request; repeat for several. Replaces the current set.', multiple: true}),
    'clear-custom-headers': Flags.boolean({summary: 'Remove every custom header.', exclusive: ['custom-header']}),
    'security-flags': Flags.string({summary: 'TLS and redirect flags (see above), decimal or 0x hex.'}),
    'redirect-policy': Flags.option({summary: 'What to do when the server redirects.', options: ['allow-silent', 'allow-report', 'disallow'] as const})(),
    'peer-caching': Flags.string({summary: 'Peer-caching flags: client, server, client,server or none.'}),
    'http-method': Flags.string({summary: 'HTTP method instead of GET; a custom method forces FOREGROUND and makes every error fatal.'}),
    dynamic: Flags.boolean({summary: 'Dynamic content: the server gives no size or ranges; an interruption restarts the file.', allowNo: true}),
    'reply-file': Flags.string({summary: `Where an upload-reply job stores the reply. ${nullable}`}),
    parallel: Flags.string({summary: 'Files of this job transferred at once (default 1, as BITS).'}),
    'ca-file': Flags.string({summary: `Extra trusted CA bundle (PEM) for this job. ${nullable}`}),
    'client-cert': Flags.string({summary: `Client certificate (PEM) to present. ${nullable}`}),
    'client-key': Flags.string({summary: `Private key (PEM) of the client certificate. ${nullable}`}),
  }

  async run(): Promise<JobView> {
    const {args, flags} = await this.parse(Set)
    const ctx = this.context(flags)
    for (const spec of flags.credentials ?? []) parseCredentialSpec(spec)
    const passwords: string[] = []
    for (const spec of flags.credentials ?? []) passwords.push(await readSecret(`Password for ${spec}: `, 'BITS_PASSWORD'))
    const change = buildSettingsChange(flags, passwords, (text) => parseCommandLine(text, ctx.cwd), ctx.cwd)
    const job = await setJobProperties(ctx, args.job, change)
    if (!this.jsonEnabled()) this.log(renderJobInfo(job, this.isTty, true))
    return job
  }
}
