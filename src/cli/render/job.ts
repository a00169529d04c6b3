import {formatCommandLine} from '../../lib/jobs/command-line.js'
import type {JobView} from '../../lib/jobs/job.js'
import {formatJobId} from '../../lib/jobs/job-ref.js'
import {renderProperties, renderTable} from './table.js'

/** `1.5 MiB`; exact bytes are in --json. */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'UNKNOWN'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

/** The state as users read it; TRANSFERRED says that `complete` is what is left to do. */
export function stateLabel(job: Pick<JobView, 'state'>): string {
  return job.state === 'TRANSFERRED' ? 'TRANSFERRED (run complete)' : job.state
}

function progress(job: JobView): string {
  return `${formatBytes(job.bytesTransferred)} / ${formatBytes(job.bytesTotal)}`
}

export function renderJobList(jobs: JobView[], tty: boolean, verbose = false): string {
  if (jobs.length === 0) return 'No jobs.'
  const head = ['ID', 'NAME', 'TYPE', 'STATE', 'PRIORITY', 'FILES', 'BYTES']
  const rows = jobs.map((job) => [formatJobId(job.id), job.displayName, job.type, stateLabel(job), job.priority, `${job.filesTransferred} / ${job.filesTotal}`, progress(job)])
  const table = renderTable(head, rows, tty)
  if (!verbose) return `${table}\nListed ${jobs.length} job(s).`
  return `${jobs.map((job) => renderJobInfo(job, tty, true)).join('\n\n')}\nListed ${jobs.length} job(s).`
}

export function renderJobInfo(job: JobView, tty: boolean, verbose = false): string {
  const pairs: [string, string | number][] = [
    ['GUID', formatJobId(job.id)],
    ['Display name', job.displayName],
    ['Type', job.type],
    ['State', stateLabel(job)],
    ['Owner', job.owner],
    ['Priority', job.priority],
    ['Files', `${job.filesTransferred} / ${job.filesTotal}`],
    ['Bytes', progress(job)],
    ['Created', job.createdAt],
    ['Modified', job.modifiedAt],
    ['Completed', job.transferCompletedAt ?? 'UNKNOWN'],
    ['Error count', job.errorCount],
  ]
  if (job.error) {
    pairs.push(['Error code', job.error.code], ['Error context', job.error.context], ['Error description', job.error.description])
    if (job.error.file) pairs.push(['Error file', job.error.file])
  }
  if (job.retryAt) pairs.push(['Next retry', job.retryAt])
  if (verbose) {
    pairs.push(
      ['Description', job.description || '(none)'],
      ['Min retry delay', `${job.minRetryDelay} s`],
      ['No progress timeout', `${job.noProgressTimeout} s`],
      ['Max download time', `${job.maxDownloadTime} s`],
      ['Notify flags', job.notifyFlags],
      ['Notify command line', job.notifyCmdLine ? formatCommandLine(job.notifyCmdLine) : 'NULL'],
      ['Proxy usage', job.proxy.usage],
      ['Proxy list', job.proxy.list.join(',') || 'NULL'],
      ['Proxy bypass', job.proxy.bypass.join(';') || 'NULL'],
      ['Credentials', job.credentials.map((cred) => `${cred.target}:${cred.scheme}:${cred.username} (password set)`).join(', ') || 'none'],
      ['Custom headers', job.customHeaders.join(' | ') || 'none'],
      ['Security flags', `0x${job.securityFlags.toString(16).padStart(4, '0')}`],
      ['Peer caching flags', job.peerCachingFlags],
      ['HTTP method', job.httpMethod],
      ['Dynamic content', job.dynamicContent ? 'yes' : 'no'],
      ['Parallel files', job.parallel],
    )
    if (job.reply) pairs.push(['Reply file', job.reply.file], ['Reply', job.reply.url ? `${formatBytes(job.reply.bytesTransferred)} from ${job.reply.url}` : 'not yet'])
  }
  const head = renderProperties(pairs, tty)
  if (!verbose || job.files.length === 0) return head
  return `${head}\n${renderFileList(job, tty, true)}`
}

export function renderFileList(job: JobView, tty: boolean, verbose = false): string {
  if (job.files.length === 0) return 'No files.'
  const head = ['#', 'BYTES', 'STATE', 'REMOTE', 'LOCAL']
  if (verbose) head.push('FROM ORIGIN', 'FROM PEERS')
  const rows = job.files.map((file, index) => {
    const state = file.completed ? 'completed' : file.transferred ? 'transferred' : file.bytesTransferred > 0 ? 'partial' : 'pending'
    const row: (string | number)[] = [index, `${formatBytes(file.bytesTransferred)} / ${formatBytes(file.bytesTotal)}`, state, file.remoteUrl, file.localPath]
    if (verbose) {
      const peers = Object.entries(file.bytesFromPeers).map(([peer, bytes]) => `${peer} ${formatBytes(bytes)}`).join(', ')
      row.push(formatBytes(file.bytesFromOrigin), peers || '-')
    }
    return row
  })
  return renderTable(head, rows, tty)
}
