import {Args} from '@oclif/core'
import {BaseCommand} from '../../../cli/base-command.js'
import {removeTrusted, type TrustedPeer} from '../../../lib/peers/peer-identity.js'

export default class PeersTrustRemove extends BaseCommand {
  static override summary = 'Stop trusting a peer certificate'
  static override examples = ['<%= config.bin %> <%= command.id %> 3A:F1:…:9C']
  static override args = {fingerprint: Args.string({description: 'SHA-256 fingerprint', required: true})}

  async run(): Promise<TrustedPeer> {
    const {args, flags} = await this.parse(PeersTrustRemove)
    const removed = await removeTrusted(this.context(flags), args.fingerprint)
    if (!this.jsonEnabled()) this.log(`No longer trusting ${removed.fingerprint}.`)
    return removed
  }
}
