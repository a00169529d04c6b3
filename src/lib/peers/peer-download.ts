import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {request} from 'undici'
import {CacheStore} from '../cache/cache-store.js'
import type {LibContext} from '../context.js'
import {createPeerAgent, searchPeers} from './peer-client.js'

/** The origin's description of a file: peer content must match it exactly. */
export interface OriginFile {
  url: string
  size: number
  fileModifiedAt: string | null
  etag: string | null
}

export interface PeerFetchOptions {
  signal: AbortSignal
  /** A peer that sends nothing for this long is abandoned (the rest comes from the origin). @default 10000 */
  stallMs?: number
  onBytes?(bytes: number): void
}

export interface PeerFetchResult {
  /** Bytes of the file verified on disk from 0 (the origin continues from here). */
  offset: number
  peer: string | null
  /** Bytes that came from the peer and passed their block check. */
  bytes: number
}

/** Peers that sent a block whose hash did not match, until when they are left alone. */
const quarantine = new Map<string, number>()
const QUARANTINE_MS = 10 * 60_000

export function isQuarantined(peer: string, now = Date.now()): boolean {
  return (quarantine.get(peer) ?? 0) > now
}

/**
 * Fills a download's temporary file from a peer: searches the peers for a record (from byte 0,
 * whole or partial) that matches the origin's size, time and ETag, fetches it from the block that
 * holds `offset`, and
 * writes each 1 MiB block only after its SHA-256 matches the record's. A block that does not match
 * quarantines the peer; a stalled or failing peer is dropped. Either way the result says how far
 * the file is good, and the origin fetches the rest.
 */
export async function fetchFromPeers(ctx: LibContext, file: OriginFile, temp: string, offset: number, options: PeerFetchOptions): Promise<PeerFetchResult> {
  const none = {offset, peer: null, bytes: 0}
  const answers = await searchPeers(ctx, {originUrl: file.url, fileSize: file.size, ...(file.etag ? {fileEtag: file.etag} : {}), ...(file.fileModifiedAt ? {fileModificationTime: file.fileModifiedAt} : {})}, {attemptTimeoutMs: 5000, searchTimeoutMs: 10_000}).catch(() => [])
  const candidate = answers
    .filter((answer) => answer.result === 'FOUND' && !isQuarantined(answer.peer))
    .flatMap((answer) => answer.records.map((record) => ({peer: answer.peer, record})))
    // A record from byte 0 (whole, or a prefix the origin completes) that reaches past our offset;
    // the longest one first.
    .filter(({record}) => record.ranges.length === 1 && record.ranges[0]!.offset === 0 && record.ranges[0]!.length > offset && record.ranges[0]!.length <= file.size && record.blockSize && record.blockHashes?.length === Math.ceil(record.ranges[0]!.length / record.blockSize))
    .sort((x, y) => y.record.ranges[0]!.length - x.record.ranges[0]!.length)[0]
  if (!candidate || file.size === 0) return none
  const {peer, record} = candidate
  const blockSize = record.blockSize!
  const available = record.ranges[0]!.length
  const start = Math.floor(offset / blockSize) * blockSize
  const agent = await createPeerAgent(ctx, options.stallMs ?? 10_000)
  // Never truncate: bytes before `offset` are already good and stay if the peer fails.
  const handle = await open(temp, 'r+').catch(() => open(temp, 'w'))
  let verified = start
  try {
    const response = await request(`https://${peer}/BITS-peer-caching/%7B${record.id.replace(/[{}]/g, '')}%7D`, {
      headers: {range: `bytes=${start}-${available - 1}`},
      dispatcher: agent,
      signal: options.signal,
    })
    if (response.statusCode !== 206 && !(response.statusCode === 200 && start === 0)) {
      response.body.resume()
      return {offset, peer: null, bytes: 0}
    }
    let block: Buffer[] = []
    let blockBytes = 0
    const check = async (): Promise<boolean> => {
      const data = Buffer.concat(block, blockBytes)
      const index = verified / blockSize
      if (createHash('sha256').update(data).digest('hex') !== record.blockHashes![index]) {
        quarantine.set(peer, Date.now() + QUARANTINE_MS)
        ctx.logger.warn('peers', `block ${index} from ${peer} does not match its hash: peer quarantined, the origin sends the rest`)
        return false
      }
      await handle.write(data, 0, data.length, verified)
      verified += data.length
      options.onBytes?.(data.length)
      block = []
      blockBytes = 0
      return true
    }
    for await (const chunk of response.body) {
      let buffer = chunk as Buffer
      while (buffer.length > 0) {
        const take = Math.min(blockSize - blockBytes, buffer.length)
        block.push(buffer.subarray(0, take))
        blockBytes += take
        buffer = buffer.subarray(take)
        const blockEnd = Math.min(verified + blockSize, available)
        if (verified + blockBytes === blockEnd && !(await check())) {
          response.body.destroy()
          return finish()
        }
      }
    }
  } catch (err) {
    if (options.signal.aborted) throw err
    ctx.logger.info('peers', `peer ${peer} failed after ${verified} bytes (${(err as Error).message}); the origin sends the rest`)
  } finally {
    await handle.datasync().catch(() => undefined)
    await handle.close()
    await agent.close().catch(() => agent.destroy())
  }
  return finish()

  function finish(): PeerFetchResult {
    return {offset: Math.max(offset, verified), peer, bytes: Math.max(0, verified - offset)}
  }
}

/** The server flag: a finished download joins the cache, so that peers can get it from here. */
export async function addFinishedFileToCache(ctx: LibContext, file: OriginFile, path: string): Promise<void> {
  await new CacheStore(ctx).add({url: file.url, size: file.size, fileModifiedAt: file.fileModifiedAt, etag: file.etag, data: createReadStream(path)})
}
