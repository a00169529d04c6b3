import {Args} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {renderProperties} from '../cli/render/table.js'
import {readSettings, writeSetting, type Settings} from '../lib/settings.js'

export default class SettingsCommand extends BaseCommand {
  static override summary = 'Show or change the settings of a state directory'
  static override description = `Settings:
  autoStartDaemon          start bits serve in the background when work is queued (true)
  maxBackgroundJobs        background jobs transferring at once (1, as BITS)
  timeSliceSeconds         a background job's turn when others of its priority wait (30)
  idleExitSeconds          a background daemon exits after the queue was idle this long (60)
  defaultPeerCachingFlags  peer-caching flags of new jobs: 1 client, 2 server (0)
  maxFilesPerJob           files one job may hold (200, the BITS MaxFilesPerJob policy)
  httpProxy, httpsProxy, noProxy  proxies of PRECONFIG jobs where HTTP_PROXY etc. are not set
  pacUrl                   PAC script (URL or file) of AUTODETECT jobs where BITS_PAC_URL is not set
  peerDiscovery            find peers by multicast WS-Discovery (true); BITS_PEER_DISCOVERY=off overrides`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> autoStartDaemon false', '<%= config.bin %> <%= command.id %> maxBackgroundJobs 2', '<%= config.bin %> <%= command.id %> httpsProxy http://proxy.example:3128']
  static override args = {
    name: Args.string({description: 'Setting to show or change'}),
    value: Args.string({description: 'New value'}),
  }

  async run(): Promise<Settings> {
    const {args, flags} = await this.parse(SettingsCommand)
    const {stateDir} = this.context(flags)
    const settings = args.name && args.value !== undefined ? await writeSetting(stateDir, args.name, args.value) : await readSettings(stateDir)
    if (!this.jsonEnabled()) {
      const pairs = Object.entries(settings).filter(([name]) => !args.name || name === args.name) as [string, string | number][]
      this.log(renderProperties(pairs.map(([name, value]) => [name, String(value)]), this.isTty))
    }
    return settings
  }
}
