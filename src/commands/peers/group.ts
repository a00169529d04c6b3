import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderProperties} from '../../cli/render/table.js'
import {OFF_DOMAIN_SCOPE, setGroup, type GroupView} from '../../lib/peers/peer-group.js'

export default class PeersGroup extends BaseCommand {
  static override summary = 'Show or set the peer group: discovery scope and the secret pairing proves'
  static override description = `Machines with the same group secret can pair (bits peers pair) and then trust each other. The secret is stored in peers/group.json (0600) and never shown, except a generated one, printed once: save it to a file and give that file to --secret-file on the other machines. Secrets under 16 bytes are refused. The scope is the WS-Discovery scope of the group: by default the spec's domain form, http:// and this machine's DNS domain, or ${OFF_DOMAIN_SCOPE} where no domain is known; machines discover each other only within the same scope. Without flags, shows the group.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --generate-secret',
    '<%= config.bin %> <%= command.id %> --secret-file ./group-secret.txt --scope http://branch7.example/peers',
    '<%= config.bin %> <%= command.id %> --clear-secret',
  ]
  static override flags = {
    scope: Flags.string({summary: 'Discovery scope of the group, an absolute URI.'}),
    'secret-file': Flags.string({summary: 'File holding the group secret (a trailing newline is ignored).', exclusive: ['generate-secret', 'clear-secret']}),
    'generate-secret': Flags.boolean({summary: 'Make a new random secret and print it once.', exclusive: ['secret-file', 'clear-secret']}),
    'clear-secret': Flags.boolean({summary: 'Remove the secret: pairing is refused both ways.', exclusive: ['secret-file', 'generate-secret']}),
  }

  async run(): Promise<GroupView> {
    const {flags} = await this.parse(PeersGroup)
    const group = await setGroup(this.context(flags), {scope: flags.scope, secretFile: flags['secret-file'], generateSecret: flags['generate-secret'], clearSecret: flags['clear-secret']})
    if (!this.jsonEnabled()) {
      this.log(renderProperties([['Scope', group.scope], ['Secret', group.secretSet ? 'set' : 'not set (pairing is off)']], this.isTty))
      if (group.generatedSecret) this.log(`\nNew group secret (shown only now; save it to a file for --secret-file on the other machines):\n${group.generatedSecret}`)
    }
    return group
  }
}
