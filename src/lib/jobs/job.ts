import path from 'node:path'

/**
 * The BITS job model: what a job file holds, its defaults and limits, and the public view of a
 * job that `--json` prints. Secrets (credential passwords) live in the job file, which is 0600,
 * and never reach the view.
 */

export const JOB_STATES = [
  'QUEUED',
  'CONNECTING',
  'TRANSFERRING',
  'SUSPENDED',
  'ERROR',
  'TRANSIENT_ERROR',
  'TRANSFERRED',
  'ACKNOWLEDGED',
  'CANCELLED',
] as const
export type JobState = (typeof JOB_STATES)[number]

export const JOB_TYPES = ['download', 'upload', 'upload-reply'] as const
export type JobType = (typeof JOB_TYPES)[number]

/** In BITS enum order: FOREGROUND (0) is the most urgent. */
export const PRIORITIES = ['FOREGROUND', 'HIGH', 'NORMAL', 'LOW'] as const
export type Priority = (typeof PRIORITIES)[number]

export const PROXY_USAGES = ['PRECONFIG', 'NO_PROXY', 'OVERRIDE', 'AUTODETECT'] as const
export type ProxyUsage = (typeof PROXY_USAGES)[number]

export const CREDENTIAL_TARGETS = ['SERVER', 'PROXY'] as const
export type CredentialTarget = (typeof CREDENTIAL_TARGETS)[number]
export const CREDENTIAL_SCHEMES = ['BASIC', 'DIGEST', 'NTLM', 'NEGOTIATE', 'PASSPORT'] as const
export type CredentialScheme = (typeof CREDENTIAL_SCHEMES)[number]

/** BG_ERROR_CONTEXT names. */
export const ERROR_CONTEXTS = [
  'NONE',
  'UNKNOWN',
  'GENERAL_QUEUE_MANAGER',
  'QUEUE_MANAGER_NOTIFICATION',
  'LOCAL_FILE',
  'REMOTE_FILE',
  'GENERAL_TRANSPORT',
  'REMOTE_APPLICATION',
  'SERVER_CERTIFICATE_CALLBACK',
] as const
export type ErrorContext = (typeof ERROR_CONTEXTS)[number]

/** Bits of the job's security flags (IBackgroundCopyJobHttpOptions::SetSecurityFlags). */
export const SecurityFlag = {
  ENABLE_CRL_CHECK: 0x0001,
  IGNORE_CERT_CN_INVALID: 0x0002,
  IGNORE_CERT_DATE_INVALID: 0x0004,
  IGNORE_UNKNOWN_CA: 0x0008,
  IGNORE_CERT_WRONG_USAGE: 0x0010,
  REDIRECT_POLICY_ALLOW_SILENT: 0x0000,
  REDIRECT_POLICY_ALLOW_REPORT: 0x0100,
  REDIRECT_POLICY_DISALLOW: 0x0200,
  REDIRECT_POLICY_MASK: 0x0700,
  REDIRECT_POLICY_ALLOW_HTTPS_TO_HTTP: 0x0800,
} as const
export const SECURITY_FLAGS_VALID_MASK = 0x001f | 0x0300 | 0x0800

export const PeerCachingFlag = {CLIENT: 0x1, SERVER: 0x2, DISABLE_BRANCH_CACHE: 0x4} as const

export const NotifyFlag = {JOB_TRANSFERRED: 0x1, JOB_ERROR: 0x2, DISABLE: 0x4, JOB_MODIFICATION: 0x8, FILE_TRANSFERRED: 0x10, FILE_RANGES_TRANSFERRED: 0x20} as const
export const NOTIFY_FLAGS_VALID_MASK = 0x3f

/** BITS defaults and limits (reference §3.5). */
export const JobDefaults = {
  priority: 'NORMAL' as Priority,
  minRetryDelay: 600,
  minRetryDelayFloor: 5,
  noProgressTimeout: 1_209_600,
  maxDownloadTime: 7_776_000,
  notifyFlags: 3,
  parallel: 1,
} as const

export const JobLimits = {
  displayName: 256,
  description: 1024,
  remoteUrl: 2200,
  customHeadersBytes: 16 * 1024,
  notifyProgram: 4096,
  notifyArgs: 4000,
  proxyList: 4000,
  userName: 300,
  password: 65_535,
  filesPerJob: 200,
  parallel: 64,
} as const

