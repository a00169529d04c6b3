import type {LibContext} from '../context.js'
import type {DaemonService} from '../server/daemon.js'
import {BitsError} from '../errors.js'
import {PeerServer, type PeerServerOptions} from './peer-server.js'
import {parseRate} from './rate-limit.js'

/** The peer server as a service of `bits serve --peers`. */
export async function startPeerService(ctx: LibContext, options: PeerServerOptions): Promise<DaemonService & {address: {host: string; port: number}}> {
  const server = new PeerServer(ctx, options)
  const address = await server.listen()
  return {name: 'peers', address, close: () => server.close(), destroy: () => server.destroy()}
}

/** `bits peers serve`: runs the peer server until the signal; resolves with where it listened. */
export async function servePeers(ctx: LibContext, options: PeerServerOptions & {maxRate?: string; signal: {graceful: AbortSignal; force: AbortSignal}; onListening?(address: {host: string; port: number}): void}): Promise<{host: string; port: number}> {
  let maxRateBytesPerSecond: number | undefined
  try {
    maxRateBytesPerSecond = options.maxRate === undefined ? undefined : parseRate(options.maxRate)
  } catch (err) {
    throw new BitsError('USAGE_INVALID_ARG', `--max-rate: ${(err as Error).message}`, {hint: 'e.g. --max-rate 10MiB'})
  }
  const server = new PeerServer(ctx, {...options, maxRateBytesPerSecond})
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
