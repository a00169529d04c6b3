import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderProperties} from '../../cli/render/table.js'
import {ensureIdentity} from '../../lib/peers/peer-identity.js'

export default class PeersIdentity extends BaseCommand {
  static override summary = 'Show this machine\'s peer identity, creating it the first time'
  static override description = 'The identity is an ECDSA key (0600) and a self-signed certificate for TLS server and client authentication. Give the certificate (or its fingerprint) to the peers that should trust this machine: bits peers trust add.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --cert > my-peer.crt']
  static override flags = {
    cert: Flags.boolean({summary: 'Print only the certificate (PEM).'}),
    name: Flags.string({summary: 'Name in the certificate when it is created (default: the host name).'}),
  }

  async run(): Promise<{fingerprint: string; subject: string; validTo: string; certificate: string; created: boolean}> {
    const {flags} = await this.parse(PeersIdentity)
    const identity = await ensureIdentity(this.context(flags), {name: flags.name})
    const result = {fingerprint: identity.fingerprint, subject: identity.subject, validTo: identity.validTo, certificate: identity.certPem, created: identity.created}
    if (!this.jsonEnabled()) {
      this.log(flags.cert ? identity.certPem.trimEnd() : renderProperties([['Fingerprint (SHA-256)', identity.fingerprint], ['Subject', identity.subject.replace(/\n/g, ', ')], ['Valid to', identity.validTo], ['Created now', identity.created ? 'yes' : 'no']], this.isTty))
    }
    return result
  }
}
