import {Args} from '@oclif/core'
import {BaseCommand} from '../../../cli/base-command.js'
import {setTrustedCas} from '../../../lib/peers/peer-identity.js'

export default class PeersTrustCa extends BaseCommand {
  static override summary = 'Trust every peer whose certificate a CA in this bundle issued (NULL clears)'
  static override examples = ['<%= config.bin %> <%= command.id %> ./company-peers-ca.pem', '<%= config.bin %> <%= command.id %> NULL']
  static override args = {file: Args.string({description: 'PEM file of CA certificates, or NULL', required: true})}

  async run(): Promise<{cas: string[]}> {
    const {args, flags} = await this.parse(PeersTrustCa)
    const result = await setTrustedCas(this.context(flags), args.file.toUpperCase() === 'NULL' ? null : args.file)
    if (!this.jsonEnabled()) this.log(result.cas.length === 0 ? 'No CA bundle.' : `Trusting peers issued by: ${result.cas.join('; ')}`)
    return result
  }
}
