import {Args} from '@oclif/core'
import {BaseCommand} from '../../../cli/base-command.js'
import {addTrusted} from '../../../lib/peers/peer-identity.js'

export default class PeersTrustAdd extends BaseCommand {
  static override summary = 'Trust a peer by its certificate file or SHA-256 fingerprint'
  static override description = 'At most 100 peers are trusted; adding more drops the oldest.'
  static override examples = ['<%= config.bin %> <%= command.id %> ./peer7.crt', '<%= config.bin %> <%= command.id %> 3A:F1:…:9C']
  static override args = {peer: Args.string({description: 'PEM certificate file, or SHA-256 fingerprint', required: true})}

  async run(): Promise<Awaited<ReturnType<typeof addTrusted>>> {
    const {args, flags} = await this.parse(PeersTrustAdd)
    const result = await addTrusted(this.context(flags), args.peer)
    for (const dropped of result.evicted) this.warn_(`Trust table full: dropped the oldest entry ${dropped.fingerprint}`)
    if (!this.jsonEnabled()) this.log(`Trusted ${result.added.subject?.replace(/\n/g, ', ') ?? 'peer'} (${result.added.fingerprint}).`)
    return result
  }
}
