import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {addPeer, parsePeerAddress, peerName, type PeerEntry} from '../../lib/peers/peer-table.js'

export default class PeersAdd extends BaseCommand {
  static override summary = 'Add a peer server to the peer table'
  static override examples = ['<%= config.bin %> <%= command.id %> peer7.example', '<%= config.bin %> <%= command.id %> 127.0.0.2:2178']
  static override args = {address: Args.string({description: 'HOST[:PORT] (port 2178 by default)', required: true})}

  async run(): Promise<PeerEntry> {
    const {args, flags} = await this.parse(PeersAdd)
    const peer = await addPeer(this.context(flags), {...parsePeerAddress(args.address), source: 'added'})
    if (!this.jsonEnabled()) this.log(`Peer ${peerName(peer)} is in the table.`)
    return peer
  }
}
