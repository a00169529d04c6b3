import {createServer, type IncomingMessage} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'
import {createProxy} from 'proxy'

/** A forward proxy (the `proxy` package) on loopback that counts what passes through it. */
export async function startProxy(options: {user?: string; password?: string} = {}) {
  const server = createProxy(createServer())
  const seen: string[] = []
  server.on('request', (req: IncomingMessage) => seen.push(`${req.method} ${req.url}`))
  server.on('connect', (req: IncomingMessage) => seen.push(`CONNECT ${req.url}`))
  if (options.user) {
    const expected = `Basic ${Buffer.from(`${options.user}:${options.password}`).toString('base64')}`
    server.authenticate = (req) => req.headers['proxy-authorization'] === expected
  }
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    seen,
    stop: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

