import {createSocket} from 'node:dgram'
import {unicastTransport, type DiscoveryTransport} from '../../src/lib/peers/discovery/discovery-transport.js'

/** Free UDP ports on 127.0.0.1. */
async function freeUdpPorts(count: number): Promise<number[]> {
  const sockets = await Promise.all(Array.from({length: count}, () => new Promise<ReturnType<typeof createSocket>>((resolve) => {
    const socket = createSocket('udp4')
    socket.bind(0, '127.0.0.1', () => resolve(socket))
  })))
  const ports = sockets.map((socket) => socket.address().port)
  for (const socket of sockets) socket.close()
  return ports
}

/**
 * The test stand-in for the multicast group: one transport per member, each on its own loopback
 * port, and a datagram "to the group" goes to every member's port (loopback unicast only).
 */
export async function loopbackGroup(count: number): Promise<{transports: DiscoveryTransport[]; ports: number[]}> {
  const ports = await freeUdpPorts(count)
  const group = ports.map((port) => ({address: '127.0.0.1', port}))
  return {transports: ports.map((port) => unicastTransport({bindAddress: '127.0.0.1', bindPort: port, group})), ports}
}
