import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {runUntilSignalled} from '../../cli/signals.js'
import {servePeers} from '../../lib/peers/peer-service.js'
import {peerName} from '../../lib/peers/peer-table.js'

export default class PeersServe extends BaseCommand {
  static override summary = 'Serve this machine\'s peer cache to trusted peers ([MS-BPCR], HTTPS)'
  static override description = 'Peers must present a certificate in the trust table (bits peers trust add); this machine presents its identity (bits peers identity). Listens on every interface unless --host says otherwise, as Windows peers do on port 2178; only trusted peers get anything. Listening beyond loopback, it also advertises itself by WS-Discovery (Hello on start, Bye on stop, answers to Probes) unless --no-discovery. SIGINT or SIGTERM stops gracefully. bits serve --peers runs the same server beside the job scheduler.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --host 127.0.0.1 --port 21780 --no-discovery', '<%= config.bin %> <%= command.id %> --max-rate 10MiB']
  static override flags = {
    port: Flags.integer({summary: 'TCP port.', default: 2178, min: 0, max: 65_535}),
    host: Flags.string({summary: 'Address to listen on: every interface (::, or 0.0.0.0 without IPv6) by default; 127.0.0.1 keeps it on this machine.', default: '::'}),
    'max-searches': Flags.integer({summary: 'Searches handled at once; more are answered 503.', default: 16, min: 1}),
    'max-rate': Flags.string({summary: 'Cap on the bytes per second all peers download from here together, e.g. 10MiB.'}),
    'max-connections': Flags.integer({summary: 'Connections served at once.', default: 256, min: 1}),
    discovery: Flags.boolean({summary: 'Send Hello/Bye and answer Probes ([MS-BPDP]) when listening beyond loopback.', default: true, allowNo: true}),
    workers: Flags.integer({summary: 'Processes sharing the port (one per core serves the most).', default: 1, min: 1, max: 64}),
  }

  async run(): Promise<{host: string; port: number}> {
    const {flags} = await this.parse(PeersServe)
    const ctx = this.context(flags)
    return runUntilSignalled((signal) =>
      servePeers(ctx, {
        host: flags.host,
        port: flags.port,
        maxConcurrentSearches: flags['max-searches'],
        maxConnections: flags['max-connections'],
        maxRate: flags['max-rate'],
        workers: flags.workers,
        discovery: flags.discovery,
        signal,
        onListening: (address) => process.stderr.write(`Serving the peer cache on https://${peerName(address)}/BITS-peer-caching\n`),
      }),
    )
  }
}
