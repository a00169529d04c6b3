import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/render/table.js'
import {discoverPeers} from '../../lib/peers/discovery/discovery-service.js'
import {multicastTransport} from '../../lib/peers/discovery/discovery-transport.js'
import type {PeerEntry} from '../../lib/peers/peer-table.js'

export default class PeersDiscover extends BaseCommand {
  static override summary = 'Find peer servers on the local network ([MS-BPDP] WS-Discovery) and add them to the peer table'
  static override description = 'Sends a WS-Discovery Probe for msbits:PeerServer to 239.255.255.250 and FF02::C, UDP 3702, on every interface, and adds every answer as a discovered peer. An explicit discover ignores the 10-minute suppression that searches respect. Discovery never trusts by itself: a discovered peer is only searched once TLS shows a trusted or paired certificate (bits peers trust, bits peers pair).'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --wait 5 --scope http://build-farm.example --json']
  static override flags = {
    wait: Flags.integer({summary: 'Seconds to collect answers.', default: 3, min: 1, max: 30}),
    scope: Flags.string({summary: 'Discovery scope (default: the group\'s, bits peers group).'}),
    interface: Flags.string({summary: 'Probe only on the interface that holds this address (default: every interface).'}),
  }

  async run(): Promise<{peers: PeerEntry[]}> {
    const {flags} = await this.parse(PeersDiscover)
    const peers = await discoverPeers(this.context(flags), {transport: multicastTransport({onlyAddress: flags.interface}), scopes: flags.scope ? [flags.scope] : undefined, waitMs: flags.wait * 1000})
    if (!this.jsonEnabled()) this.log(peers.length === 0 ? 'No peer servers answered.' : renderTable(['HOST', 'PORT', 'SOURCE'], peers.map((peer) => [peer.host, peer.port, peer.source]), this.isTty))
    return {peers}
  }
}
