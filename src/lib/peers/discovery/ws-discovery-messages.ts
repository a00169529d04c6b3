import {randomUUID} from 'node:crypto'
import {XMLParser} from 'fast-xml-parser'

/**
 * WS-Discovery (April 2005) envelopes as [MS-BPDP] uses them: SOAP 1.2, WS-Addressing 2004/08,
 * Types `msbits:PeerServer`. Prefixes are not significant, so parsing resolves them against the
 * xmlns declarations in scope instead of comparing strings.
 */
export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  wsd: 'http://schemas.xmlsoap.org/ws/2005/04/discovery',
  msbits: 'http://schemas.microsoft.com/windows/2005/05/BITS/cache',
  openbits: 'urn:openbits:discovery',
} as const

export const ACTIONS = {
  Hello: `${NS.wsd}/Hello`,
  Bye: `${NS.wsd}/Bye`,
  Probe: `${NS.wsd}/Probe`,
  ProbeMatches: `${NS.wsd}/ProbeMatches`,
} as const

export type DiscoveryKind = keyof typeof ACTIONS

const MULTICAST_TO = 'urn:schemas-xmlsoap-org:ws:2005:04:discovery'
const ANONYMOUS_TO = `${NS.wsa}/role/anonymous`
export const RFC2396_MATCH = `${NS.wsd}/rfc2396`
/** Datagrams larger than this are dropped unparsed (the limit wsdd uses). */
export const MAX_DATAGRAM = 32_767

/** What a peer server advertises in Hello and ProbeMatches. */
export interface PeerAdvertisement {
  /** `uuid:<instance GUID>`. */
  address: string
  fqdn: string
  scopes: string[]
  /** `https://IP` or `https://[IPv6]`, no port (2178 implied). */
  xaddrs: string[]
  /** A port other than 2178, in an extension element only our peers read. */
  port?: number
  metadataVersion: number
}

export interface DiscoveryMessage {
  kind: DiscoveryKind
  messageId: string
  relatesTo?: string
  appSequence?: {instanceId: number; messageNumber: number}
  /** Hello, ProbeMatches (one per match) and Bye (address only). */
  peers: PeerAdvertisement[]
  /** Probe. */
  probe?: {types: string[]; scopes: string[]}
}

export class MalformedDiscovery extends Error {}

