import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/render/table.js'
import {searchPeers, type PeerAnswer} from '../../lib/peers/peer-client.js'

export default class PeersSearch extends BaseCommand {
  static override summary = 'Ask the peers of the peer table for cached content of a URL ([MS-BPCR] search)'
  static override description = 'Asks up to 10 peers in random order (15 s each, 60 s in all) and prints what each answered. Peers answering AccessDenied, InvalidSearch or Unknown are removed from the table.'
  static override examples = ['<%= config.bin %> <%= command.id %> https://example.com/image.iso', '<%= config.bin %> <%= command.id %> https://example.com/a.bin --size 1048576 --mtime 2026-01-01T00:00:00Z --json']
  static override args = {url: Args.string({description: 'Origin URL', required: true})}
  static override flags = {
    mtime: Flags.string({summary: 'The origin file\'s modification time (ISO-8601).'}),
    size: Flags.integer({summary: 'The origin file\'s size in bytes.', min: 0}),
    etag: Flags.string({summary: 'The origin file\'s ETag.'}),
    'max-records': Flags.integer({summary: 'Records each peer may return.', min: 1}),
    'attempt-timeout': Flags.integer({summary: 'Seconds to wait for one peer.', default: 15, min: 1}),
    timeout: Flags.integer({summary: 'Seconds for the whole search.', default: 60, min: 1}),
  }

  async run(): Promise<{answers: PeerAnswer[]}> {
    const {args, flags} = await this.parse(PeersSearch)
    const answers = await searchPeers(
      this.context(flags),
      {originUrl: args.url, fileModificationTime: flags.mtime, fileSize: flags.size, fileEtag: flags.etag, maxRecords: flags['max-records']},
      {attemptTimeoutMs: flags['attempt-timeout'] * 1000, searchTimeoutMs: flags.timeout * 1000},
    )
    if (!this.jsonEnabled()) {
      const rows = answers.flatMap((answer) => (answer.records.length > 0 ? answer.records.map((record) => [answer.peer, answer.result, record.id, record.ranges.map((r) => `${r.offset}+${r.length}`).join(', ')]) : [[answer.peer, answer.result, answer.detail ?? '-', '-']]))
      this.log(answers.length === 0 ? 'No peers in the table: add some with bits peers add.' : renderTable(['PEER', 'RESULT', 'RECORD', 'RANGES'], rows, this.isTty))
    }
    return {answers}
  }
}
