import {open, rename, unlink} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import {errnoCode} from '../errors.js'

export interface AtomicWriteOptions {
  /** File mode of the new file. @default 0o600 */
  mode?: number
  /**
   * fsync before the rename, so the new content survives a power loss. Progress checkpoints
   * skip it: losing one only means refetching a few seconds of bytes. @default true
   */
  durable?: boolean
}

/**
 * Replaces `file` with `data` so that readers see the old or the new content, never a torn mix:
 * write a temporary file beside it, fsync, rename over. A crash leaves at most a stray temp file.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(temp, 'wx', options.mode ?? 0o600)
  try {
    await handle.writeFile(data)
    if (options.durable !== false) await handle.sync()
  } catch (err) {
    await handle.close().catch(() => undefined)
    await unlink(temp).catch(() => undefined)
    throw err
  }
  await handle.close()
  try {
    await renameWithRetry(temp, file)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    throw err
  }
}

/** Windows refuses to rename over a file another process has open for a short while: retry briefly. */
async function renameWithRetry(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to)
      return
    } catch (err) {
      const code = errnoCode(err)
      if (attempt >= 10 || (code !== 'EPERM' && code !== 'EBUSY' && code !== 'EACCES')) throw err
      await new Promise((resolve) => setTimeout(resolve, 10 * (attempt + 1)))
    }
  }
}