export interface JobErrorInfo {
  /** HRESULT as `0x80190194`. */
  code: string
  context: ErrorContext
  description: string
  /** Index of the file involved, or null. */
  fileIndex: number | null
}

export interface CommandLine {
  program: string
  args: string[]
}

export interface ProxySettings {
  usage: ProxyUsage
  list: string[]
  bypass: string[]
}

export interface Credential {
  target: CredentialTarget
  scheme: CredentialScheme
  username: string
  password: string
}

export interface RemoteValidators {
  etag: string | null
  lastModified: string | null
}

/** Where an upload stands with its server, so that it resumes instead of starting over. */
export interface UploadProgress {
  sessionId: string | null
  /** The farm host the server asked for (BITS-Host-Id). */
  hostId: string | null
  /** BITS-Host-Id-Fallback-Timeout in ms: without progress that long, go back to the origin host. */
  hostIdFallbackMs?: number | null
  /** When the server last acknowledged bytes (ISO-8601). */
  lastAckAt?: string | null
  /** Size and modification time of the local file when the upload began (changes are fatal). */
  fileSize: number
  fileMtimeMs: number
  /** Set by the Ack to the last fragment of an upload-reply job. */
  replyUrl: string | null
  replyBytes: number
}

export interface JobFile {
  remoteUrl: string
  localPath: string
  /** Base name of the temporary file, which lives in the directory of `localPath`. */
  tempName: string
  bytesTotal: number | null
  bytesTransferred: number
  /** Every byte is in the temporary file. */
  transferred: boolean
  /** Renamed to its final name by `complete`: available to the user. */
  completed: boolean
  validators: RemoteValidators
  bytesFromOrigin: number
  bytesFromPeers: Record<string, number>
  /** Upload and upload-reply jobs only. */
  upload?: UploadProgress | null
}

export interface JobRecord {
  schemaVersion: 1
  id: string
  displayName: string
  description: string
  type: JobType
  state: JobState
  priority: Priority
  owner: string
  createdAt: string
  modifiedAt: string
  transferCompletedAt: string | null
  files: JobFile[]
  error: JobErrorInfo | null
  errorCount: number
  minRetryDelay: number
  noProgressTimeout: number
  maxDownloadTime: number
  notifyFlags: number
  notifyCmdLine: CommandLine | null
  proxy: ProxySettings
  credentials: Credential[]
  customHeaders: string[]
  securityFlags: number
  peerCachingFlags: number
  httpMethod: string
  dynamicContent: boolean
  replyFileName: string | null
  parallel: number
  caFile: string | null
  clientCert: string | null
  clientKey: string | null
  /** Engine bookkeeping: when the current run of transient errors began (no-progress timeout). */
  transientErrorSince: string | null
  /** Engine bookkeeping: when a TRANSIENT_ERROR job is due to be queued again. */
  retryAt: string | null
  /** Engine bookkeeping: time spent CONNECTING or TRANSFERRING since the last resume (max download time). */
  activeMs: number
  /** Engine bookkeeping: the notify command line must run (again) for this state. */
  notifyPending: {state: JobState; dueAt: string} | null
}

export const JOB_SCHEMA_VERSION = 1

/** States the job can never leave. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['ACKNOWLEDGED', 'CANCELLED'])
/** States in which the scheduler owns the job. */
export const ACTIVE_STATES: ReadonlySet<JobState> = new Set(['QUEUED', 'CONNECTING', 'TRANSFERRING', 'TRANSIENT_ERROR'])

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state)
}

/** A credential as the view shows it: whether it is set, never what it is. */
export interface CredentialView {
  target: CredentialTarget
  scheme: CredentialScheme
  username: string
  password: 'set'
}

export interface JobFileView {
  remoteUrl: string
  localPath: string
  temporaryName: string
  bytesTotal: number | null
  bytesTransferred: number
  transferred: boolean
  completed: boolean
  bytesFromOrigin: number
  bytesFromPeers: Record<string, number>
}

