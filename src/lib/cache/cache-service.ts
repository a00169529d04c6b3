import type {LibContext} from '../context.js'
import {BitsError} from '../errors.js'
import {checkRemoteUrl} from '../jobs/job-service.js'
import {headerValue, HttpSession} from '../transfer/http-session.js'
import {httpStatusError} from '../transfer/transfer-error.js'
import {CacheStore, checkCacheSize, dataLength, type CacheLimits, type CacheRecord} from './cache-store.js'

/** A record as `cache list/info --json` print it (block hashes only with verbose). */
export interface CacheRecordView extends Omit<CacheRecord, 'blockHashes' | 'schemaVersion'> {
  bytes: number
  blocks: number
  blockHashes?: string[]
}

export function toRecordView(record: CacheRecord, verbose = false): CacheRecordView {
  const {blockHashes, schemaVersion: _version, ...rest} = record
  return {...rest, bytes: dataLength(record), blocks: blockHashes.length, ...(verbose ? {blockHashes} : {})}
}

export interface CacheListing {
  records: CacheRecordView[]
  totalBytes: number
  maxBytes: number
  limits: CacheLimits
}

export async function listCache(ctx: LibContext, verbose = false): Promise<CacheListing> {
  const store = new CacheStore(ctx)
  const records = await store.list()
  return {
    records: records.map((record) => toRecordView(record, verbose)),
    totalBytes: records.reduce((sum, record) => sum + dataLength(record), 0),
    maxBytes: await store.maxBytes(),
    limits: await store.limits(),
  }
}

export async function cacheRecordInfo(ctx: LibContext, id: string): Promise<CacheRecordView> {
  return toRecordView(await new CacheStore(ctx).get(id), true)
}

export async function deleteCacheRecord(ctx: LibContext, id: string): Promise<CacheRecordView> {
  return toRecordView(await new CacheStore(ctx).delete(id))
}

export async function deleteCacheUrl(ctx: LibContext, url: string): Promise<CacheRecordView[]> {
  const deleted = await new CacheStore(ctx).deleteUrl(url)
  if (deleted.length === 0) throw new BitsError('CACHE_MISS', `No cache record for ${url}`, {hint: 'List the records with bits cache list'})
  return deleted.map((record) => toRecordView(record))
}

export async function clearCache(ctx: LibContext): Promise<{deleted: number}> {
  return {deleted: (await new CacheStore(ctx).clear()).length}
}

/** `cache limit [--set]`: shows or changes the size cap; lowering it evicts at once. */
export async function cacheLimit(ctx: LibContext, set?: string): Promise<{maxSize: string; maxBytes: number}> {
  const store = new CacheStore(ctx)
  if (set !== undefined) await store.setLimits({maxSize: checkCacheSize(set)})
  return {maxSize: (await store.limits()).maxSize, maxBytes: await store.maxBytes()}
}

/** `cache expiration [--set]`: shows or changes the maximum age since last access. */
export async function cacheExpiration(ctx: LibContext, set?: number): Promise<{maxAgeSeconds: number}> {
  const store = new CacheStore(ctx)
  if (set !== undefined) await store.setLimits({maxAgeSeconds: set})
  return {maxAgeSeconds: (await store.limits()).maxAgeSeconds}
}

/** `cache add URL`: downloads the whole file from its origin into the cache (preheating). */
export async function addUrlToCache(ctx: LibContext, url: string): Promise<CacheRecordView> {
  const checked = checkRemoteUrl(url)
  const session = new HttpSession({proxy: {usage: 'PRECONFIG', list: [], bypass: []}, credentials: [], customHeaders: [], securityFlags: 0, httpMethod: 'GET', caFile: null, clientCert: null, clientKey: null}, {env: ctx.env, logger: ctx.logger})
  try {
    const response = await session.request({url: checked})
    if (response.status !== 200) {
      response.body.resume()
      throw httpStatusError(response.status, checked)
    }
    const length = headerValue(response.headers, 'content-length')
    if (!length || !/^\d+$/.test(length)) {
      response.body.resume()
      throw new BitsError('TRANSFER_MISSING_SIZE', `${checked} has no Content-Length; only files of known size are cached`, {hint: 'Cache files served with a size'})
    }
    const etag = headerValue(response.headers, 'etag')
    const lastModified = headerValue(response.headers, 'last-modified')
    const record = await new CacheStore(ctx).add({
      url: checked,
      size: Number(length),
      fileModifiedAt: lastModified ? new Date(lastModified).toISOString() : null,
      etag: etag && !etag.startsWith('W/') ? etag : null,
      data: response.body,
    })
    return toRecordView(record)
  } finally {
    await session.close()
  }
}
