import {randomUUID, createHash} from 'node:crypto'
import {rename, stat, unlink} from 'node:fs/promises'
import {userInfo} from 'node:os'
import path from 'node:path'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode, formatHresult, HRESULT} from '../errors.js'
import {JobStore, type JobFileProblem} from '../state/job-store.js'
import {
  ACTIVE_STATES,
  isFinal,
  JOB_SCHEMA_VERSION,
  JobDefaults,
  JobLimits,
  temporaryPath,
  toJobView,
  type JobFile,
  type JobRecord,
  type JobType,
  type JobView,
} from './job.js'
import {formatJobId} from './job-ref.js'
import {applySettings, checkDescription, checkDisplayName, type JobSettingsChange} from './job-settings.js'
import {invalidStateError} from './state-machine.js'
import {notifyDue} from '../scheduler/notify-command.js'
import {readSettings} from '../settings.js'

export interface CreateJobInput {
  displayName: string
  type?: JobType
  description?: string
  settings?: JobSettingsChange
}

/** One remote/local pair to add to a job. */
export interface FilePair {
  remoteUrl: string
  localPath: string
}

/** Jobs plus the files that could not be read (reported as warnings, never fatal to a listing). */
export interface JobList {
  jobs: JobView[]
  problems: {file: string; message: string; hint?: string}[]
}

export interface CompleteResult {
  job: JobView
  partial: boolean
  /** BG_S_PARTIAL_COMPLETE (0x00200017) when only some files were kept, else 0x00000000. */
  hresult: string
  filesKept: string[]
  filesDiscarded: string[]
}

export interface CancelResult {
  job: JobView
  filesDeleted: string[]
}

function storeOf(ctx: LibContext): JobStore {
  return new JobStore(ctx.stateDir)
}

function ownerName(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username
  } catch {
    return env.USER ?? env.USERNAME ?? 'unknown'
  }
}

function label(job: Pick<JobRecord, 'id'>): string {
  return formatJobId(job.id)
}

/** Creates a SUSPENDED job, as BITS CreateJob does. */
export async function createJob(ctx: LibContext, input: CreateJobInput): Promise<JobView> {
  const now = ctx.now().toISOString()
  const job: JobRecord = {
    schemaVersion: JOB_SCHEMA_VERSION,
    id: randomUUID(),
    displayName: checkDisplayName(input.displayName),
    description: checkDescription(input.description ?? ''),
    type: input.type ?? 'download',
    state: 'SUSPENDED',
    priority: JobDefaults.priority,
    owner: ownerName(ctx.env),
    createdAt: now,
    modifiedAt: now,
    transferCompletedAt: null,
    files: [],
    error: null,
    errorCount: 0,
    minRetryDelay: JobDefaults.minRetryDelay,
    noProgressTimeout: JobDefaults.noProgressTimeout,
    maxDownloadTime: JobDefaults.maxDownloadTime,
    notifyFlags: JobDefaults.notifyFlags,
    notifyCmdLine: null,
    proxy: {usage: 'PRECONFIG', list: [], bypass: []},
    credentials: [],
    customHeaders: [],
    securityFlags: 0,
    peerCachingFlags: 0,
    httpMethod: 'GET',
    dynamicContent: false,
    replyFileName: null,
    parallel: JobDefaults.parallel,
    caFile: null,
    clientCert: null,
    clientKey: null,
    transientErrorSince: null,
    retryAt: null,
    activeMs: 0,
    notifyPending: null,
  }
  // The global default of peer caching applies to new jobs (bits settings defaultPeerCachingFlags).
  job.peerCachingFlags = (await readSettings(ctx.stateDir)).defaultPeerCachingFlags
  if (input.settings) applySettings(job, input.settings)
  await storeOf(ctx).create(job)
  return toJobView(job)
}

/** Reads a job list file for `addfileset`: one "remote local" pair a line, `#` comments. */
export function parseFileSet(text: string, source: string): FilePair[] {
  const pairs: FilePair[] = []
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, index) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const fields = splitPairLine(line)
    if (fields.length !== 2) {
      throw new BitsError('USAGE_INVALID_ARG', `${source}:${index + 1}: expected "remote-url local-path", got ${fields.length} field(s): ${line}`, {
        hint: 'Put one pair a line; quote a local path that contains spaces with double quotes',
      })
    }
    pairs.push({remoteUrl: fields[0]!, localPath: fields[1]!})
  })
  if (pairs.length === 0) throw new BitsError('USAGE_INVALID_ARG', `${source} lists no files`, {hint: 'Add lines of the form "https://host/file /local/path"'})
  return pairs
}

