import {open, rename} from 'node:fs/promises'
import {toJobView, type JobRecord, type UploadProgress} from '../jobs/job.js'
import {HttpSession} from '../transfer/http-session.js'
import type {JobRunner} from '../transfer/job-runner.js'
import {httpStatusError} from '../transfer/transfer-error.js'
import {localFileError, toTransportError} from '../transfer/transport-errors.js'
import {cancelSession, closeSession, uploadFile} from './upload-client.js'

/** Where an upload-reply job's reply lands: the job's reply file, else beside the uploaded file. */
export function replyPathOf(job: JobRecord): string {
  return toJobView(job).reply!.file
}

/**
 * Runs an upload or upload-reply job: the file goes up with [MC-BUP], resuming from the
 * session and offset the job recorded; an upload-reply then downloads the reply into its reply
 * file, and only after that the session is closed (closing deletes the reply on the server).
 */
export const runUploadJob: JobRunner = async (job, hooks) => {
  const file = job.files[0]!
  const session = new HttpSession(job, {...hooks.timeouts, env: hooks.env, logger: hooks.logger})
  try {
    let progress: UploadProgress | null = file.upload ?? null
    const result = await uploadFile(session, {
      url: file.remoteUrl,
      localPath: file.localPath,
      progress,
      acked: progress?.sessionId ? file.bytesTransferred : 0,
      signal: hooks.signal,
      onBytes: hooks.onBytes,
      checkpoint: async (next, acked) => {
        progress = next
        await hooks.checkpointFile(0, {upload: next, bytesTransferred: acked, bytesTotal: next.fileSize})
      },
    })
    progress = result.progress
    if (job.type === 'upload-reply') {
      if (!result.replyUrl) throw httpStatusError(500, file.remoteUrl, {transient: false, fileIndex: 0})
      const replyBytes = await downloadReply(session, result.replyUrl, replyPathOf(job), hooks.signal)
      progress = {...progress, replyBytes}
    }
    await closeSession(session, file.remoteUrl, progress, file.localPath, hooks.signal)
    await hooks.checkpointFile(0, {transferred: true, bytesTransferred: progress.fileSize, upload: {...progress, sessionId: null}})
  } catch (err) {
    if (hooks.signal.aborted) throw hooks.signal.reason ?? err
    throw toTransportError(err, file.remoteUrl)
  } finally {
    await session.close().catch(() => session.destroy())
  }
}

/** Fetches the reply into `target` (through a temporary file); returns its size. */
async function downloadReply(session: HttpSession, url: string, target: string, signal: AbortSignal): Promise<number> {
  const response = await session.request({url, signal})
  if (response.status !== 200) {
    response.body.resume()
    throw httpStatusError(response.status, url, {fileIndex: 0})
  }
  const temp = `${target}.${Date.now().toString(36)}.bitspart`
  let size = 0
  try {
    const handle = await open(temp, 'w')
    try {
      for await (const chunk of response.body) {
        await handle.write(chunk as Buffer)
        size += (chunk as Buffer).length
      }
    } finally {
      await handle.close()
    }
    await rename(temp, target)
  } catch (err) {
    throw localFileError(err, target)
  }
  return size
}

/** `bits cancel` of an upload job: tells the server to drop the session (best effort, 5 s). */
export async function cancelUploadSession(job: JobRecord): Promise<void> {
  const file = job.files[0]
  if (!file?.upload?.sessionId) return
  const session = new HttpSession(job, {connectTimeoutMs: 5000, headersTimeoutMs: 5000})
  try {
    await cancelSession(session, file.remoteUrl, file.upload, AbortSignal.timeout(5000))
  } catch {
    // The server forgets idle sessions by itself; cancel must not fail for an offline server.
  } finally {
    await session.destroy()
  }
}
