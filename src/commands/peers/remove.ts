import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {peerName, removePeer, type PeerEntry} from '../../lib/peers/peer-table.js'

export default class PeersRemove extends BaseCommand {
  static override summary = 'Remove a peer server from the peer table'
  static override examples = ['<%= config.bin %> <%= command.id %> peer7.example']
  static override args = {address: Args.string({description: 'HOST[:PORT]', required: true})}

  async run(): Promise<PeerEntry> {
    const {args, flags} = await this.parse(PeersRemove)
    const peer = await removePeer(this.context(flags), args.address)
    if (!this.jsonEnabled()) this.log(`Removed ${peerName(peer)}.`)
    return peer
  }
}