/** The job as `--json` prints it (docs/json-output.md). */
export interface JobView {
  id: string
  displayName: string
  description: string
  type: JobType
  state: JobState
  priority: Priority
  owner: string
  filesTotal: number
  filesTransferred: number
  bytesTotal: number | null
  bytesTransferred: number
  createdAt: string
  modifiedAt: string
  transferCompletedAt: string | null
  errorCount: number
  error: {code: string; context: ErrorContext; description: string; file: string | null} | null
  files: JobFileView[]
  minRetryDelay: number
  noProgressTimeout: number
  maxDownloadTime: number
  notifyFlags: number
  notifyCmdLine: CommandLine | null
  proxy: ProxySettings
  credentials: CredentialView[]
  customHeaders: string[]
  securityFlags: number
  peerCachingFlags: number
  httpMethod: string
  dynamicContent: boolean
  replyFileName: string | null
  parallel: number
  caFile: string | null
  clientCert: string | null
  clientKey: string | null
  retryAt: string | null
  /** Upload-reply jobs: where the reply goes and how much of it arrived. */
  reply: {file: string; url: string | null; bytesTransferred: number} | null
}

/** Sum of file sizes, or null while any size is unknown (BG_SIZE_UNKNOWN). */
export function jobBytesTotal(job: JobRecord): number | null {
  let total = 0
  for (const file of job.files) {
    if (file.bytesTotal === null) return null
    total += file.bytesTotal
  }
  return total
}

/** Full path of a file's temporary file: beside its destination, so the final rename never crosses disks. */
export function temporaryPath(file: Pick<JobFile, 'localPath' | 'tempName'>): string {
  return path.join(path.dirname(file.localPath), file.tempName)
}

export function toJobView(job: JobRecord): JobView {
  const fileView = (file: JobFile): JobFileView => ({
    remoteUrl: file.remoteUrl,
    localPath: file.localPath,
    temporaryName: temporaryPath(file),
    bytesTotal: file.bytesTotal,
    bytesTransferred: file.bytesTransferred,
    transferred: file.transferred,
    completed: file.completed,
    bytesFromOrigin: file.bytesFromOrigin,
    bytesFromPeers: {...file.bytesFromPeers},
  })
  return {
    id: job.id,
    displayName: job.displayName,
    description: job.description,
    type: job.type,
    state: job.state,
    priority: job.priority,
    owner: job.owner,
    filesTotal: job.files.length,
    filesTransferred: job.files.filter((file) => file.transferred).length,
    bytesTotal: jobBytesTotal(job),
    bytesTransferred: job.files.reduce((sum, file) => sum + file.bytesTransferred, 0),
    createdAt: job.createdAt,
    modifiedAt: job.modifiedAt,
    transferCompletedAt: job.transferCompletedAt,
    errorCount: job.errorCount,
    error: job.error && {
      code: job.error.code,
      context: job.error.context,
      description: job.error.description,
      file: job.error.fileIndex === null ? null : (job.files[job.error.fileIndex]?.localPath ?? null),
    },
    files: job.files.map(fileView),
    minRetryDelay: job.minRetryDelay,
    noProgressTimeout: job.noProgressTimeout,
    maxDownloadTime: job.maxDownloadTime,
    notifyFlags: job.notifyFlags,
    notifyCmdLine: job.notifyCmdLine && {program: job.notifyCmdLine.program, args: [...job.notifyCmdLine.args]},
    proxy: {usage: job.proxy.usage, list: [...job.proxy.list], bypass: [...job.proxy.bypass]},
    credentials: job.credentials.map(({target, scheme, username}) => ({target, scheme, username, password: 'set' as const})),
    customHeaders: [...job.customHeaders],
    securityFlags: job.securityFlags,
    peerCachingFlags: job.peerCachingFlags,
    httpMethod: job.httpMethod,
    dynamicContent: job.dynamicContent,
    replyFileName: job.replyFileName,
    parallel: job.parallel,
    caFile: job.caFile,
    clientCert: job.clientCert,
    clientKey: job.clientKey,
    retryAt: job.retryAt,
    reply:
      job.type === 'upload-reply' && job.files[0]
        ? {
            file: job.replyFileName ?? path.join(path.dirname(job.files[0].localPath), `${path.basename(job.files[0].localPath)}.reply`),
            url: job.files[0].upload?.replyUrl ?? null,
            bytesTransferred: job.files[0].upload?.replyBytes ?? 0,
          }
        : null,
  }
}

