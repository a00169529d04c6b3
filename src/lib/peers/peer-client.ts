import {X509Certificate} from 'node:crypto'
import {TLSSocket} from 'node:tls'
import {Agent, buildConnector, request} from 'undici'
import type {LibContext} from '../context.js'
import {buildSearchRequest, MalformedMessage, parseSearchResponse, type SearchRequest, type WireRecord} from './bpcr-messages.js'
import {ensureIdentity, listTrusted, trustedCas} from './peer-identity.js'
import {discoveryTransportFor} from './discovery/discovery-agent.js'
import {DISCOVERY_LIFETIME_MS, requestDiscovery} from './discovery/discovery-service.js'
import type {DiscoveryTransport} from './discovery/discovery-transport.js'
import {listPeers, markAuthenticated, peerName, removePeer} from './peer-table.js'

/** How one peer answered a search (the FileDiscoveryAttempt results of [MS-BPCR] §3.1.7.3). */
export interface PeerAnswer {
  peer: string
  result: 'FOUND' | 'NOT_FOUND' | 'CLIENT_CERT_UNKNOWN' | 'SERVER_CERT_UNKNOWN' | 'ACCESS_DENIED' | 'INVALID_SEARCH' | 'UNKNOWN' | 'OUT_OF_RESOURCES' | 'TRANSPORT_ERROR'
  records: WireRecord[]
  detail?: string
}

export interface SearchOptions {
  /** Peers asked at most (the spec's ideal server count). @default 10 */
  idealServers?: number
  /** One FileDiscoveryAttempt. @default 15000 */
  attemptTimeoutMs?: number
  /** The whole FileSearchRequest. @default 60000 */
  searchTimeoutMs?: number
  /**
   * Discovery when the table holds fewer than `idealServers` peers ([MS-BPCR] §3.1.7.4.5). By
   * default the settings choose the transport; null turns it off for this search.
   */
  discovery?: {transport: DiscoveryTransport; scopes?: string[]} | null
  /** How long a search waits for discovery answers; the discovery itself runs on for its 30 s lifetime. @default 5000 */
  discoveryWaitMs?: number
}

const RESULT_OF_STATUS: Record<string, PeerAnswer['result']> = {
  Success: 'FOUND',
  ContentNotFound: 'NOT_FOUND',
  CertificateNotFound: 'CLIENT_CERT_UNKNOWN',
  AccessDenied: 'ACCESS_DENIED',
  InvalidSearch: 'INVALID_SEARCH',
  OutOfResources: 'OUT_OF_RESOURCES',
}

class UntrustedServer extends Error {}

async function defaultDiscovery(ctx: LibContext): Promise<SearchOptions['discovery']> {
  const transport = await discoveryTransportFor(ctx)
  return transport ? {transport} : null
}

/**
 * An HTTPS agent for peers: presents this machine's identity and accepts a server only when its
 * certificate's fingerprint is in the trust table (peers use self-signed certificates, so the
 * trust table replaces the CA check).
 */
export async function createPeerAgent(ctx: LibContext, timeoutMs: number): Promise<Agent> {
  const identity = await ensureIdentity(ctx)
  const trusted = new Set((await listTrusted(ctx)).map((entry) => entry.fingerprint))
  const cas = await trustedCas(ctx)
  const accept = (cert: X509Certificate) => trusted.has(cert.fingerprint256) || cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))
  const base = buildConnector({cert: identity.certPem, key: identity.keyPem, rejectUnauthorized: false, minVersion: 'TLSv1.2', timeout: timeoutMs, maxCachedSessions: 0} as buildConnector.BuildOptions)
  const connector = (options: buildConnector.Options, callback: (err: Error | null, socket: import('node:net').Socket | null) => void) =>
    base(options, (err, socket) => {
      if (err || !(socket instanceof TLSSocket)) return callback(err, socket)
      const raw = socket.getPeerCertificate()?.raw
      if (!raw || !accept(new X509Certificate(raw))) {
        socket.destroy()
        return callback(new UntrustedServer(`the certificate of ${options.hostname} is not trusted`), null)
      }
      callback(null, socket)
    })
  return new Agent({connect: connector as buildConnector.connector, headersTimeout: timeoutMs, bodyTimeout: timeoutMs})
}

/**
 * A FileSearchRequest: asks up to `idealServers` peers of the peer table, in random order, each
 * within the attempt timeout and all within the search timeout, and reports every answer. Peers
 * that answer AccessDenied, InvalidSearch or Unknown are dropped from the table, as §3.1.7.3.5 says.
 */
