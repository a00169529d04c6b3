import cluster from 'node:cluster'
import type {LibContext} from '../context.js'
import type {DaemonService} from '../server/daemon.js'
import {BitsError} from '../errors.js'
import {startDiscoveryAgent} from './discovery/discovery-agent.js'
import {PeerServer, type PeerServerOptions} from './peer-server.js'
import type {PeerEntry} from './peer-table.js'
import {parseRate} from './rate-limit.js'

export interface PeerServiceOptions extends PeerServerOptions {
  /** Advertise the server and find others by [MS-BPDP] (when it listens beyond loopback). @default true */
  discovery?: boolean
  /** Discovery found a peer server. */
  onPeer?(peer: PeerEntry): void
}

/** Discovery for a peer server that listens at `address` (where it really listens), unless turned off. */
function startDiscovery(ctx: LibContext, options: PeerServiceOptions, address: {host: string; port: number}): Promise<DaemonService | undefined> {
  if (options.discovery === false) return Promise.resolve(undefined)
  return startDiscoveryAgent(ctx, {httpsHost: address.host, httpsPort: address.port, onPeer: options.onPeer})
}

/** The peer server (and its discovery) as services of `bits serve --peers`. */
export async function startPeerServices(ctx: LibContext, options: PeerServiceOptions): Promise<DaemonService[]> {
  const server = new PeerServer(ctx, options)
  const address = await server.listen()
  const peers: DaemonService = {name: 'peers', close: () => server.close(), destroy: () => server.destroy()}
  const discovery = await startDiscovery(ctx, options, address)
  return discovery ? [peers, discovery] : [peers]
}

/** `bits peers serve`: runs the peer server until the signal; resolves with where it listened. */
export async function servePeers(ctx: LibContext, options: PeerServiceOptions & {maxRate?: string; workers?: number; signal: {graceful: AbortSignal; force: AbortSignal}; onListening?(address: {host: string; port: number}): void}): Promise<{host: string; port: number}> {
  if ((options.workers ?? 1) > 1 && cluster.isPrimary) return superviseWorkers(ctx, options.workers!, options)
  let maxRateBytesPerSecond: number | undefined
  try {
    maxRateBytesPerSecond = options.maxRate === undefined ? undefined : parseRate(options.maxRate)
  } catch (err) {
    throw new BitsError('USAGE_INVALID_ARG', `--max-rate: ${(err as Error).message}`, {hint: 'e.g. --max-rate 10MiB'})
  }
  const server = new PeerServer(ctx, {...options, maxRateBytesPerSecond})
  const address = await server.listen()
  options.onListening?.(address)
  // With several workers, the supervising primary advertises the shared port, not each worker.
  const discovery = cluster.isWorker ? undefined : await startDiscovery(ctx, options, address)
  await new Promise<void>((resolve) => {
    options.signal.graceful.addEventListener('abort', () => void Promise.all([server.close(), discovery?.close()]).then(() => resolve()), {once: true})
    options.signal.force.addEventListener('abort', () => {
      server.destroy()
      resolve()
    }, {once: true})
  })
  // A worker's channel to its primary would keep it alive after the server closed.
  if (cluster.isWorker) cluster.worker!.disconnect()
  return address
}

/**
 * Several processes share the listening socket (node:cluster re-runs the same command in each),
 * so that serving uses every core as nginx's workers do. The primary only supervises.
 */
async function superviseWorkers(ctx: LibContext, count: number, options: PeerServiceOptions & {signal: {graceful: AbortSignal; force: AbortSignal}; onListening?(address: {host: string; port: number}): void}): Promise<{host: string; port: number}> {
  const workers = Array.from({length: count}, () => cluster.fork())
  const address = await new Promise<{host: string; port: number}>((resolve) => cluster.once('listening', (_worker, where) => resolve({host: where.address ?? options.host ?? '127.0.0.1', port: where.port})))
  options.onListening?.(address)
  const discovery = await startDiscovery(ctx, options, address)
  await new Promise<void>((resolve) => {
    options.signal.graceful.addEventListener('abort', () => resolve(), {once: true})
    options.signal.force.addEventListener('abort', () => resolve(), {once: true})
  })
  await discovery?.close()
  const stopping = workers.map((worker) => new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve()))))
  for (const worker of workers) worker.process.kill(options.signal.force.aborted ? 'SIGKILL' : 'SIGTERM')
  await Promise.all(stopping)
  return address
}
