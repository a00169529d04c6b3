import {createHash, randomUUID} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, open, readdir, readFile, rename, rm, statfs} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode} from '../errors.js'
import {formatJobId, parseGuid} from '../jobs/job-ref.js'
import {writeFileAtomic} from '../state/atomic-write.js'
import {withLock} from '../state/lock.js'
import {StateLayout} from '../state/state-dir.js'

/** Every record's data is hashed in blocks of this size, so a peer's bytes can be checked block by block. */
export const CACHE_BLOCK_SIZE = 1024 * 1024

/** A byte range of the origin file that a record holds; a record's data is its ranges back to back. */
export interface CacheRange {
  start: number
  length: number
}

/** A cache record ([MS-BPCR] content record): metadata of cached content of one origin URL. */
export interface CacheRecord {
  schemaVersion: 1
  /** GUID, lower case without braces. */
  id: string
  url: string
  /** The origin file's modification time (ISO-8601), as its Last-Modified said. */
  fileModifiedAt: string | null
  /** Size of the origin file. */
  size: number
  etag: string | null
  ranges: CacheRange[]
  blockSize: number
  /** SHA-256 (hex) of each block of the record's data. */
  blockHashes: string[]
  createdAt: string
  modifiedAt: string
  lastAccessAt: string
  /** FAT-style attributes of the cached file (0x20 archive). */
  attributes: number
}

/** Cache limits: the size cap (percent of the disk or bytes) and the age since last access. */
export interface CacheLimits {
  /** `"1%"` of the disk holding the state directory, or a byte count. */
  maxSize: string
  maxAgeSeconds: number
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = {maxSize: '1%', maxAgeSeconds: 90 * 86_400}

export interface NewRecord {
  url: string
  size: number
  fileModifiedAt: string | null
  etag: string | null
  /** Defaults to the whole file. */
  ranges?: CacheRange[]
  data: AsyncIterable<Uint8Array> | Readable
}

/** What a peer search matches on ([MS-BPCR] §3.2.5.3): the URL, and the other fields when given. */
export interface RecordQuery {
  url: string
  fileModifiedAt?: string | null
  size?: number
  etag?: string | null
}

function parseSize(text: string): {percent: number} | {bytes: number} {
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim())
  if (percent) return {percent: Number(percent[1])}
  const bytes = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$/i.exec(text.trim())
  if (!bytes) throw new BitsError('USAGE_INVALID_ARG', `Cache size "${text}" is not a percentage or a size`, {hint: 'e.g. 5% or 2GiB'})
  const units: Record<string, number> = {b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12}
  return {bytes: Math.floor(Number(bytes[1]) * units[(bytes[2] ?? 'b').toLowerCase()]!)}
}

/** Checks a `--set` value of `cache limit`. */
export function checkCacheSize(text: string): string {
  const parsed = parseSize(text)
  if ('percent' in parsed && (parsed.percent <= 0 || parsed.percent > 100)) throw new BitsError('USAGE_INVALID_ARG', `Cache size ${text} must be between 0 and 100%`, {hint: 'e.g. 5%'})
  return text.trim()
}

/**
 * The peer cache of a state directory: one JSON record and one data file per cached content,
 * under `cache/records/` and `cache/data/`. Record ids reach the file system only as parsed GUIDs.
 */
export class CacheStore {
  readonly #ctx: LibContext
  readonly #root: string

  constructor(ctx: LibContext) {
    this.#ctx = ctx
    this.#root = path.join(ctx.stateDir, StateLayout.cache)
  }

  #recordFile(id: string): string {
    return path.join(this.#root, 'records', `${id}.json`)
  }