function splitPairLine(line: string): string[] {
  const fields: string[] = []
  const pattern = /"([^"]*)"|(\S+)/g
  for (let match = pattern.exec(line); match; match = pattern.exec(line)) fields.push(match[1] ?? match[2]!)
  return fields
}

/** Checks a remote URL as BITS does: http or https, at most 2 200 characters. */
export function checkRemoteUrl(text: string): string {
  if (text.length > JobLimits.remoteUrl) {
    throw new BitsError('USAGE_STRING_TOO_LONG', `Remote URL is longer than ${JobLimits.remoteUrl} characters (BG_E_STRING_TOO_LONG 0x80200021)`, {hresult: HRESULT.BG_E_STRING_TOO_LONG})
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new BitsError('USAGE_INVALID_ARG', `Remote URL "${text}" is not a valid URL`, {hint: 'Give a full URL, e.g. https://example.com/file.bin', hresult: HRESULT.E_INVALIDARG})
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BitsError('USAGE_INVALID_ARG', `Remote URL "${text}" uses ${url.protocol.slice(0, -1)}; only http and https are supported`, {hint: 'Serve the file over http(s)', hresult: HRESULT.E_INVALIDARG})
  }
  if (url.username || url.password) {
    throw new BitsError('USAGE_INVALID_ARG', 'Remote URL carries a user name or password', {hint: 'Use "bits set JOB --credentials server:basic:USER" instead; credentials in URLs leak into logs'})
  }
  return url.href
}

async function checkLocalPath(ctx: LibContext, localPath: string, type: JobType): Promise<string> {
  const full = path.resolve(ctx.cwd, localPath)
  if (type === 'download') {
    const dir = path.dirname(full)
    const info = await stat(dir).catch(() => undefined)
    if (!info?.isDirectory()) {
      throw new BitsError('FILE_NOT_FOUND', `Directory ${dir} of local file ${full} does not exist`, {
        hresult: HRESULT.ERROR_PATH_NOT_FOUND,
        hint: 'Create the directory first; bits does not create directories',
      })
    }
    const existing = await stat(full).catch(() => undefined)
    if (existing?.isDirectory()) throw new BitsError('USAGE_INVALID_ARG', `Local path ${full} is a directory`, {hint: 'Name the file to create inside it'})
  } else {
    const info = await stat(full).catch(() => undefined)
    if (!info?.isFile()) {
      throw new BitsError('FILE_NOT_FOUND', `Upload source ${full} is not a readable file`, {hresult: HRESULT.ERROR_FILE_NOT_FOUND, hint: 'Check the path of the file to upload'})
    }
  }
  return full
}

function temporaryNameFor(jobId: string, index: number, localPath: string): string {
  const hash = createHash('sha256').update(`${jobId}\0${index}\0${localPath}`).digest('hex').slice(0, 8)
  return `.${path.basename(localPath)}.${hash}.bitspart`
}

/**
 * Adds files to a job: all of them or none (BITS AddFileSet). Every pair is checked before the
 * job is touched, so a bad line leaves the job as it was.
 */
export async function addFiles(ctx: LibContext, ref: string, pairs: FilePair[]): Promise<JobView> {
  const store = storeOf(ctx)
  const target = await store.resolve(ref)
  const checked: FilePair[] = []
  for (const pair of pairs) {
    checked.push({remoteUrl: checkRemoteUrl(pair.remoteUrl), localPath: await checkLocalPath(ctx, pair.localPath, target.type)})
  }
  // The policy limit lives in the settings; reading them costs a module load, so only when it matters.
  const maxFiles = target.files.length + checked.length > JobLimits.filesPerJob ? (await readSettings(ctx.stateDir)).maxFilesPerJob : JobLimits.filesPerJob
  const updated = await store.update(
    target.id,
    (job) => {
      if (isFinal(job.state)) throw invalidStateError(label(job), job.state, 'cannot add files')
      if (job.type !== 'download' && job.files.length + checked.length > 1) {
        throw new BitsError('JOB_TOO_MANY_FILES', `Job ${label(job)} is an ${job.type} job and takes exactly one file (BG_E_TOO_MANY_FILES 0x8020001C)`, {
          hresult: HRESULT.BG_E_TOO_MANY_FILES,
          hint: 'Create one upload job per file',
        })
      }
      if (job.files.length + checked.length > maxFiles) {
        throw new BitsError('JOB_TOO_MANY_FILES', `Job ${label(job)} would have ${job.files.length + checked.length} files; the limit is ${maxFiles}`, {
          hint: 'Split the files over several jobs, or raise the limit: bits settings maxFilesPerJob N',
        })
      }
      const taken = new Set(job.files.map((file) => file.localPath))
      for (const pair of checked) {
        if (job.type === 'download' && taken.has(pair.localPath)) {
          throw new BitsError('USAGE_INVALID_ARG', `Job ${label(job)} already downloads to ${pair.localPath}`, {hint: 'Give each file its own local path'})
        }
        taken.add(pair.localPath)
        const file: JobFile = {
          remoteUrl: pair.remoteUrl,
          localPath: pair.localPath,
          tempName: temporaryNameFor(job.id, job.files.length, pair.localPath),
          bytesTotal: null,
          bytesTransferred: 0,
          transferred: false,
          completed: false,
          validators: {etag: null, lastModified: null},
          bytesFromOrigin: 0,
          bytesFromPeers: {},
        }
        job.files.push(file)
      }
    },
    ctx.now,
  )
  return toJobView(updated)
}

