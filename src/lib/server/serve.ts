import type {LibContext} from '../context.js'
import {BitsError} from '../errors.js'
import type {JobView} from '../jobs/job.js'
import {proxyEnvironment, readSettings} from '../settings.js'
import {startPeerServices, type PeerServiceOptions} from '../peers/peer-service.js'
import type {PeerEntry} from '../peers/peer-table.js'
import {startUploadService, type UploadServiceOptions} from '../upload/upload-service.js'
import {Daemon, type DaemonStopReason} from './daemon.js'

/** A line of `serve --jsonl`. */
export type ServeEvent =
  | {type: 'started'; pid: number; stateDir: string; time: string}
  | {type: 'state'; time: string; job: Pick<JobView, 'id' | 'displayName' | 'state' | 'bytesTransferred' | 'bytesTotal' | 'error'>; previous: string}
  | {type: 'peer'; time: string; peer: Pick<PeerEntry, 'host' | 'port' | 'source' | 'fqdn'>}
  | {type: 'stopped'; reason: DaemonStopReason | 'already-running'; time: string}

export interface ServeOptions {
  signal: {graceful: AbortSignal; force: AbortSignal}
  quietIfRunning?: boolean
  maxBackgroundJobs?: number
  timeSliceSeconds?: number
  idleExitSeconds?: number
  onEvent?(event: ServeEvent): void
  /** Serve the peer cache too ([MS-BPCR]). */
  peers?: PeerServiceOptions
  /** Accept BITS uploads too. */
  upload?: UploadServiceOptions
}

export interface ServeResult {
  stateDir: string
  stoppedBy: DaemonStopReason | 'already-running'
}

/** `bits serve`: runs the daemon until a signal (or idleness, for a background start). */
export async function serveStateDir(ctx: LibContext, options: ServeOptions): Promise<ServeResult> {
  const settings = await readSettings(ctx.stateDir)
  ctx = {...ctx, env: proxyEnvironment(settings, ctx.env)}
  const time = () => ctx.now().toISOString()
  let daemon: Daemon
  try {
    daemon = await Daemon.start(ctx, {
      maxBackgroundJobs: options.maxBackgroundJobs ?? settings.maxBackgroundJobs,
      timeSliceMs: (options.timeSliceSeconds ?? settings.timeSliceSeconds) * 1000,
      idleExitMs: options.idleExitSeconds === undefined ? undefined : options.idleExitSeconds * 1000,
    })
  } catch (err) {
    if (options.quietIfRunning && err instanceof BitsError && err.code === 'SERVER_ALREADY_RUNNING') return {stateDir: ctx.stateDir, stoppedBy: 'already-running'}
    throw err
  }
  ctx.logger.info('serve', `serving ${ctx.stateDir} (pid ${process.pid})`)
  options.onEvent?.({type: 'started', pid: process.pid, stateDir: ctx.stateDir, time: time()})
  daemon.scheduler.on('state', ({job, previous}) => {
    ctx.logger.info('job', `${job.id} ${job.displayName}: ${previous} -> ${job.state}`, job.error ? {error: job.error.code} : undefined)
    options.onEvent?.({type: 'state', time: time(), previous, job: {id: job.id, displayName: job.displayName, state: job.state, bytesTransferred: job.bytesTransferred, bytesTotal: job.bytesTotal, error: job.error}})
  })
  try {
    if (options.peers) {
      const onPeer = (peer: PeerEntry) => options.onEvent?.({type: 'peer', time: time(), peer: {host: peer.host, port: peer.port, source: peer.source, fqdn: peer.fqdn}})
      for (const service of await startPeerServices(ctx, {...options.peers, onPeer})) daemon.addService(service)
    }
    if (options.upload) daemon.addService(await startUploadService(ctx, options.upload))
  } catch (err) {
    await daemon.close()
    throw err
  }
  const onGraceful = () => void daemon.close('signal')
  const onForce = () => void daemon.destroy()
  options.signal.graceful.addEventListener('abort', onGraceful, {once: true})
  options.signal.force.addEventListener('abort', onForce, {once: true})
  const reason = await daemon.stopped
  options.signal.graceful.removeEventListener('abort', onGraceful)
  options.signal.force.removeEventListener('abort', onForce)
  ctx.logger.info('serve', `stopped (${reason})`)
  options.onEvent?.({type: 'stopped', reason, time: time()})
  return {stateDir: ctx.stateDir, stoppedBy: reason}
}
