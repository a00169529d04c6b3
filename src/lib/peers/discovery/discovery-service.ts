import {randomUUID} from 'node:crypto'
import {createSocket, type RemoteInfo, type Socket} from 'node:dgram'
import type {LibContext} from '../../context.js'
import {addPeer, PEER_PORT, type PeerEntry} from '../peer-table.js'
import {buildDiscovery, MalformedDiscovery, NS, parseDiscovery, scopeMatches, type DiscoveryMessage, type PeerAdvertisement} from './ws-discovery-messages.js'

/** Where discovery datagrams go: the [MS-BPDP] multicast group, or (tests) a list of unicast ports. */
export interface DiscoveryTransport {
  bindAddress: string
  bindPort: number
  /** The "group": every address a multicast message is sent to. */
  group: {address: string; port: number}[]
  /** Join the multicast group on this interface address (real use); tests leave it out. */
  multicastInterface?: string
}

/** The IPv4 transport of [MS-BPDP]: 239.255.255.250, UDP 3702. */
export function multicastTransport(interfaceAddress = '0.0.0.0'): DiscoveryTransport {
  return {bindAddress: '0.0.0.0', bindPort: 3702, group: [{address: '239.255.255.250', port: 3702}], multicastInterface: interfaceAddress}
}

/** The default scope: the group of openbits peers that are not in a Windows domain. */
export const DEFAULT_SCOPE = 'http://openbits.local'

async function openSocket(transport: DiscoveryTransport, onMessage: (message: Buffer, from: RemoteInfo) => void): Promise<Socket> {
  const socket = createSocket({type: 'udp4', reuseAddr: true})
  socket.on('message', onMessage)
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(transport.bindPort, transport.bindAddress, () => {
      socket.off('error', reject)
      if (transport.multicastInterface) {
        socket.addMembership(transport.group[0]!.address, transport.multicastInterface === '0.0.0.0' ? undefined : transport.multicastInterface)
        socket.setMulticastTTL(1)
        socket.setMulticastLoopback(true)
      }
      resolve()
    })
  })
  return socket
}

