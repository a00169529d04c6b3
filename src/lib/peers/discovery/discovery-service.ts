import {createHash, randomUUID} from 'node:crypto'
import type {RemoteInfo} from 'node:dgram'
import {mkdir, readFile} from 'node:fs/promises'
import path from 'node:path'
import type {LibContext} from '../../context.js'
import {BitsError} from '../../errors.js'
import {writeFileAtomic} from '../../state/atomic-write.js'
import {defaultScope, readGroup} from '../peer-group.js'
import {addPeer, discoveryStateFile, PEER_PORT, peerName, type PeerEntry} from '../peer-table.js'
import type {DiscoveryChannel, DiscoveryTransport} from './discovery-transport.js'
import {buildDiscovery, MalformedDiscovery, NS, parseDiscovery, scopeMatches, type DiscoveryMessage, type PeerAdvertisement} from './ws-discovery-messages.js'


/** [MS-BPDP] §3.2.2: one discovery request lives 30 s; after a Probe, requests are suppressed 10 minutes. */
export const DISCOVERY_LIFETIME_MS = 30_000
export const DISCOVERY_SUPPRESSION_MS = 10 * 60_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function abortableSleep(ms: number, signal?: AbortSignal, unref = false): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(resolve, ms)
    if (unref) timer.unref()
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    }, {once: true})
  })
}

/** SOAP-over-UDP: every multicast message goes out twice, the repeat 50-250 ms later, with the same MessageID. */
async function twice(send: () => Promise<void>): Promise<void> {
  await send()
  await sleep(50 + Math.random() * 200)
  await send()
}

/**
 * Duplicate detection: repeats carry the same MessageID; a message whose AppSequence is not newer
 * than the last one from the same endpoint instance is stale or replayed.
 */
class SeenMessages {
  readonly #ids = new Set<string>()
  readonly #sequences = new Map<string, {instanceId: number; messageNumber: number}>()

