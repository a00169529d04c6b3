import {createSocket, type RemoteInfo, type Socket} from 'node:dgram'
import {BlockList, isIP} from 'node:net'
import {networkInterfaces} from 'node:os'

/** [MS-BPDP] §1.3: the SOAP-over-UDP groups and port. */
export const IPV4_GROUP = '239.255.255.250'
export const IPV6_GROUP = 'ff02::c'
export const DISCOVERY_PORT = 3702

export type DatagramHandler = (datagram: Buffer, from: RemoteInfo) => void

/** An open discovery endpoint: sends to the group, or back to one sender. */
export interface DiscoveryChannel {
  /** One copy to the group on every interface and address family; failures on one interface do not stop the others. */
  toGroup(datagram: Buffer): Promise<void>
  /** Unicast, e.g. ProbeMatches back to the prober. */
  toAddress(datagram: Buffer, to: {address: string; port: number}): Promise<void>
  /** Lets the process exit while the channel is open (a discovery running on in the background). */
  unref(): void
  close(): void
}

/**
 * Where discovery datagrams travel. A responder listens on the group's port; a prober uses a port
 * of its own, since ProbeMatches come back by unicast.
 */
export interface DiscoveryTransport {
  open(role: 'responder' | 'prober', onDatagram: DatagramHandler): Promise<DiscoveryChannel>
  /** Whether an XAddr host is worth keeping: [MS-BPDP] §3.2.4.1 discards addresses outside the attached subnets. */
  reachable(host: string): boolean
}

function bind(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, address, () => {
      socket.off('error', reject)
      resolve()
    })
  })
}

function send(socket: Socket, datagram: Buffer, port: number, address: string): Promise<void> {
  // A send that fails (an interface going down, an IPv6 address still in duplicate detection) is a lost datagram, as UDP allows.
  return new Promise((resolve) => {
    try {
      socket.send(datagram, port, address, () => resolve())
    } catch {
      resolve() // The socket closed meanwhile (the service stopping between a message and its repeat).
    }
  })
}

/**
 * Joins a group on one interface. An interface that cannot join (down, no multicast, or joined
 * already through another of its addresses: EADDRINUSE) is skipped rather than ending discovery.
 */
function join(socket: Socket, group: string, interfaceAddress: string): void {
  try {
    socket.addMembership(group, interfaceAddress)
  } catch {
    // Skipped, see above.
  }
}

/**
 * A "group" made of unicast addresses: loopback ports in tests, or a list of peers on a network
 * that does not carry multicast.
 */
export function unicastTransport(options: {bindAddress: string; bindPort: number; group: {address: string; port: number}[]}): DiscoveryTransport {
  return {
    async open(role, onDatagram) {
      const socket = createSocket({type: isIP(options.bindAddress) === 6 ? 'udp6' : 'udp4', reuseAddr: true})
      socket.on('message', onDatagram)
      // A prober has a port of its own, as with multicast: ProbeMatches come back to it alone.
      await bind(socket, role === 'responder' ? options.bindPort : 0, options.bindAddress)
      return {
        async toGroup(datagram) {
          for (const target of options.group) await send(socket, datagram, target.port, target.address)
        },
        toAddress: (datagram, to) => send(socket, datagram, to.port, to.address),
        unref: () => socket.unref(),
        close: () => socket.close(),
      }
    },
    reachable: () => true,
  }
}

interface Interfaces {
  ipv4: {name: string; address: string}[]
  /**
   * Zones of the interfaces with an IPv6 link-local address: FF02::C is link-scoped, so it is sent
   * per interface. A zone is the interface name, or its index on Windows.
   */
  ipv6: string[]
  /** The subnets this machine is attached to, loopback included. */
  attached: BlockList
}

/** The interfaces discovery runs on: every non-loopback one, or only the one that holds `onlyAddress`. */
export function discoveryInterfaces(onlyAddress?: string): Interfaces {
  const result: Interfaces = {ipv4: [], ipv6: [], attached: new BlockList()}
  for (const [name, entries] of Object.entries(networkInterfaces())) {
    if (!entries) continue
    for (const entry of entries) {
      const [subnet, prefix] = (entry.cidr ?? `${entry.address}/${entry.family === 'IPv4' ? 32 : 128}`).split('/')
      result.attached.addSubnet(subnet!, Number(prefix), entry.family === 'IPv4' ? 'ipv4' : 'ipv6')
    }
    if (onlyAddress && !entries.some((entry) => entry.address === onlyAddress)) continue
    for (const entry of entries) {
      if (entry.internal) continue
      if (entry.family === 'IPv4') result.ipv4.push({name, address: entry.address})
      else if (entry.address.startsWith('fe80:')) {
        const zone = process.platform === 'win32' ? String(entry.scopeid) : name
        if (!result.ipv6.includes(zone)) result.ipv6.push(zone)
      }
    }
  }
  return result
}

