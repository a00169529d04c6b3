import {open, readFile, rename, unlink, stat, link} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import {BitsError, errnoCode} from '../errors.js'

export interface LockOptions {
  /** How long to wait for a busy lock before failing with STATE_LOCKED. @default 15000 */
  timeoutMs?: number
  /**
   * Age after which a lock whose holder cannot be checked (another host) counts as abandoned.
   * A holder on this host is checked by pid instead, so a crashed holder is noticed at once.
   * @default 60000
   */
  staleMs?: number
}

interface LockOwner {
  pid: number
  host: string
  token: string
  acquiredAt: string
}

/** A held lock; `release()` is idempotent. */
export interface HeldLock {
  release(): Promise<void>
}

/**
 * Takes an advisory cross-process lock: a file created with O_EXCL that names its holder.
 * Waits with backoff while another live process holds it; takes over a lock whose holder died.
 */
export async function acquireLock(lockPath: string, options: LockOptions = {}): Promise<HeldLock> {
  const timeoutMs = options.timeoutMs ?? 15_000
  const staleMs = options.staleMs ?? 60_000
  const owner: LockOwner = {pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex'), acquiredAt: new Date().toISOString()}
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600)
      await handle.writeFile(JSON.stringify(owner))
      await handle.close()
      return {release: () => releaseLock(lockPath, owner.token)}
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err
    }
    if (await breakIfStale(lockPath, staleMs)) continue
    if (Date.now() >= deadline) {
      const holder = await readOwner(lockPath)
      throw new BitsError('STATE_LOCKED', `Timed out after ${timeoutMs} ms waiting for lock ${lockPath}${holder ? ` held by pid ${holder.pid} on ${holder.host}` : ''}`, {
        hint: 'Another bits process is busy with this state; try again, or remove the lock file if that process is gone',
      })
    }
    await delay(Math.min(5 * 2 ** Math.min(attempt, 4), 50) + Math.random() * 5)
  }
}

/** Runs `fn` while holding the lock at `lockPath`. */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, options?: LockOptions): Promise<T> {
  const lock = await acquireLock(lockPath, options)
  try {
    return await fn()
  } finally {
    await lock.release()
  }
}

/** True when `pid` names a live process on this host (EPERM: alive but not ours). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errnoCode(err) === 'EPERM'
  }
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<LockOwner>
    if (typeof parsed.pid === 'number' && typeof parsed.token === 'string' && typeof parsed.host === 'string') return parsed as LockOwner
  } catch {
    // A lock file caught between create and write reads empty; the age check below covers it.
  }
  return undefined
}

async function breakIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  const owner = await readOwner(lockPath)
  let stale: boolean
  if (owner && owner.host === hostname()) {
    stale = !isProcessAlive(owner.pid)
  } else {
    const info = await stat(lockPath).catch(() => undefined)
    if (!info) return true
    // An unreadable owner is normal for a few microseconds after creation; only age makes it stale.
    stale = Date.now() - info.mtimeMs > (owner ? staleMs : Math.min(staleMs, 2_000))
  }
  if (!stale) return false
  // Move the stale lock aside rather than unlinking it, then check it is the one we judged: a
  // racing process may already have replaced it with a fresh lock, which must be put back.
  const aside = `${lockPath}.${randomBytes(6).toString('hex')}.stale`
  try {
    await rename(lockPath, aside)
  } catch {
    return true
  }
  const moved = await readOwner(aside)
  if (owner && moved && moved.token !== owner.token) {
    await link(aside, lockPath).catch(() => undefined)
  }
  await unlink(aside).catch(() => undefined)
  return true
}

async function releaseLock(lockPath: string, token: string): Promise<void> {
  const owner = await readOwner(lockPath)
  if (owner?.token === token) await unlink(lockPath).catch(() => undefined)
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
