import type {LibContext} from '../context.js'
import type {DaemonService} from '../server/daemon.js'
import {PeerServer, type PeerServerOptions} from './peer-server.js'

/** The peer server as a service of `bits serve --peers`. */
export async function startPeerService(ctx: LibContext, options: PeerServerOptions): Promise<DaemonService & {address: {host: string; port: number}}> {
  const server = new PeerServer(ctx, options)
  const address = await server.listen()
  return {name: 'peers', address, close: () => server.close(), destroy: () => server.destroy()}
}

/** `bits peers serve`: runs the peer server until the signal; resolves with where it listened. */
export async function servePeers(ctx: LibContext, options: PeerServerOptions & {signal: {graceful: AbortSignal; force: AbortSignal}; onListening?(address: {host: string; port: number}): void}): Promise<{host: string; port: number}> {
  const server = new PeerServer(ctx, options)
  const address = await server.listen()
  options.onListening?.(address)
  await new Promise<void>((resolve) => {
    options.signal.graceful.addEventListener('abort', () => void server.close().then(resolve), {once: true})
    options.signal.force.addEventListener('abort', () => {
      server.destroy()
      resolve()
    }, {once: true})
  })
  return address
}
