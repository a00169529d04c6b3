import {spawn} from 'node:child_process'
import {open, readFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'
import type {LibContext} from '../context.js'
import {isProcessAlive} from '../state/lock.js'
import {ensureStateDir, StateLayout} from '../state/state-dir.js'
import {daemonLockPath} from './daemon.js'

/** How to start `bits serve` as a separate process: the CLI knows its own entry point. */
export interface DaemonCommand {
  executable: string
  args: string[]
}

/** The pid of the daemon serving this state directory, if one runs. */
export async function runningDaemonPid(stateDir: string): Promise<number | undefined> {
  try {
    const owner = JSON.parse(await readFile(daemonLockPath(stateDir), 'utf8')) as {pid?: number; host?: string}
    if (typeof owner.pid !== 'number') return undefined
    if (owner.host !== hostname()) return owner.pid
    return isProcessAlive(owner.pid) ? owner.pid : undefined
  } catch {
    return undefined
  }
}

/**
 * Starts `bits serve --exit-when-idle` detached when no daemon serves the state directory, so
 * that "resume and walk away" works. Many commands may race here: the daemon's own lock lets
 * exactly one of the started processes stay.
 */
export async function ensureDaemon(ctx: LibContext, command: DaemonCommand): Promise<{started: boolean; pid?: number}> {
  const running = await runningDaemonPid(ctx.stateDir)
  if (running !== undefined) return {started: false, pid: running}
  await ensureStateDir(ctx.stateDir, StateLayout.logs)
  const log = await open(path.join(ctx.stateDir, StateLayout.logs, 'daemon.log'), 'a', 0o600)
  try {
    const child = spawn(command.executable, command.args, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: {...ctx.env, BITS_STATE_DIR: ctx.stateDir},
      cwd: ctx.stateDir,
      windowsHide: true,
    })
    child.unref()
    ctx.logger.info('daemon', `started bits serve in the background (pid ${child.pid})`)
    return {started: true, pid: child.pid}
  } finally {
    await log.close()
  }
}

/**
 * After work was queued: starts a background daemon unless the user turned that off
 * (`--no-daemon`, BITS_NO_DAEMON=1, or the autoStartDaemon setting).
 */
export async function startDaemonForQueuedWork(ctx: LibContext, makeCommand: (idleExitSeconds: number) => DaemonCommand, options: {disabled?: boolean} = {}): Promise<{started: boolean; pid?: number; reason?: string}> {
  if (options.disabled) return {started: false, reason: '--no-daemon'}
  if (ctx.env.BITS_NO_DAEMON === '1' || ctx.env.BITS_NO_DAEMON === 'true') return {started: false, reason: 'BITS_NO_DAEMON'}
  const {readSettings} = await import('../settings.js')
  const settings = await readSettings(ctx.stateDir)
  if (!settings.autoStartDaemon) return {started: false, reason: 'autoStartDaemon setting is off'}
  return ensureDaemon(ctx, makeCommand(settings.idleExitSeconds))
}