export async function getJob(ctx: LibContext, ref: string): Promise<JobView> {
  return toJobView(await storeOf(ctx).resolve(ref))
}

/** Lists jobs; final (ACKNOWLEDGED, CANCELLED) jobs only with `all`, as BITS drops them from the queue. */
export async function listJobs(ctx: LibContext, options: {all?: boolean} = {}): Promise<JobList> {
  const {jobs, problems} = await storeOf(ctx).list()
  return {
    jobs: jobs.filter((job) => options.all || !isFinal(job.state)).map(toJobView),
    problems: problems.map(problemView),
  }
}

function problemView(problem: JobFileProblem): {file: string; message: string; hint?: string} {
  return {file: problem.file, message: problem.error.message, ...(problem.error.hint ? {hint: problem.error.hint} : {})}
}

/** True when some job waits for the engine: queued, transferring, or due for a retry. */
export async function hasQueuedWork(ctx: LibContext): Promise<boolean> {
  const {jobs} = await storeOf(ctx).list()
  return jobs.some((job) => ACTIVE_STATES.has(job.state))
}

export async function suspendJob(ctx: LibContext, ref: string): Promise<JobView> {
  const store = storeOf(ctx)
  const target = await store.resolve(ref)
  const updated = await store.update(
    target.id,
    (job) => {
      if (isFinal(job.state)) throw invalidStateError(label(job), job.state, 'cannot suspend')
      if (job.state === 'SUSPENDED') return
      job.state = 'SUSPENDED'
      job.retryAt = null
    },
    ctx.now,
  )
  return toJobView(updated)
}

/**
 * Resume: SUSPENDED → QUEUED, and ERROR / TRANSIENT_ERROR → QUEUED at once. A job without files
 * refuses with BG_E_EMPTY and stays SUSPENDED.
 */
export async function resumeJob(ctx: LibContext, ref: string): Promise<JobView> {
  const store = storeOf(ctx)
  const target = await store.resolve(ref)
  const updated = await store.update(
    target.id,
    (job) => {
      if (isFinal(job.state)) throw invalidStateError(label(job), job.state, 'cannot resume')
      if (job.files.length === 0) {
        throw new BitsError('JOB_EMPTY', `Job ${label(job)} has no files to transfer (BG_E_EMPTY 0x80200003)`, {
          hresult: HRESULT.BG_E_EMPTY,
          hint: `Add a file first: bits addfile ${label(job)} URL LOCAL`,
        })
      }
      if (job.state === 'TRANSFERRED' && job.files.every((file) => file.transferred)) return
      if (job.state === 'QUEUED' || job.state === 'CONNECTING' || job.state === 'TRANSFERRING') return
      job.state = 'QUEUED'
      job.retryAt = null
      job.activeMs = 0
      if (job.error) job.error = null
    },
    ctx.now,
  )
  return toJobView(updated)
}

async function removeQuietly(file: string): Promise<boolean> {
  try {
    await unlink(file)
    return true
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false
    throw new BitsError('IO_ERROR', `Cannot delete ${file} (${errnoCode(err)})`, {cause: err, hint: 'Check the permissions of its directory'})
  }
}