  firstTime(message: DiscoveryMessage): boolean {
    if (this.#ids.has(message.messageId)) return false
    this.#ids.add(message.messageId)
    if (this.#ids.size > 512) this.#ids.delete(this.#ids.values().next().value!)
    const endpoint = message.peers[0]?.address
    const sequence = message.appSequence
    if (endpoint && sequence) {
      const last = this.#sequences.get(endpoint)
      if (last && (sequence.instanceId < last.instanceId || (sequence.instanceId === last.instanceId && sequence.messageNumber <= last.messageNumber))) return false
      this.#sequences.set(endpoint, sequence)
      if (this.#sequences.size > 1024) this.#sequences.delete(this.#sequences.keys().next().value!)
    }
    return true
  }
}

/** The instance GUID of [MS-BPDP] §3.1.3, derived from the peer certificate so that it is stable across restarts. */
export function endpointOf(certificateFingerprint: string): string {
  const hex = createHash('sha256').update(certificateFingerprint).digest('hex')
  return `uuid:${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** A peer server found by discovery: where to reach its [MS-BPCR] endpoint. */
export interface DiscoveredPeer {
  host: string
  port: number
  fqdn: string
  endpoint: string
}

/**
 * Turns a ProbeMatch or Hello into reachable addresses. XAddrs outside this machine's subnets are
 * discarded (§3.2.4.1); the sender's address stands in only when XAddrs name no address at all.
 */
export function peersOf(advertisement: PeerAdvertisement, sender: string, transport: DiscoveryTransport): DiscoveredPeer[] {
  const hosts = advertisement.xaddrs.map((xaddr) => /^https:\/\/\[?([^\]/]+)\]?\/?$/i.exec(xaddr)?.[1]).filter((host): host is string => Boolean(host))
  return (hosts.length > 0 ? hosts : [sender.split('%')[0]!])
    .filter((host) => transport.reachable(host))
    .map((host) => ({host: host.toLowerCase(), port: advertisement.port ?? PEER_PORT, fqdn: advertisement.fqdn, endpoint: advertisement.address}))
}

export interface ResponderOptions {
  transport: DiscoveryTransport
  /** The HTTPS port of this peer server (advertised in an extension element when not 2178). */
  httpsPort: number
  /** Addresses to put in XAddrs. */
  addresses: string[]
  scopes?: string[]
  fqdn: string
  /** `uuid:…`, this server's endpoint; a random one by default. */
  endpoint?: string
  /** Answers to Probes per second at most (probe-flood protection). @default 20 */
  maxAnswersPerSecond?: number
  /** Upper bound of the random wait before answering a Probe. @default 500 */
  maxAnswerDelayMs?: number
  /** Another peer server said Hello (Bye is ignored, as Windows clients do). */
  onHello?(peers: DiscoveredPeer[]): void
}

/**
 * The server side of [MS-BPDP]: Hello on start, Bye on an orderly stop, and ProbeMatches (after a
 * random delay, unicast to the prober) for Probes of type msbits:PeerServer in a matching scope.
 * It also hears other servers' Hellos, which is how a running peer learns of one that starts later.
 * Malformed and oversized datagrams are dropped and counted; answers are rate-limited.
 */
export class DiscoveryResponder {
  readonly #options: ResponderOptions
  readonly #seen = new SeenMessages()
  readonly #instanceId = Math.floor(Date.now() / 1000)
  readonly #advertisement: PeerAdvertisement
  #messageNumber = 0
  #channel: DiscoveryChannel | undefined
  #answersThisSecond = 0
  #second = 0
  /** Datagrams dropped because they did not parse. */
  dropped = 0
  /** ProbeMatches sent, and Hellos heard from other servers. */
  answered = 0
  hellos = 0

  constructor(options: ResponderOptions) {
    this.#options = options
    this.#advertisement = {
      address: options.endpoint ?? `uuid:${randomUUID()}`,
      fqdn: options.fqdn,
      scopes: options.scopes ?? [defaultScope()],
      xaddrs: options.addresses.map((address) => (address.includes(':') ? `https://[${address}]` : `https://${address}`)),
      ...(options.httpsPort === PEER_PORT ? {} : {port: options.httpsPort}),
      metadataVersion: 1,
    }
  }

  get endpoint(): string {
    return this.#advertisement.address
  }

  async start(): Promise<void> {
    this.#channel = await this.#options.transport.open('responder', (datagram, from) => void this.#receive(datagram, from))
    const hello = buildDiscovery({kind: 'Hello', peers: [this.#advertisement], appSequence: this.#sequence()})
    await twice(() => this.#channel!.toGroup(hello))
  }

  async close(): Promise<void> {
    const channel = this.#channel
    if (!channel) return
    this.#channel = undefined
    const bye = buildDiscovery({kind: 'Bye', peers: [this.#advertisement], appSequence: this.#sequence()})
    await twice(() => channel.toGroup(bye)).catch(() => undefined)
    channel.close()
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
    if (message.peers[0]?.address === this.endpoint || !this.#seen.firstTime(message)) return
    if (message.kind === 'Hello') {
      const peers = message.peers.flatMap((advertisement) => (this.#inScope(advertisement.scopes) ? peersOf(advertisement, from.address, this.#options.transport) : []))
      if (peers.length === 0) return
      this.hellos++
      this.#options.onHello?.(peers)
      return
    }
    if (message.kind !== 'Probe') return
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
    const channel = this.#channel
    if (!channel) return
    const answer = buildDiscovery({kind: 'ProbeMatches', relatesTo: message.messageId, peers: [this.#advertisement], appSequence: this.#sequence()})
    await twice(() => channel.toAddress(answer, {address: from.address, port: from.port}))
    this.answered++
  }

  /** A Hello counts when it shares a scope with this server (the group). */
  #inScope(scopes: string[]): boolean {
    return scopes.some((theirs) => this.#advertisement.scopes.some((ours) => scopeMatches(ours, theirs)))
  }
}

export interface ProbeOptions {
  transport: DiscoveryTransport
  scopes?: string[]
  /** How long to collect ProbeMatches. @default 3000 */
  waitMs?: number
  /** Called for each peer as its ProbeMatch arrives. */
  onPeer?(peer: DiscoveredPeer): void
  /** This machine's own endpoint, whose answers are ignored. */
  ownEndpoint?: string
  /** Ends the collection early (the service stopping). */
  signal?: AbortSignal
  /** Do not keep the process alive for the rest of the collection. */
  unref?: boolean
}

/** Sends a Probe (twice) and collects the ProbeMatches that relate to it. */
export async function probePeers(options: ProbeOptions): Promise<DiscoveredPeer[]> {
  const found = new Map<string, DiscoveredPeer>()
  const seen = new SeenMessages()
  const messageId = `urn:uuid:${randomUUID()}`
  const channel = await options.transport.open('prober', (datagram, from) => {
    let message: DiscoveryMessage
    try {
      message = parseDiscovery(datagram)
    } catch {
      return // Not well-formed: ignored.
    }
    if (message.kind !== 'ProbeMatches' || message.relatesTo !== messageId || !seen.firstTime(message)) return
    for (const advertisement of message.peers) {
      if (advertisement.address === options.ownEndpoint) continue
      for (const peer of peersOf(advertisement, from.address, options.transport)) {
        const key = peerName(peer)
        if (found.has(key)) continue
        found.set(key, peer)
        options.onPeer?.(peer)
      }
    }
  })
  try {
    const probe = buildDiscovery({kind: 'Probe', messageId, peers: [], probe: {types: ['msbits:PeerServer'], scopes: options.scopes ?? [defaultScope()]}})
    if (options.unref) channel.unref()
    await twice(() => channel.toGroup(probe))
    await abortableSleep(options.waitMs ?? 3000, options.signal, options.unref)
  } finally {
    channel.close()
  }
  return [...found.values()]
}

/** When the last Probe went out ([MS-BPDP] discovery suppression timer), or undefined. */
async function lastProbeAt(ctx: LibContext): Promise<number | undefined> {
  try {
    const at = Date.parse((JSON.parse(await readFile(discoveryStateFile(ctx), 'utf8')) as {lastProbeAt?: string}).lastProbeAt ?? '')
    return Number.isNaN(at) ? undefined : at
  } catch {
    return undefined
  }
}

export interface DiscoveryRequest extends ProbeOptions {
  /** Probe even while the 10-minute suppression timer runs (an explicit `peers discover`). */
  force?: boolean
  /** Called with each answer once it is in the peer table. */
  onRecorded?(entry: PeerEntry): void
}

/**
 * A discovery request ([MS-BPDP] §3.2.6.4): unless suppressed, probes and adds each answer to the
 * peer table as a discovered peer as it arrives. Returns what was added, or `suppressed`.
 */
export async function requestDiscovery(ctx: LibContext, request: DiscoveryRequest): Promise<{suppressed: boolean; peers: PeerEntry[]}> {
  const last = await lastProbeAt(ctx)
  if (!request.force && last !== undefined && ctx.now().getTime() - last < DISCOVERY_SUPPRESSION_MS) return {suppressed: true, peers: []}
  await mkdir(path.dirname(discoveryStateFile(ctx)), {recursive: true, mode: 0o700})
  await writeFileAtomic(discoveryStateFile(ctx), JSON.stringify({lastProbeAt: ctx.now().toISOString()}))
  const adding: Promise<PeerEntry>[] = []
  await probePeers({
    ...request,
    scopes: request.scopes ?? [(await readGroup(ctx)).scope],
    waitMs: request.waitMs ?? DISCOVERY_LIFETIME_MS,
    onPeer(peer) {
      adding.push(
        addPeer(ctx, {...peer, source: 'discovered'}).then((entry) => {
          request.onRecorded?.(entry)
          return entry
        }),
      )
      request.onPeer?.(peer)
    },
  })
  return {suppressed: false, peers: await Promise.all(adding)}
}

/** `bits peers discover`: probes now (suppression does not apply to an explicit request) and adds what answered. */
export async function discoverPeers(ctx: LibContext, options: ProbeOptions): Promise<PeerEntry[]> {
  try {
    return (await requestDiscovery(ctx, {...options, waitMs: options.waitMs ?? 3000, force: true})).peers
  } catch (err) {
    if (err instanceof BitsError) throw err
    throw new BitsError('DISCOVERY_FAILED', `Discovery could not run: ${(err as Error).message}`, {cause: err, hint: 'Check that a network interface is up, or add peers by hand (bits peers add)'})
  }
}