const escape = (text: string) => text.replace(/[&<>"]/g, (ch) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[ch]!)

function advertisement(peer: PeerAdvertisement): string {
  return (
    `<wsa:EndpointReference><wsa:Address>${escape(peer.address)}</wsa:Address><msbits:Fqdn>${escape(peer.fqdn)}</msbits:Fqdn><msbits:version>1</msbits:version></wsa:EndpointReference>` +
    `<wsd:Types>msbits:PeerServer</wsd:Types><wsd:Scopes>${peer.scopes.map(escape).join(' ')}</wsd:Scopes><wsd:XAddrs>${peer.xaddrs.map(escape).join(' ')}</wsd:XAddrs>` +
    `<wsd:MetadataVersion>${peer.metadataVersion}</wsd:MetadataVersion>${peer.port && peer.port !== 2178 ? `<ob:Port xmlns:ob="${NS.openbits}">${peer.port}</ob:Port>` : ''}`
  )
}

/** Builds an envelope; `messageId` defaults to a new `urn:uuid:`. */
export function buildDiscovery(message: Omit<DiscoveryMessage, 'messageId'> & {messageId?: string}): Buffer {
  const messageId = message.messageId ?? `urn:uuid:${randomUUID()}`
  const to = message.kind === 'ProbeMatches' ? ANONYMOUS_TO : MULTICAST_TO
  const header =
    `<wsa:To>${to}</wsa:To><wsa:Action>${ACTIONS[message.kind]}</wsa:Action><wsa:MessageID>${escape(messageId)}</wsa:MessageID>` +
    (message.relatesTo ? `<wsa:RelatesTo>${escape(message.relatesTo)}</wsa:RelatesTo>` : '') +
    (message.appSequence ? `<wsd:AppSequence InstanceId="${message.appSequence.instanceId}" MessageNumber="${message.appSequence.messageNumber}"/>` : '')
  let body: string
  if (message.kind === 'Probe') {
    body = `<wsd:Probe><wsd:Types>${(message.probe?.types ?? ['msbits:PeerServer']).map(escape).join(' ')}</wsd:Types><wsd:Scopes MatchBy="${RFC2396_MATCH}">${(message.probe?.scopes ?? []).map(escape).join(' ')}</wsd:Scopes></wsd:Probe>`
  } else if (message.kind === 'Bye') {
    body = `<wsd:Bye><wsa:EndpointReference><wsa:Address>${escape(message.peers[0]!.address)}</wsa:Address></wsa:EndpointReference></wsd:Bye>`
  } else if (message.kind === 'Hello') {
    body = `<wsd:Hello>${advertisement(message.peers[0]!)}</wsd:Hello>`
  } else {
    body = `<wsd:ProbeMatches>${message.peers.map((peer) => `<wsd:ProbeMatch>${advertisement(peer)}</wsd:ProbeMatch>`).join('')}</wsd:ProbeMatches>`
  }
  return Buffer.from(
    `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="${NS.soap}" xmlns:wsa="${NS.wsa}" xmlns:wsd="${NS.wsd}" xmlns:msbits="${NS.msbits}"><soap:Header>${header}</soap:Header><soap:Body>${body}</soap:Body></soap:Envelope>`,
    'utf8',
  )
}

type Node = Record<string, unknown>

const parser = new XMLParser({ignoreAttributes: false, attributeNamePrefix: '@', preserveOrder: false, parseTagValue: false, trimValues: true, isArray: (name) => name.endsWith(':ProbeMatch') || name === 'ProbeMatch'})

/** Namespace-aware view of fast-xml-parser output: children by (namespace URI, local name). */
class Element {
  constructor(
    readonly node: Node,
    readonly namespaces: Record<string, string>,
  ) {}

  static root(document: Node): [string, Element] | undefined {
    for (const [name, value] of Object.entries(document)) {
      if (name.startsWith('?') || typeof value !== 'object' || value === null) continue
      const element = new Element(value as Node, Element.scope({}, value as Node))
      return [element.resolve(name), element]
    }
    return undefined
  }

  static scope(parent: Record<string, string>, node: Node): Record<string, string> {
    const scope = {...parent}
    for (const [key, value] of Object.entries(node)) {
      if (key === '@xmlns') scope[''] = String(value)
      else if (key.startsWith('@xmlns:')) scope[key.slice(7)] = String(value)
    }
    return scope
  }

  /** `{uri}local` of a prefixed name. */
  resolve(name: string): string {
    const colon = name.indexOf(':')
    const prefix = colon < 0 ? '' : name.slice(0, colon)
    return `{${this.namespaces[prefix] ?? ''}}${colon < 0 ? name : name.slice(colon + 1)}`
  }

  children(ns: string, local: string): Element[] {
    const found: Element[] = []
    for (const [name, value] of Object.entries(this.node)) {
      if (name.startsWith('@') || name === '#text') continue
      for (const item of Array.isArray(value) ? value : [value]) {
        const node = (typeof item === 'object' && item !== null ? item : {'#text': item}) as Node
        const scope = Element.scope(this.namespaces, node)
        if (new Element(node, scope).resolveWith(name, scope) === `{${ns}}${local}`) found.push(new Element(node, scope))
      }
    }
    return found
  }

  resolveWith(name: string, scope: Record<string, string>): string {
    return new Element(this.node, scope).resolve(name)
  }

  child(ns: string, local: string): Element | undefined {
    return this.children(ns, local)[0]
  }

  text(): string {
    const value = this.node['#text']
    return value === undefined ? '' : String(value).trim()
  }

  attribute(name: string): string | undefined {
    const value = this.node[`@${name}`]
    return value === undefined ? undefined : String(value)
  }
}

function parseAdvertisement(element: Element): PeerAdvertisement {
  const epr = element.child(NS.wsa, 'EndpointReference')
  const address = epr?.child(NS.wsa, 'Address')?.text()
  const fqdn = epr?.child(NS.msbits, 'Fqdn')?.text() ?? ''
  const types = element.child(NS.wsd, 'Types')
  if (!address) throw new MalformedDiscovery('EndpointReference has no Address')
  if (fqdn.length > 255) throw new MalformedDiscovery('Fqdn is longer than 255 characters')
  if (types) {
    const names = types.text().split(/\s+/).map((qname) => types.resolve(qname))
    if (!names.includes(`{${NS.msbits}}PeerServer`)) throw new MalformedDiscovery('Types does not include msbits:PeerServer')
  }
  const port = Number(element.child(NS.openbits, 'Port')?.text())
  return {
    address,
    fqdn,
    scopes: (element.child(NS.wsd, 'Scopes')?.text() ?? '').split(/\s+/).filter(Boolean),
    xaddrs: (element.child(NS.wsd, 'XAddrs')?.text() ?? '').split(/\s+/).filter(Boolean),
    ...(Number.isInteger(port) && port > 0 && port < 65_536 ? {port} : {}),
    metadataVersion: Number(element.child(NS.wsd, 'MetadataVersion')?.text() ?? 1) || 1,
  }
}

/** Parses a datagram; MalformedDiscovery for anything that is not a discovery message we use. */
export function parseDiscovery(datagram: Buffer): DiscoveryMessage {
  if (datagram.length > MAX_DATAGRAM) throw new MalformedDiscovery(`datagram of ${datagram.length} bytes is over ${MAX_DATAGRAM}`)
  let document: Node
  try {
    document = parser.parse(datagram.toString('utf8'), true) as Node
  } catch (err) {
    throw new MalformedDiscovery(`not XML: ${(err as Error).message}`)
  }
  const root = Element.root(document)
  if (!root || root[0] !== `{${NS.soap}}Envelope`) throw new MalformedDiscovery('not a SOAP 1.2 envelope')
  const envelope = root[1]
  const header = envelope.child(NS.soap, 'Header')
  const body = envelope.child(NS.soap, 'Body')
  const action = header?.child(NS.wsa, 'Action')?.text()
  const messageId = header?.child(NS.wsa, 'MessageID')?.text()
  const kind = (Object.keys(ACTIONS) as DiscoveryKind[]).find((name) => ACTIONS[name] === action)
  if (!kind || !messageId || !body) throw new MalformedDiscovery(`unsupported or incomplete message (action ${action ?? 'none'})`)
  const sequence = header?.child(NS.wsd, 'AppSequence')
  const message: DiscoveryMessage = {
    kind,
    messageId,
    ...(header?.child(NS.wsa, 'RelatesTo') ? {relatesTo: header.child(NS.wsa, 'RelatesTo')!.text()} : {}),
    ...(sequence ? {appSequence: {instanceId: Number(sequence.attribute('InstanceId')), messageNumber: Number(sequence.attribute('MessageNumber'))}} : {}),
    peers: [],
  }
  if (kind === 'Probe') {
    const probe = body.child(NS.wsd, 'Probe')
    if (!probe) throw new MalformedDiscovery('Probe body missing')
    const types = probe.child(NS.wsd, 'Types')
    message.probe = {
      types: (types?.text() ?? '').split(/\s+/).filter(Boolean).map((qname) => types!.resolve(qname)),
      scopes: (probe.child(NS.wsd, 'Scopes')?.text() ?? '').split(/\s+/).filter(Boolean),
    }
  } else if (kind === 'Bye') {
    const address = body.child(NS.wsd, 'Bye')?.child(NS.wsa, 'EndpointReference')?.child(NS.wsa, 'Address')?.text()
    if (!address) throw new MalformedDiscovery('Bye without an address')
    message.peers = [{address, fqdn: '', scopes: [], xaddrs: [], metadataVersion: 1}]
  } else if (kind === 'Hello') {
    const hello = body.child(NS.wsd, 'Hello')
    if (!hello) throw new MalformedDiscovery('Hello body missing')
    message.peers = [parseAdvertisement(hello)]
  } else {
    message.peers = (body.child(NS.wsd, 'ProbeMatches')?.children(NS.wsd, 'ProbeMatch') ?? []).map(parseAdvertisement)
  }
  return message
}

/** RFC 2396 scope matching: scheme and authority equal (case-insensitive), path a segment-wise prefix. */
export function scopeMatches(probeScope: string, serverScope: string): boolean {
  try {
    const probe = new URL(probeScope)
    const server = new URL(serverScope)
    if (probe.protocol !== server.protocol || probe.host.toLowerCase() !== server.host.toLowerCase()) return false
    const want = probe.pathname.split('/').filter(Boolean)
    const have = server.pathname.split('/').filter(Boolean)
    return want.every((segment, index) => have[index] === segment)
  } catch {
    return probeScope === serverScope
  }
}