  dataFile(id: string): string {
    return path.join(this.#root, 'data', id)
  }

  async limits(): Promise<CacheLimits> {
    try {
      return {...DEFAULT_CACHE_LIMITS, ...(JSON.parse(await readFile(path.join(this.#root, 'limits.json'), 'utf8')) as Partial<CacheLimits>)}
    } catch {
      return {...DEFAULT_CACHE_LIMITS}
    }
  }

  async setLimits(change: Partial<CacheLimits>): Promise<CacheLimits> {
    const next = {...(await this.limits()), ...change}
    checkCacheSize(next.maxSize)
    if (!Number.isInteger(next.maxAgeSeconds) || next.maxAgeSeconds < 1) throw new BitsError('USAGE_INVALID_ARG', `Cache expiration must be a whole number of seconds, got ${next.maxAgeSeconds}`, {hint: 'e.g. 7776000 (90 days)'})
    await mkdir(this.#root, {recursive: true, mode: 0o700})
    await writeFileAtomic(path.join(this.#root, 'limits.json'), JSON.stringify(next, null, 2))
    await this.enforceLimits()
    return next
  }

  /** The size cap in bytes: a percentage applies to the disk that holds the state directory. */
  async maxBytes(): Promise<number> {
    const parsed = parseSize((await this.limits()).maxSize)
    if ('bytes' in parsed) return parsed.bytes
    await mkdir(this.#root, {recursive: true, mode: 0o700})
    const disk = await statfs(this.#root)
    return Math.floor((disk.blocks * disk.bsize * parsed.percent) / 100)
  }

  async list(): Promise<CacheRecord[]> {
    const names = await readdir(path.join(this.#root, 'records')).catch(() => [] as string[])
    const records: CacheRecord[] = []
    for (const name of names) {
      const id = name.endsWith('.json') ? parseGuid(name.slice(0, -5)) : undefined
      if (!id) continue
      try {
        records.push(JSON.parse(await readFile(this.#recordFile(id), 'utf8')) as CacheRecord)
      } catch {
        this.#ctx.logger.warn('cache', `skipping unreadable cache record ${name}`)
      }
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  }

  async get(ref: string): Promise<CacheRecord> {
    const id = parseGuid(ref)
    const record = id ? await readFile(this.#recordFile(id), 'utf8').then((text) => JSON.parse(text) as CacheRecord, () => undefined) : undefined
    if (!record) throw new BitsError('CACHE_MISS', `No cache record ${id ? formatJobId(id) : ref}`, {hint: 'List the records with bits cache list'})
    return record
  }

  /** Records whose origin URL matches and whose size, modification time and ETag match when given. */
  async find(query: RecordQuery): Promise<CacheRecord[]> {
    return (await this.list()).filter(
      (record) =>
        record.url === query.url &&
        (query.size === undefined || record.size === query.size) &&
        (query.fileModifiedAt == null || record.fileModifiedAt === null || Date.parse(record.fileModifiedAt) === Date.parse(query.fileModifiedAt)) &&
        (query.etag == null || record.etag === query.etag),
    )
  }

  /**
   * Stores content: the data streams into a temporary file while each block is hashed, then the
   * data and its record appear atomically. Older records of the same URL and validators go.
   */
  async add(entry: NewRecord): Promise<CacheRecord> {
    const ranges = entry.ranges ?? [{start: 0, length: entry.size}]
    const expected = ranges.reduce((sum, range) => sum + range.length, 0)
    await mkdir(path.join(this.#root, 'data'), {recursive: true, mode: 0o700})
    await mkdir(path.join(this.#root, 'records'), {recursive: true, mode: 0o700})
    const id = randomUUID()
    const temp = `${this.dataFile(id)}.partial`
    const blockHashes: string[] = []
    let block = createHash('sha256')
    let inBlock = 0
    let written = 0
    const handle = await open(temp, 'w', 0o600)
    try {
      for await (const chunk of entry.data) {
        let buffer = Buffer.from(chunk)
        written += buffer.length
        await handle.write(buffer)
        while (buffer.length > 0) {
          const take = Math.min(CACHE_BLOCK_SIZE - inBlock, buffer.length)
          block.update(buffer.subarray(0, take))
          inBlock += take
          buffer = buffer.subarray(take)
          if (inBlock === CACHE_BLOCK_SIZE) {
            blockHashes.push(block.digest('hex'))
            block = createHash('sha256')
            inBlock = 0
          }
        }
      }
      if (inBlock > 0) blockHashes.push(block.digest('hex'))
      await handle.datasync()
    } catch (err) {
      await handle.close().catch(() => undefined)
      await rm(temp, {force: true})
      throw new BitsError('IO_ERROR', `Cannot store cache data for ${entry.url}: ${errnoCode(err) ?? String(err)}`, {cause: err})
    }
    await handle.close()
    if (written !== expected) {
      await rm(temp, {force: true})
      throw new BitsError('CACHE_CORRUPT', `Cache data for ${entry.url} has ${written} bytes; its ranges say ${expected}`, {hint: 'Fetch the content again'})
    }
    const now = this.#ctx.now().toISOString()
    const record: CacheRecord = {
      schemaVersion: 1,
      id,
      url: entry.url,
      fileModifiedAt: entry.fileModifiedAt,
      size: entry.size,
      etag: entry.etag,
      ranges,
      blockSize: CACHE_BLOCK_SIZE,
      blockHashes,
      createdAt: now,
      modifiedAt: now,
      lastAccessAt: now,
      attributes: 0x20,
    }
    await rename(temp, this.dataFile(id))
    await writeFileAtomic(this.#recordFile(id), JSON.stringify(record, null, 2))
    for (const older of await this.find({url: entry.url, size: entry.size, etag: entry.etag, fileModifiedAt: entry.fileModifiedAt})) {
      if (older.id !== id) await this.delete(older.id)
    }
    await this.enforceLimits()
    return record
  }

  /** Reads bytes [start, end] of a record's data (its ranges back to back) and notes the access. */
  async open(id: string, start: number, end: number): Promise<Readable> {
    const record = await this.get(id)
    await this.touch(record)
    return createReadStream(this.dataFile(record.id), {start, end})
  }

  /** Notes an access; at most once a minute per record, since a peer may read one in many ranges. */
  async touch(record: CacheRecord): Promise<void> {
    if (this.#ctx.now().getTime() - Date.parse(record.lastAccessAt) < 60_000) return
    record.lastAccessAt = this.#ctx.now().toISOString()
    await withLock(`${this.#recordFile(record.id)}.lock`, async () => {
      await writeFileAtomic(this.#recordFile(record.id), JSON.stringify(record, null, 2), {durable: false})
    }).catch(() => undefined)
  }

  async delete(ref: string): Promise<CacheRecord> {
    const record = await this.get(ref)
    await rm(this.#recordFile(record.id), {force: true})
    await rm(this.dataFile(record.id), {force: true})
    return record
  }

  async deleteUrl(url: string): Promise<CacheRecord[]> {
    const records = (await this.list()).filter((record) => record.url === url)
    for (const record of records) await this.delete(record.id)
    return records
  }

  async clear(): Promise<CacheRecord[]> {
    const records = await this.list()
    for (const record of records) await this.delete(record.id)
    return records
  }

  /** Drops records idle past the maximum age, then the least recently used until under the size cap. */
  async enforceLimits(): Promise<{expired: string[]; evicted: string[]}> {
    const limits = await this.limits()
    const now = this.#ctx.now().getTime()
    const expired: string[] = []
    const evicted: string[] = []
    let records = await this.list()
    for (const record of records) {
      if (now - Date.parse(record.lastAccessAt) > limits.maxAgeSeconds * 1000) {
        await this.delete(record.id)
        expired.push(record.id)
      }
    }
    records = records.filter((record) => !expired.includes(record.id)).sort((a, b) => a.lastAccessAt.localeCompare(b.lastAccessAt))
    const cap = await this.maxBytes()
    let total = records.reduce((sum, record) => sum + dataLength(record), 0)
    for (const record of records) {
      if (total <= cap) break
      await this.delete(record.id)
      evicted.push(record.id)
      total -= dataLength(record)
    }
    return {expired, evicted}
  }
}

/** Bytes of data a record holds. */
export function dataLength(record: Pick<CacheRecord, 'ranges'>): number {
  return record.ranges.reduce((sum, range) => sum + range.length, 0)
}