/**
 * Addresses for XAddrs: active non-loopback IPv4 and global IPv6 (Windows' notes <4>, <7>), of the
 * families the server listens on: `0.0.0.0` is IPv4 only, `::` both, an address just itself.
 */
export function advertisedAddresses(listenHost: string): string[] {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return [listenHost]
  const addresses: string[] = []
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.internal || (entry.family === 'IPv6' && (listenHost === '0.0.0.0' || /^(fe80|fd|fc)/i.test(entry.address)))) continue
      addresses.push(entry.address)
    }
  }
  return addresses
}

/**
 * The [MS-BPDP] transport: 239.255.255.250 and FF02::C on UDP 3702, TTL 1, joined on every
 * interface (or the one of `onlyAddress`). Loopback delivery stays on so that two peers on one
 * host see each other; each side ignores its own messages.
 */
export function multicastTransport(options: {onlyAddress?: string; port?: number} = {}): DiscoveryTransport {
  const port = options.port ?? DISCOVERY_PORT
  // Read on first use: a search builds a transport and then, mostly, finds discovery suppressed.
  let known: Interfaces | undefined
  const current = () => (known ??= discoveryInterfaces(options.onlyAddress))
  return {
    async open(role, onDatagram) {
      const interfaces = current()
      if (interfaces.ipv4.length === 0 && interfaces.ipv6.length === 0) throw new Error('no network interface to discover on (only loopback is up)')
      const localPort = role === 'responder' ? port : 0
      const ipv4 = createSocket({type: 'udp4', reuseAddr: true})
      ipv4.on('message', onDatagram)
      await bind(ipv4, localPort, '0.0.0.0')
      ipv4.setMulticastTTL(1)
      ipv4.setMulticastLoopback(true)
      if (role === 'responder') for (const {address} of interfaces.ipv4) join(ipv4, IPV4_GROUP, address)
      // IPv6 is best effort: a host or namespace without it still discovers over IPv4.
      let ipv6: Socket | undefined = createSocket({type: 'udp6', reuseAddr: true, ipv6Only: true})
      try {
        ipv6.on('message', onDatagram)
        await bind(ipv6, localPort, '::')
        ipv6.setMulticastTTL(1)
        ipv6.setMulticastLoopback(true)
        if (role === 'responder') for (const zone of interfaces.ipv6) join(ipv6, IPV6_GROUP, `::%${zone}`)
      } catch {
        ipv6.close()
        ipv6 = undefined
      }
      return {
        async toGroup(datagram) {
          for (const {address} of interfaces.ipv4) {
            try {
              ipv4.setMulticastInterface(address)
            } catch {
              return // Closed meanwhile.
            }
            await send(ipv4, datagram, port, IPV4_GROUP)
          }
          if (ipv6) for (const zone of interfaces.ipv6) await send(ipv6, datagram, port, `${IPV6_GROUP}%${zone}`)
        },
        async toAddress(datagram, to) {
          if (isIP(to.address.split('%')[0]!) !== 6) return send(ipv4, datagram, to.port, to.address)
          if (!ipv6) return
          // A link-local sender arrives without its zone: answer on every IPv6 link, the wrong ones drop it.
          const zoned = /^fe80:/i.test(to.address) && !to.address.includes('%')
          for (const address of zoned ? interfaces.ipv6.map((zone) => `${to.address}%${zone}`) : [to.address]) await send(ipv6, datagram, to.port, address)
        },
        unref() {
          ipv4.unref()
          ipv6?.unref()
        },
        close() {
          ipv4.close()
          ipv6?.close()
        },
      }
    },
    reachable: (host) => {
      const family = isIP(host)
      return family !== 0 && current().attached.check(host, family === 6 ? 'ipv6' : 'ipv4')
    },
  }
}