export async function searchPeers(ctx: LibContext, query: SearchRequest, options: SearchOptions = {}): Promise<PeerAnswer[]> {
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 15_000
  const idealServers = options.idealServers ?? 10
  // Peers that authenticated before come first ([MS-BPCR] §3.1.7.4.2), in random order within each group.
  const servers = new Set<string>()
  const peers = (await listPeers(ctx))
    .map((peer) => ({peer, order: (peer.authenticatedAt ? 0 : 1) + Math.random()}))
    .sort((a, b) => a.order - b.order)
    .map(({peer}) => peer)
    // A server discovered at several addresses (IPv4 and IPv6, several interfaces) is asked once.
    .filter((peer) => !peer.endpoint || (!servers.has(peer.endpoint) && Boolean(servers.add(peer.endpoint))))
    .slice(0, idealServers)
  const discovery = peers.length < idealServers ? (options.discovery === undefined ? await defaultDiscovery(ctx) : options.discovery) : null
  if (peers.length === 0 && !discovery) return []
  const agent = await createPeerAgent(ctx, attemptTimeoutMs)
  const body = buildSearchRequest(query)
  const deadline = AbortSignal.timeout(options.searchTimeoutMs ?? 60_000)
  let onFound!: () => void
  const found = new Promise<'found'>((resolve) => (onFound = () => resolve('found')))
  const attempt = (peer: {host: string; port: number}): Promise<PeerAnswer> =>
    ask(peer).then((answer) => {
      if (answer.result === 'FOUND') onFound()
      return answer
    })
  const ask = async (peer: {host: string; port: number}): Promise<PeerAnswer> => {
    const name = peerName(peer)
    try {
      const response = await request(`https://${name}/BITS-peer-caching`, {
        method: 'POST',
        body,
        headers: {'content-length': String(body.length), 'user-agent': 'openbits'},
        dispatcher: agent,
        signal: AbortSignal.any([deadline, AbortSignal.timeout(attemptTimeoutMs)]),
      })
      const bytes = Buffer.from(await response.body.arrayBuffer())
      if (response.statusCode === 503) return {peer: name, result: 'OUT_OF_RESOURCES', records: []}
      if (response.statusCode !== 200) return {peer: name, result: 'UNKNOWN', records: [], detail: `HTTP ${response.statusCode}`}
      const parsed = parseSearchResponse(bytes, query.maxRecords)
      return {peer: name, result: RESULT_OF_STATUS[parsed.status] ?? 'UNKNOWN', records: parsed.status === 'Success' ? parsed.records : []}
    } catch (err) {
      if (err instanceof MalformedMessage) return {peer: name, result: 'UNKNOWN', records: [], detail: err.message}
      const untrusted = err instanceof UntrustedServer || (err as {cause?: unknown}).cause instanceof UntrustedServer
      return {peer: name, result: untrusted ? 'SERVER_CERT_UNKNOWN' : 'TRANSPORT_ERROR', records: [], detail: (err as Error).message}
    }
  }
  try {
    const asked = new Set(peers.map(peerName))
    const attempts = peers.map(attempt)
    if (discovery) {
      // STATE_DISCOVER_SERVERS: peers that answer the Probe are asked as they arrive, while servers are still needed.
      let waiting = true
      const discovered = requestDiscovery(ctx, {
        ...discovery,
        waitMs: DISCOVERY_LIFETIME_MS,
        unref: true,
        onPeer(peer) {
          const name = peerName(peer)
          if (!waiting || asked.has(name) || servers.has(peer.endpoint) || asked.size >= idealServers) return
          asked.add(name)
          servers.add(peer.endpoint)
          attempts.push(attempt(peer))
        },
      }).catch((err: unknown) => {
        ctx.logger.warn('peers', `discovery failed: ${(err as Error).message}`)
        return {suppressed: false}
      })
      // The wait ends early once some peer has the file.
      const outcome = await Promise.race([discovered, found, new Promise<'waited'>((resolve) => setTimeout(resolve, options.discoveryWaitMs ?? 5000, 'waited').unref())])
      waiting = false
      if (typeof outcome === 'object' && outcome.suppressed) ctx.logger.debug('peers', 'discovery suppressed: a Probe went out less than 10 minutes ago')
    }
    const answers = await Promise.all(attempts)
    await markAuthenticated(ctx, answers.filter((answer) => answer.result === 'FOUND' || answer.result === 'NOT_FOUND').map((answer) => answer.peer))
    for (const answer of answers) {
      if (answer.result === 'ACCESS_DENIED' || answer.result === 'INVALID_SEARCH' || answer.result === 'UNKNOWN') {
        await removePeer(ctx, answer.peer).catch(() => undefined)
        ctx.logger.info('peers', `removed ${answer.peer} from the peer table after ${answer.result}`)
      }
    }
    return answers
  } finally {
    await agent.close()
  }
}
