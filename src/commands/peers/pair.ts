import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/render/table.js'
import {pairingFailure, pairWithPeers, type PairOutcome} from '../../lib/peers/peer-pairing.js'

export default class PeersPair extends BaseCommand {
  static override summary = 'Trust peers that share the group secret, and be trusted by them'
  static override description = 'Connects to each peer\'s HTTPS port (2178 by default), proves the group secret (bits peers group) bound to both certificates, checks the peer\'s proof, and then each side trusts the other\'s certificate (source paired); the peer joins the peer table. Without PEER, pairs with every peer of the peer table not paired yet (e.g. the ones bits peers discover found). Fails when every attempt fails; with some failures, prints them and warns.'
  static override examples = ['<%= config.bin %> <%= command.id %> peer7.example', '<%= config.bin %> <%= command.id %> 10.0.0.12:2178 10.0.0.13', '<%= config.bin %> <%= command.id %> --json']
  static override strict = false
  static override args = {peer: Args.string({description: 'HOST[:PORT] of a peer server; several may be given. Default: the unpaired peers of the peer table'})}

  async run(): Promise<{results: PairOutcome[]}> {
    const {argv, flags} = await this.parse(PeersPair)
    const results = await pairWithPeers(this.context(flags), argv as string[])
    const failure = pairingFailure(results)
    if (failure) throw failure
    const failed = results.filter((outcome) => outcome.result === 'failed')
    if (!this.jsonEnabled()) {
      const rows = results.map((outcome) => [outcome.peer, outcome.result, outcome.fingerprint ?? `${outcome.error!.code}: ${outcome.error!.message}`])
      this.log(results.length === 0 ? 'No unpaired peers in the table: give PEER addresses, or find peers with bits peers discover.' : renderTable(['PEER', 'RESULT', 'FINGERPRINT / ERROR'], rows, this.isTty))
    }
    if (failed.length > 0) this.warn_(`Pairing failed with ${failed.length} of ${results.length} peers`)
    return {results}
  }
}
