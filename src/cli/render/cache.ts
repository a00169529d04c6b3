import type {CacheListing, CacheRecordView} from '../../lib/cache/cache-service.js'
import {formatJobId} from '../../lib/jobs/job-ref.js'
import {formatBytes} from './job.js'
import {renderProperties, renderTable} from './table.js'

export function renderCacheList(listing: CacheListing, tty: boolean): string {
  const footer = `${listing.records.length} record(s), ${formatBytes(listing.totalBytes)} of ${formatBytes(listing.maxBytes)} (limit ${listing.limits.maxSize}, expiry ${listing.limits.maxAgeSeconds} s)`
  if (listing.records.length === 0) return `No cache records.\n${footer}`
  const rows = listing.records.map((record) => [formatJobId(record.id), record.url, formatBytes(record.bytes), record.bytes === record.size ? 'whole' : 'partial', record.lastAccessAt])
  return `${renderTable(['ID', 'URL', 'BYTES', 'CONTENT', 'LAST ACCESS'], rows, tty)}\n${footer}`
}

export function renderCacheRecord(record: CacheRecordView, tty: boolean): string {
  return renderProperties(
    [
      ['ID', formatJobId(record.id)],
      ['URL', record.url],
      ['File size', `${record.size} bytes`],
      ['Modified', record.fileModifiedAt ?? 'UNKNOWN'],
      ['ETag', record.etag ?? 'none'],
      ['Ranges', record.ranges.map((range) => `${range.start}+${range.length}`).join(', ')],
      ['Cached bytes', `${record.bytes} in ${record.blocks} block(s) of ${formatBytes(record.blockSize)}`],
      ['Created', record.createdAt],
      ['Last access', record.lastAccessAt],
    ],
    tty,
  )
}
