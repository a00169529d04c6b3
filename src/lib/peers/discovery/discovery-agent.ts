import {isIP} from 'node:net'
import type {LibContext} from '../../context.js'
import type {DaemonService} from '../../server/daemon.js'
import {readSettings} from '../../settings.js'
import {localFqdn, readGroup} from '../peer-group.js'
import {ensureIdentity} from '../peer-identity.js'
import {addPeer, peerName, type PeerEntry} from '../peer-table.js'
import {DiscoveryResponder, endpointOf, requestDiscovery} from './discovery-service.js'
import {advertisedAddresses, multicastTransport, type DiscoveryTransport} from './discovery-transport.js'

/**
 * Multicast discovery unless the peerDiscovery setting or BITS_PEER_DISCOVERY=off turns it off
 * (the test suite does, so that nothing leaves the machine).
 */
export async function discoveryTransportFor(ctx: LibContext, onlyAddress?: string): Promise<DiscoveryTransport | undefined> {
  const fromEnv = ctx.env.BITS_PEER_DISCOVERY?.toLowerCase()
  if (fromEnv === 'off' || fromEnv === '0' || fromEnv === 'false') return undefined
  if (!fromEnv && !(await readSettings(ctx.stateDir)).peerDiscovery) return undefined
  return multicastTransport({onlyAddress})
}

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::'
const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.')

export interface DiscoveryAgentOptions {
  /** Where the peer server listens. */
  httpsHost: string
  httpsPort: number
  /** The group scope. @default the group's (bits peers group) */
  scope?: string
  /** Overrides the transport the settings choose (tests). */
  transport?: DiscoveryTransport
  /** A peer server was found (Hello or ProbeMatch) and recorded in the peer table. */
  onPeer?(peer: PeerEntry): void
}

/**
 * Discovery beside a peer server: the responder (Hello, ProbeMatches, Bye), Hellos of other peers
 * added to the peer table, and one discovery request at start so that a server that starts second
 * still finds the ones already running. A server that listens on loopback only is not advertised:
 * nobody else could reach it.
 */
export async function startDiscoveryAgent(ctx: LibContext, options: DiscoveryAgentOptions): Promise<DaemonService | undefined> {
  if (!options.transport && isLoopback(options.httpsHost)) {
    ctx.logger.info('discovery', `not advertised: the peer server listens on ${options.httpsHost} only`)
    return undefined
  }
  const onlyAddress = isWildcard(options.httpsHost) || isIP(options.httpsHost) === 0 ? undefined : options.httpsHost
  const transport = options.transport ?? (await discoveryTransportFor(ctx, onlyAddress))
  if (!transport) return undefined
  const identity = await ensureIdentity(ctx)
  const scopes = [options.scope ?? (await readGroup(ctx)).scope]
  const responder = new DiscoveryResponder({
    transport,
    httpsPort: options.httpsPort,
    addresses: advertisedAddresses(isIP(options.httpsHost) ? options.httpsHost : '::'),
    scopes,
    fqdn: localFqdn(),
    endpoint: endpointOf(identity.fingerprint),
    onHello(peers) {
      for (const peer of peers) {
        void addPeer(ctx, {...peer, source: 'discovered'})
          .then((entry) => {
            ctx.logger.info('discovery', `Hello from ${peer.fqdn} at ${peerName(peer)}`)
            options.onPeer?.(entry)
          })
          .catch((err: unknown) => ctx.logger.warn('discovery', `could not record ${peer.host}: ${String(err)}`))
      }
    },
  })
  try {
    await responder.start()
  } catch (err) {
    ctx.logger.warn('discovery', `discovery is off: ${(err as Error).message}`)
    return undefined
  }
  ctx.logger.info('discovery', `advertising ${responder.endpoint} in ${scopes.join(' ')}`)
  const stopping = new AbortController()
  const startupProbe = requestDiscovery(ctx, {transport, scopes, ownEndpoint: responder.endpoint, signal: stopping.signal, onRecorded: options.onPeer})
    .then((result) => ctx.logger.info('discovery', result.suppressed ? 'start-up probe suppressed (a probe went out less than 10 minutes ago)' : `start-up probe found ${result.peers.length} peer(s)`))
    .catch((err: unknown) => ctx.logger.warn('discovery', `probe failed: ${String(err)}`))
  return {
    name: 'discovery',
    async close() {
      stopping.abort()
      await startupProbe
      await responder.close()
      ctx.logger.info('discovery', `stopped: answered ${responder.answered} Probe(s), heard ${responder.hellos} Hello(s), dropped ${responder.dropped} malformed datagram(s)`)
    },
  }
}
