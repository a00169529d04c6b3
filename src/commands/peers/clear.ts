import {BaseCommand} from '../../cli/base-command.js'
import {clearPeers} from '../../lib/peers/peer-table.js'

export default class PeersClear extends BaseCommand {
  static override summary = 'Empty the peer table'
  static override examples = ['<%= config.bin %> <%= command.id %>']

  async run(): Promise<{removed: number}> {
    const {flags} = await this.parse(PeersClear)
    const result = await clearPeers(this.context(flags))
    if (!this.jsonEnabled()) this.log(`Removed ${result.removed} peer(s).`)
    return result
  }
}
