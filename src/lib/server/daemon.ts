import path from 'node:path'
import type {LibContext} from '../context.js'
import {BitsError} from '../errors.js'
import {acquireLock, type HeldLock} from '../state/lock.js'
import {ensureStateDir, StateLayout} from '../state/state-dir.js'
import {Scheduler, type SchedulerOptions} from '../scheduler/scheduler.js'

/** Something the daemon runs beside the scheduler (peer server, upload endpoint, discovery). */
export interface DaemonService {
  name: string
  close(): Promise<void>
  destroy?(): void
}

export interface DaemonOptions extends SchedulerOptions {
  /** Stop after the queue has been idle this long (background start); undefined: run until stopped. */
  idleExitMs?: number
}

export type DaemonStopReason = 'signal' | 'idle'

/**
 * `bits serve`: the one process per state directory that moves queued jobs forward. A lock file
 * holding its pid makes it single-instance; a crashed daemon's lock is taken over.
 */
export class Daemon {
  readonly scheduler: Scheduler
  readonly #lock: HeldLock
  readonly #services: DaemonService[] = []
  readonly #idleExitMs: number | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #stopping: Promise<void> | undefined
  #resolveStopped!: (reason: DaemonStopReason) => void
  /** Resolves when the daemon has stopped, with why. */
  readonly stopped: Promise<DaemonStopReason>

  private constructor(ctx: LibContext, lock: HeldLock, options: DaemonOptions) {
    this.#lock = lock
    this.#idleExitMs = options.idleExitMs
    this.scheduler = new Scheduler(ctx, options)
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve))
    this.scheduler.on('idle', () => this.#armIdleExit())
    this.scheduler.on('state', () => this.#armIdleExit())
  }

  /** Takes the state directory's daemon lock and starts the scheduler. */
  static async start(ctx: LibContext, options: DaemonOptions = {}): Promise<Daemon> {
    await ensureStateDir(ctx.stateDir, StateLayout.jobs, StateLayout.logs)
    const lockPath = daemonLockPath(ctx.stateDir)
    let lock: HeldLock
    try {
      lock = await acquireLock(lockPath, {timeoutMs: 0})
    } catch (err) {
      if (err instanceof BitsError && err.code === 'STATE_LOCKED') {
        throw new BitsError('SERVER_ALREADY_RUNNING', `A bits daemon already serves ${ctx.stateDir} (${err.message.replace(/^.*held by /, '')})`, {
          hint: 'Stop it first, or point this one at another state directory with --state-dir',
          cause: err,
        })
      }
      throw err
    }
    const daemon = new Daemon(ctx, lock, options)
    try {
      await daemon.scheduler.start()
    } catch (err) {
      await lock.release()
      throw err
    }
    daemon.#armIdleExit()
    return daemon
  }

  /** Adds a network service; it is closed with the daemon. */
  addService(service: DaemonService): void {
    this.#services.push(service)
  }

  /** Graceful stop: services close, running jobs checkpoint and go back to QUEUED, the lock is released. */
  close(reason: DaemonStopReason = 'signal'): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#idleTimer)
      await Promise.allSettled(this.#services.map((service) => service.close()))
      await this.scheduler.close()
      await this.#lock.release()
      this.#resolveStopped(reason)
    })()
    return this.#stopping
  }

  /** Forced stop (second signal): abandon in-flight work; checkpoints already written hold. */
  async destroy(): Promise<void> {
    clearTimeout(this.#idleTimer)
    for (const service of this.#services) service.destroy?.()
    this.scheduler.destroy()
    await this.#lock.release()
    this.#resolveStopped('signal')
  }

  #armIdleExit(): void {
    if (this.#idleExitMs === undefined) return
    clearTimeout(this.#idleTimer)
    if (!this.scheduler.isIdle) return
    this.#idleTimer = setTimeout(() => {
      if (this.scheduler.isIdle) void this.close('idle')
    }, this.#idleExitMs)
  }
}

export function daemonLockPath(stateDir: string): string {
  return path.join(stateDir, StateLayout.daemonPid)
}
