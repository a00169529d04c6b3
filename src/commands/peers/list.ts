import {BaseCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/render/table.js'
import {listPeers, type PeerEntry} from '../../lib/peers/peer-table.js'

export default class PeersList extends BaseCommand {
  static override summary = 'List the peer servers this machine may search, with how each got here (added, discovered, paired)'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<{peers: PeerEntry[]}> {
    const {flags} = await this.parse(PeersList)
    const peers = await listPeers(this.context(flags))
    if (!this.jsonEnabled()) this.log(peers.length === 0 ? 'No peers.' : renderTable(['HOST', 'PORT', 'SOURCE', 'NAME', 'LAST SEEN'], peers.map((peer) => [peer.host, peer.port, peer.source, peer.fqdn ?? '', peer.lastSeenAt]), this.isTty))
    return {peers}
  }
}