/** Cancel: deletes every temporary file of the job, then marks it CANCELLED (final). */
export async function cancelJob(ctx: LibContext, ref: string): Promise<CancelResult> {
  const store = storeOf(ctx)
  const target = await store.resolve(ref)
  const deleted: string[] = []
  if (target.type !== 'download' && !isFinal(target.state) && target.files[0]?.upload?.sessionId) {
    // BITS tells the upload server to drop the session; an unreachable server does not block cancel.
    const {cancelUploadSession} = await import('../upload/upload-job.js')
    await cancelUploadSession(target)
  }
  const updated = await store.update(
    target.id,
    async (job) => {
      if (isFinal(job.state)) throw invalidStateError(label(job), job.state, 'cannot cancel')
      job.state = 'CANCELLED'
      job.retryAt = null
      job.notifyPending = null
      // Upload jobs own no temporary file: their local file is the user's source.
      for (const file of job.type === 'download' ? job.files : []) {
        if (!file.completed && (await removeQuietly(temporaryPath(file)))) deleted.push(temporaryPath(file))
      }
    },
    ctx.now,
  )
  return {job: toJobView(updated), filesDeleted: deleted}
}

/**
 * Complete: renames each transferred file to its final name and discards the rest
 * (BG_S_PARTIAL_COMPLETE when some are discarded). Upload jobs complete only when TRANSFERRED.
 * If a rename fails the job keeps its state, so the user can fix the cause and complete again.
 */
export async function completeJob(ctx: LibContext, ref: string): Promise<CompleteResult> {
  const store = storeOf(ctx)
  const target = await store.resolve(ref)
  const kept: string[] = []
  const discarded: string[] = []
  const updated = await store.update(
    target.id,
    async (job) => {
      if (isFinal(job.state)) throw invalidStateError(label(job), job.state, 'cannot complete')
      if (job.type !== 'download' && job.state !== 'TRANSFERRED') throw invalidStateError(label(job), job.state, 'an upload job completes only when TRANSFERRED')
      for (const file of job.files) {
        if (file.completed) continue
        if (job.type !== 'download') {
          file.completed = true
          kept.push(file.localPath)
          continue
        }
        if (file.transferred) {
          try {
            await rename(temporaryPath(file), file.localPath)
          } catch (err) {
            throw new BitsError('IO_ERROR', `Cannot rename ${temporaryPath(file)} to ${file.localPath} (${errnoCode(err) ?? String(err)}); the job stays ${job.state}`, {
              cause: err,
              hint: `Fix the cause, then run "bits complete ${label(job)}" again`,
            })
          }
          file.completed = true
          kept.push(file.localPath)
        } else {
          await removeQuietly(temporaryPath(file))
          discarded.push(file.localPath)
        }
      }
      job.state = 'ACKNOWLEDGED'
      job.retryAt = null
      job.notifyPending = null
    },
    ctx.now,
  )
  const partial = discarded.length > 0
  return {
    job: toJobView(updated),
    partial,
    hresult: formatHresult(partial ? HRESULT.BG_S_PARTIAL_COMPLETE : 0),
    filesKept: kept,
    filesDiscarded: discarded,
  }
}

/** Reset: cancels every job of the current user that is not final yet, one result per job. */
export async function resetJobs(ctx: LibContext): Promise<{cancelled: CancelResult[]; failed: {id: string; message: string}[]}> {
  const {jobs} = await storeOf(ctx).list()
  const owner = ownerName(ctx.env)
  const cancelled: CancelResult[] = []
  const failed: {id: string; message: string}[] = []
  for (const job of jobs) {
    if (isFinal(job.state) || job.owner !== owner) continue
    try {
      cancelled.push(await cancelJob(ctx, job.id))
    } catch (err) {
      failed.push({id: job.id, message: err instanceof Error ? err.message : String(err)})
    }
  }
  return {cancelled, failed}
}

/** Changes job properties (`bits set`); refuses on final jobs. */
export async function setJobProperties(ctx: LibContext, ref: string, change: JobSettingsChange): Promise<JobView> {
  const store = storeOf(ctx)
  const target = await store.resolve(ref)
  const updated = await store.update(
    target.id,
    (job) => {
      if (isFinal(job.state)) throw invalidStateError(label(job), job.state, 'cannot change properties')
      applySettings(job, change)
      // BITS runs a command line set after the event too.
      if (change.notifyCmdLine && (job.state === 'TRANSFERRED' || job.state === 'ERROR') && notifyDue(job, job.state)) {
        job.notifyPending = {state: job.state, dueAt: ctx.now().toISOString()}
      }
    },
    ctx.now,
  )
  return toJobView(updated)
}
