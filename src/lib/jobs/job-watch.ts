import {watch} from 'node:fs'
import type {LibContext} from '../context.js'
import {JobStore} from '../state/job-store.js'
import {toJobView, type JobView} from './job.js'

export interface WatchJobOptions {
  signal?: AbortSignal
  /** Re-read at least this often, even without a file event. @default 500 */
  pollMs?: number
}

/**
 * Calls `onChange` with the job each time its file changes (file events, plus a slow poll for
 * file systems without them), until `onChange` returns true or the signal aborts.
 */
export async function watchJob(ctx: LibContext, id: string, onChange: (job: JobView) => boolean | void, options: WatchJobOptions = {}): Promise<JobView> {
  const store = new JobStore(ctx.stateDir)
  let last = ''
  return new Promise<JobView>((resolve, reject) => {
    let checking = false
    let again = false
    const timer = setInterval(() => void check(), options.pollMs ?? 500)
    const watcher = watch(store.dir, (_event, name) => {
      if (!name || String(name).startsWith(id)) void check()
    })
    const stop = () => {
      watcher.close()
      clearInterval(timer)
      options.signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = () => {
      stop()
      reject(options.signal!.reason)
    }
    const check = async (): Promise<void> => {
      if (checking) {
        again = true
        return
      }
      checking = true
      try {
        const job = toJobView(await store.read(id))
        const text = JSON.stringify(job)
        if (text !== last) {
          last = text
          if (onChange(job)) {
            stop()
            resolve(job)
            return
          }
        }
      } catch (err) {
        stop()
        reject(err)
        return
      } finally {
        checking = false
      }
      if (again) {
        again = false
        await check()
      }
    }
    options.signal?.addEventListener('abort', onAbort, {once: true})
    void check()
  })
}
