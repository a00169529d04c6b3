import {BaseCommand} from '../../../cli/base-command.js'
import {renderTable} from '../../../cli/render/table.js'
import {listTrusted, type TrustedPeer} from '../../../lib/peers/peer-identity.js'

export default class PeersTrustList extends BaseCommand {
  static override summary = 'List the trusted peer certificates'
  static override examples = ['<%= config.bin %> <%= command.id %>']

  async run(): Promise<{trusted: Omit<TrustedPeer, 'certPem'>[]}> {
    const {flags} = await this.parse(PeersTrustList)
    const trusted = (await listTrusted(this.context(flags))).map(({certPem: _cert, ...entry}) => entry)
    if (!this.jsonEnabled()) this.log(trusted.length === 0 ? 'No trusted peers.' : renderTable(['FINGERPRINT (SHA-256)', 'SUBJECT', 'SOURCE', 'ADDED'], trusted.map((entry) => [entry.fingerprint, entry.subject?.replace(/\n/g, ', ') ?? '-', entry.source, entry.addedAt]), this.isTty))
    return {trusted}
  }
}