function send(socket: Socket, datagram: Buffer, to: {address: string; port: number}): Promise<void> {
  return new Promise((resolve) => socket.send(datagram, to.port, to.address, () => resolve()))
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** SOAP-over-UDP: every multicast message goes out twice, the repeat after a short random delay. */
async function sendTwice(socket: Socket, datagram: Buffer, targets: {address: string; port: number}[]): Promise<void> {
  for (const target of targets) await send(socket, datagram, target)
  await sleep(50 + Math.random() * 200)
  for (const target of targets) await send(socket, datagram, target)
}

/** Recently seen MessageIDs: repeats of a message are dropped. */
class SeenMessages {
  readonly #ids = new Set<string>()
  firstTime(id: string): boolean {
    if (this.#ids.has(id)) return false
    this.#ids.add(id)
    if (this.#ids.size > 512) this.#ids.delete(this.#ids.values().next().value!)
    return true
  }
}

export interface ResponderOptions {
  transport: DiscoveryTransport
  /** The HTTPS port of this peer server (advertised in an extension element when not 2178). */
  httpsPort: number
  /** Addresses to put in XAddrs. */
  addresses: string[]
  scopes?: string[]
  fqdn: string
  /** Answers to Probes per second at most (probe-flood protection). @default 20 */
  maxAnswersPerSecond?: number
  /** Upper bound of the random wait before answering a Probe. @default 500 */
  maxAnswerDelayMs?: number
}

/**
 * The server side of [MS-BPDP]: Hello on start, Bye on an orderly stop, and ProbeMatches (after a
 * random delay, unicast to the prober) for Probes of type msbits:PeerServer in a matching scope.
 * Malformed and oversized datagrams are dropped and counted; answers are rate-limited.
 */
export class DiscoveryResponder {
  readonly #options: ResponderOptions
  readonly #seen = new SeenMessages()
  readonly #instanceId = Math.floor(Date.now() / 1000)
  readonly #advertisement: PeerAdvertisement
  #messageNumber = 0
  #socket: Socket | undefined
  #answersThisSecond = 0
  #second = 0
  /** Datagrams dropped because they did not parse. */
  dropped = 0
  answered = 0

  constructor(options: ResponderOptions) {
    this.#options = options
    this.#advertisement = {
      address: `uuid:${randomUUID()}`,
      fqdn: options.fqdn,
      scopes: options.scopes ?? [DEFAULT_SCOPE],
      xaddrs: options.addresses.map((address) => (address.includes(':') ? `https://[${address}]` : `https://${address}`)),
      ...(options.httpsPort === PEER_PORT ? {} : {port: options.httpsPort}),
      metadataVersion: 1,
    }
  }

  async start(): Promise<void> {
    this.#socket = await openSocket(this.#options.transport, (message, from) => void this.#receive(message, from))
    await sendTwice(this.#socket, buildDiscovery({kind: 'Hello', peers: [this.#advertisement], appSequence: this.#sequence()}), this.#options.transport.group)
  }

  async close(): Promise<void> {
    if (!this.#socket) return
    await sendTwice(this.#socket, buildDiscovery({kind: 'Bye', peers: [this.#advertisement], appSequence: this.#sequence()}), this.#options.transport.group).catch(() => undefined)
    this.#socket.close()
    this.#socket = undefined
  }

  #sequence() {
    return {instanceId: this.#instanceId, messageNumber: ++this.#messageNumber}
  }

  async #receive(datagram: Buffer, from: RemoteInfo): Promise<void> {
    let message: DiscoveryMessage
    try {
      message = parseDiscovery(datagram)
    } catch (err) {
      if (err instanceof MalformedDiscovery) this.dropped++
      return
    }
    if (message.kind !== 'Probe' || !this.#seen.firstTime(message.messageId)) return
    const probe = message.probe!
    if (!probe.types.includes(`{${NS.msbits}}PeerServer`)) return
    if (probe.scopes.length > 0 && !probe.scopes.some((want) => this.#advertisement.scopes.some((have) => scopeMatches(want, have)))) return
    const second = Math.floor(Date.now() / 1000)
    if (second !== this.#second) {
      this.#second = second
      this.#answersThisSecond = 0
    }
    if (++this.#answersThisSecond > (this.#options.maxAnswersPerSecond ?? 20)) return
    await sleep(Math.random() * (this.#options.maxAnswerDelayMs ?? 500))
    if (!this.#socket) return
    const answer = buildDiscovery({kind: 'ProbeMatches', relatesTo: message.messageId, peers: [this.#advertisement], appSequence: this.#sequence()})
    await sendTwice(this.#socket, answer, [{address: from.address, port: from.port}])
    this.answered++
  }
}

export interface ProbeOptions {
  transport: DiscoveryTransport
  scopes?: string[]
  /** How long to collect ProbeMatches. @default 3000 */
  waitMs?: number
}

/** A peer server found by discovery: where to reach its [MS-BPCR] endpoint. */
export interface DiscoveredPeer {
  host: string
  port: number
  fqdn: string
  address: string
}

/** Turns a ProbeMatch or Hello into reachable addresses (the sender's address when XAddrs name none we can use). */
export function peersOf(advertisement: PeerAdvertisement, sender: string): DiscoveredPeer[] {
  const hosts = advertisement.xaddrs.map((xaddr) => /^https:\/\/\[?([^\]/]+)\]?$/i.exec(xaddr)?.[1]).filter((host): host is string => Boolean(host))
  return (hosts.length > 0 ? hosts : [sender]).map((host) => ({host, port: advertisement.port ?? PEER_PORT, fqdn: advertisement.fqdn, address: advertisement.address}))
}

/** Sends a Probe (twice) and collects the ProbeMatches that relate to it. */
export async function probePeers(options: ProbeOptions): Promise<DiscoveredPeer[]> {
  const found = new Map<string, DiscoveredPeer>()
  const seen = new SeenMessages()
  const messageId = `urn:uuid:${randomUUID()}`
  const socket = await openSocket({...options.transport, bindPort: options.transport.multicastInterface ? 0 : options.transport.bindPort}, (datagram, from) => {
    try {
      const message = parseDiscovery(datagram)
      if (message.kind !== 'ProbeMatches' || message.relatesTo !== messageId || !seen.firstTime(message.messageId)) return
      for (const advertisement of message.peers) for (const peer of peersOf(advertisement, from.address)) found.set(`${peer.host}:${peer.port}`, peer)
    } catch {
      // Not for us, or not well-formed: ignored.
    }
  })
  try {
    await sendTwice(socket, buildDiscovery({kind: 'Probe', messageId, peers: [], probe: {types: ['msbits:PeerServer'], scopes: options.scopes ?? [DEFAULT_SCOPE]}}), options.transport.group)
    await sleep(options.waitMs ?? 3000)
  } finally {
    socket.close()
  }
  return [...found.values()]
}

/** `bits peers discover`: probes and adds what answered to the peer table as discovered peers. */
export async function discoverPeers(ctx: LibContext, options: ProbeOptions): Promise<PeerEntry[]> {
  const found = await probePeers(options)
  const added: PeerEntry[] = []
  for (const peer of found) added.push(await addPeer(ctx, {host: peer.host, port: peer.port, source: 'discovered'}))
  return added
}
