import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {request} from 'undici'
import {CacheStore} from '../cache/cache-store.js'
import type {LibContext} from '../context.js'
import type {WireRecord} from './bpcr-messages.js'
import {createPeerAgent, searchPeers, type PeerAnswer} from './peer-client.js'

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
  /** Bytes each peer sent that passed their block check. */
  bytesByPeer: Record<string, number>
}

/** Peers that sent a block whose hash did not match, until when they are left alone. */
const quarantine = new Map<string, number>()
const QUARANTINE_MS = 10 * 60_000

export function isQuarantined(peer: string, now = Date.now()): boolean {
  return (quarantine.get(peer) ?? 0) > now
}

/** A piece of the file one peer holds: a record's single range, starting on a block boundary. */
interface Segment {
  peer: string
  record: WireRecord
  /** File offset where the record's data starts. */
  from: number
  /** File offset where it ends (exclusive). */
  to: number
  blockSize: number
}

function segmentsOf(answers: PeerAnswer[], size: number): Segment[] {
  return answers
    .filter((answer) => answer.result === 'FOUND' && !isQuarantined(answer.peer))
    .flatMap((answer) =>
      answer.records.flatMap((record): Segment[] => {
        const range = record.ranges.length === 1 ? record.ranges[0]! : undefined
        const blockSize = record.blockSize
        if (!range || !blockSize || range.offset % blockSize !== 0 || range.offset + range.length > size || record.blockHashes?.length !== Math.ceil(range.length / blockSize)) return []
        return [{peer: answer.peer, record, from: range.offset, to: range.offset + range.length, blockSize}]
      }),
    )
}

/**
 * Fills a download's temporary file from peers: searches them for records that match the
 * origin's size, time and ETag, then walks the file from the block that holds `offset`, taking
 * each stretch from the peer whose record reaches furthest (several peers when their records are
 * partial), and writes each block only after its SHA-256 matches the record's. A block that does
 * not match quarantines its peer, a peer that fails or stalls is dropped, and another peer covering
 * the same place is tried; where no peer covers the file, the origin takes over.
 */
export async function fetchFromPeers(ctx: LibContext, file: OriginFile, temp: string, offset: number, options: PeerFetchOptions): Promise<PeerFetchResult> {
  const bytesByPeer: Record<string, number> = {}
  if (file.size === 0) return {offset, bytesByPeer}
  const answers = await searchPeers(ctx, {originUrl: file.url, fileSize: file.size, ...(file.etag ? {fileEtag: file.etag} : {}), ...(file.fileModifiedAt ? {fileModificationTime: file.fileModifiedAt} : {})}, {attemptTimeoutMs: 5000, searchTimeoutMs: 10_000}).catch(() => [])
  let segments = segmentsOf(answers, file.size)
  if (segments.length === 0) return {offset, bytesByPeer}
  const agent = await createPeerAgent(ctx, options.stallMs ?? 10_000)
  // Never truncate: bytes before `offset` are already good and stay if the peers fail.
  const handle = await open(temp, 'r+').catch(() => open(temp, 'w'))
  let verified = offset
  try {
    for (;;) {
      const position = verified
      const candidates = segments.filter((segment) => segment.from <= position && position < segment.to).sort((a, b) => b.to - a.to)
      const segment = candidates[0]
      if (!segment) break
      const start = Math.floor((position - segment.from) / segment.blockSize) * segment.blockSize + segment.from
      const reached = await fetchSegment(ctx, segment, start, handle, agent, options, (bytes, at) => {
        bytesByPeer[segment.peer] = (bytesByPeer[segment.peer] ?? 0) + Math.max(0, at + bytes - Math.max(at, verified))
        verified = Math.max(verified, at + bytes)
      })
      if (reached < segment.to || isQuarantined(segment.peer)) segments = segments.filter((other) => other.peer !== segment.peer)
      if (verified >= file.size) break
    }
  } catch (err) {
    if (options.signal.aborted) throw err
  } finally {
    await handle.datasync().catch(() => undefined)
    await handle.close()
    await agent.close().catch(() => agent.destroy())
  }
  return {offset: verified, bytesByPeer}
}

/** Fetches one peer's segment from `start`; returns the file offset verified up to. */
async function fetchSegment(ctx: LibContext, segment: Segment, start: number, handle: Awaited<ReturnType<typeof open>>, agent: Awaited<ReturnType<typeof createPeerAgent>>, options: PeerFetchOptions, onBlock: (bytes: number, at: number) => void): Promise<number> {
  const {peer, record, blockSize} = segment
  let at = start
  try {
    const response = await request(`https://${peer}/BITS-peer-caching/%7B${record.id.replace(/[{}]/g, '')}%7D`, {
      headers: {range: `bytes=${start - segment.from}-${segment.to - segment.from - 1}`},
      dispatcher: agent,
      signal: options.signal,
    })
    if (response.statusCode !== 206 && !(response.statusCode === 200 && start === segment.from)) {
      response.body.resume()
      return at
    }
    let block: Buffer[] = []
    let blockBytes = 0
    for await (const chunk of response.body) {
      let buffer = chunk as Buffer
      while (buffer.length > 0) {
        const blockEnd = Math.min(at + blockSize, segment.to)
        const take = Math.min(blockEnd - at - blockBytes, buffer.length)
        block.push(buffer.subarray(0, take))
        blockBytes += take
        buffer = buffer.subarray(take)
        if (at + blockBytes < blockEnd) continue
        const data = Buffer.concat(block, blockBytes)
        const index = (at - segment.from) / blockSize
        if (createHash('sha256').update(data).digest('hex') !== record.blockHashes![index]) {
          quarantine.set(peer, Date.now() + QUARANTINE_MS)
          ctx.logger.warn('peers', `block ${index} of ${record.id} from ${peer} does not match its hash: peer quarantined`)
          response.body.destroy()
          return at
        }
        await handle.write(data, 0, data.length, at)
        options.onBytes?.(data.length)
        onBlock(data.length, at)
        at += data.length
        block = []
        blockBytes = 0
      }
    }
  } catch (err) {
    if (options.signal.aborted) throw err
    ctx.logger.info('peers', `peer ${peer} failed at byte ${at} (${(err as Error).message}); trying elsewhere`)
  }
  return at
}

/** The server flag: a finished download joins the cache, so that peers can get it from here. */
export async function addFinishedFileToCache(ctx: LibContext, file: OriginFile, path: string): Promise<void> {
  await new CacheStore(ctx).add({url: file.url, size: file.size, fileModifiedAt: file.fileModifiedAt, etag: file.etag, data: createReadStream(path)})
}
