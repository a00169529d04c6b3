import {randomBytes, X509Certificate} from 'node:crypto'
import {once} from 'node:events'
import {closeSync, createReadStream, openSync, readSync} from 'node:fs'
import {createServer, type Server} from 'node:https'
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'
import type {TLSSocket} from 'node:tls'
import {CacheStore, dataLength, type CacheRecord} from '../cache/cache-store.js'
import type {LibContext} from '../context.js'
import {BitsError} from '../errors.js'
import {formatJobId, parseGuid} from '../jobs/job-ref.js'
import {readBoundedBody} from './bounded-body.js'
import {buildSearchResponse, MalformedMessage, parseSearchRequest, type SearchStatus, type WireRecord} from './bpcr-messages.js'
import {ensureIdentity, isTrusted} from './peer-identity.js'
import {PAIR_PATH, PairingResponder} from './peer-pairing.js'
import {PEER_PORT, peerName} from './peer-table.js'
import {RateLimit} from './rate-limit.js'

export interface PeerServerOptions {
  host?: string
  /** @default 2178 */
  port?: number
  /** Searches handled at once; more get 503. @default 16 */
  maxConcurrentSearches?: number
  maxConnections?: number
  /** Cap on the bytes per second all downloads from this server send together. */
  maxRateBytesPerSecond?: number
}

/** Largest DISCOVERY-REQUEST body accepted (the spec asks for at least 16 KB). */
const MAX_SEARCH_BODY = 1024 * 1024
const PATH = '/BITS-peer-caching'
/** Ranges up to this size are read in one go rather than streamed. */
const SMALL_RANGE = 1024 * 1024
/** Data files kept open at once, and how long an unused one stays open. */
const MAX_OPEN_DATA_FILES = 64
const DATA_FILE_IDLE_MS = 5000

/** Windows FILETIME (100 ns since 1601) in hex, for BITS_BASIC_INFO. */
function fileTime(iso: string | null): string {
  const ms = iso ? Date.parse(iso) : 0
  return '0x' + ((BigInt(Math.max(0, ms)) + 11_644_473_600_000n) * 10_000n).toString(16).toUpperCase()
}

function toWireRecord(record: CacheRecord): WireRecord {
  const id = formatJobId(record.id)
  return {
    id,
    creationTime: record.createdAt,
    modificationTime: record.modifiedAt,
    lastAccessTime: record.lastAccessAt,
    originUrl: record.url,
    localUrl: `BITS-peer-caching/${id}`,
    fileModificationTime: record.fileModifiedAt ?? new Date(0).toISOString(),
    fileSize: record.size,
    ...(record.etag ? {fileEtag: record.etag} : {}),
    ranges: record.ranges.map((range) => ({offset: range.start, length: range.length})),
    blockSize: record.blockSize,
    blockHashes: record.blockHashes,
  }
}

/** Byte ranges of a DOWNLOAD-REQUEST: `Range: bytes=a-b,c-` or the `Content-Range` form the spec mentions. */
export function parseRecordRanges(header: string | undefined, size: number): {start: number; end: number}[] | 'invalid' | undefined {
  if (!header) return undefined
  const spec = header.trim().replace(/^bytes[=\s]\s*/i, '')
  const ranges: {start: number; end: number}[] = []
  for (const part of spec.split(',')) {
    const match = /^\s*(\d*)\s*-\s*(\d*)\s*(?:\/\s*(?:\d+|\*))?\s*$/.exec(part)
    if (!match || (match[1] === '' && match[2] === '')) return 'invalid'
    let start: number
    let end: number
    if (match[1] === '') {
      start = Math.max(0, size - Number(match[2]))
      end = size - 1
    } else {
      start = Number(match[1])
      end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1)
    }
    if (start > end || start >= size) return 'invalid'
    ranges.push({start, end})
  }
  return ranges
}

/**
 * The [MS-BPCR] server: HTTPS with a client certificate required, DISCOVERY-REQUEST answered from
 * the cache, DOWNLOAD- and HEAD-REQUESTs for record data with single and multiple ranges. Record
 * ids reach files only through the cache index. A client whose certificate is valid but not
 * trusted gets CertificateNotFound to a search and 400 to a download (§3.2.5), not a reset.
 */
export class PeerServer {
  readonly #ctx: LibContext
  readonly #cache: CacheStore
  readonly #options: PeerServerOptions
  readonly #sockets = new Set<Socket>()
  #server: Server | undefined
  #searches = 0
  readonly #trustBySocket = new WeakMap<object, boolean>()
  #expiry: NodeJS.Timeout | undefined
  readonly #records = new Map<string, {record: CacheRecord; at: number}>()
  /** Open data files by record id, so that a burst of ranges opens each file once. */
  readonly #dataFiles = new Map<string, {fd: number; usedAt: number}>()
  #dataFileSweep: NodeJS.Timeout | undefined
  readonly #rate: RateLimit | undefined
  readonly #pairing: PairingResponder

  constructor(ctx: LibContext, options: PeerServerOptions = {}) {
    this.#ctx = ctx
    this.#pairing = new PairingResponder(ctx)
    this.#cache = new CacheStore(ctx)
    this.#options = options
    this.#rate = options.maxRateBytesPerSecond ? new RateLimit(options.maxRateBytesPerSecond) : undefined
  }

  /** Record data on its way out, with backpressure, through the rate cap when there is one. */
  async #send(record: CacheRecord, start: number, end: number, res: ServerResponse): Promise<void> {
    await this.#cache.touch(record)
    const length = end - start + 1
    if (!this.#rate && length <= SMALL_RANGE) {
      // The common peer request (a block or less): one positioned read from the page cache, on
      // this thread as nginx's sendfile is; a promise round trip through the thread pool for the
      // open, the read and the close cost more than the read itself.
      const buffer = Buffer.allocUnsafe(length)
      const bytesRead = readSync(this.#dataFile(record.id), buffer, 0, length, start)
      res.write(buffer.subarray(0, bytesRead))
      return
    }
    const data = createReadStream(this.#cache.dataFile(record.id), {start, end})
    const source = this.#rate ? data.pipe(this.#rate.throttle()) : data
    for await (const chunk of source) {
      if (res.destroyed) break
      if (!res.write(chunk)) await once(res, 'drain')
    }
  }

  async listen(): Promise<{host: string; port: number}> {
    const identity = await ensureIdentity(this.#ctx)
    const server = createServer({cert: identity.certPem, key: identity.keyPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2'}, (req, res) => void this.#handle(req, res))
    server.maxConnections = this.#options.maxConnections ?? 256
    server.on('secureConnection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
    const listenOn = (host: string) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.#options.port ?? PEER_PORT, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    const host = this.#options.host ?? '127.0.0.1'
    try {
      // Every interface: '::' takes both families where the host has IPv6, else 0.0.0.0 does.
      await listenOn(host).catch((err: NodeJS.ErrnoException) => (host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL') ? listenOn('0.0.0.0') : Promise.reject(err)))
    } catch (err) {
      throw new BitsError('SERVER_LISTEN', `Cannot listen on ${peerName({host, port: this.#options.port ?? PEER_PORT})}: ${(err as Error).message}`, {cause: err, hint: 'Choose another --port or --host'})
    }
    this.#server = server
    // Records expire and the size cap holds while the server runs ([MS-BPCR] §3.2.6.1).
    this.#expiry = setInterval(() => void this.#cache.enforceLimits().catch((err: unknown) => this.#ctx.logger.warn('cache', `expiry failed: ${String(err)}`)), 60_000)
    this.#expiry.unref()
    const address = server.address() as AddressInfo
    this.#ctx.logger.info('peers', `serving the peer cache on https://${peerName({host: address.address, port: address.port})}${PATH}`)
    return {host: address.address, port: address.port}
  }

  /**
   * The data file of a record, opened once. A record's data never changes (new content is a new
   * record), so a descriptor stays right until the record goes; idle ones close after a few
   * seconds, which also lets the disk space of deleted records go.
   */
  #dataFile(id: string): number {
    const now = Date.now()
    const open = this.#dataFiles.get(id)
    if (open) {
      open.usedAt = now
      return open.fd
    }
    const fd = openSync(this.#cache.dataFile(id), 'r')
    if (this.#dataFiles.size >= MAX_OPEN_DATA_FILES) this.#closeDataFiles(() => true, 1)
    this.#dataFiles.set(id, {fd, usedAt: now})
    this.#dataFileSweep ??= setInterval(() => this.#closeDataFiles(([, entry]) => Date.now() - entry.usedAt > DATA_FILE_IDLE_MS), DATA_FILE_IDLE_MS).unref()
    return fd
  }

  /** Closes the open data files that `which` picks (the least recently used first), at most `limit`. */
  #closeDataFiles(which: (entry: [string, {fd: number; usedAt: number}]) => boolean, limit = Infinity): void {
    const picked = [...this.#dataFiles].filter(which).sort((a, b) => a[1].usedAt - b[1].usedAt).slice(0, limit)
    for (const [id, {fd}] of picked) {
      this.#dataFiles.delete(id)
      closeSync(fd)
    }
  }

  /** Graceful stop: no new connections; open ones finish (ended after 10 s). */
  async close(): Promise<void> {
    clearInterval(this.#expiry)
    const server = this.#server
    if (!server) return
    await new Promise<void>((resolve) => {
      server.close(() => {
        clearInterval(this.#dataFileSweep)
        this.#closeDataFiles(() => true)
        resolve()
      })
      for (const socket of this.#sockets) socket.end()
      setTimeout(() => this.destroy(), 10_000).unref()
    })
  }

  destroy(): void {
    clearInterval(this.#expiry)
    clearInterval(this.#dataFileSweep)
    this.#closeDataFiles(() => true)
    for (const socket of this.#sockets) socket.destroy()
    this.#server?.close()
  }

  /** Trust is judged once per TLS connection: the certificate cannot change on it. */
  async #trusted(req: IncomingMessage): Promise<boolean> {
    const socket = req.socket as TLSSocket
    const known = this.#trustBySocket.get(socket)
    if (known !== undefined) return known
    const raw = socket.getPeerCertificate?.()?.raw
    let trusted = false
    if (raw) {
      const cert = new X509Certificate(raw)
      const now = this.#ctx.now()
      trusted = now >= new Date(cert.validFrom) && now <= new Date(cert.validTo) && (await isTrusted(this.#ctx, cert))
    }
    this.#trustBySocket.set(socket, trusted)
    return trusted
  }

  /** Records looked up by download requests, kept a second so that a burst of ranges reads the index once. */
  async #record(id: string): Promise<CacheRecord | undefined> {
    const cached = this.#records.get(id)
    if (cached && Date.now() - cached.at < 1000) return cached.record
    const record = await this.#cache.get(id).catch(() => undefined)
    if (record) this.#records.set(id, {record, at: Date.now()})
    else this.#records.delete(id)
    return record
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.httpVersion !== '1.1') return this.#status(req, res, 505)
      const url = (req.url ?? '/').split('?')[0]!
      if (url === PATH && req.method === 'POST') return await this.#search(req, res)
      // Pairing (openbits, not [MS-BPCR]): peers sharing the group secret trust each other.
      if (url === PAIR_PATH && req.method === 'POST') return await this.#pairing.handle(req, res)
      const match = /^\/BITS-peer-caching\/(?:%7B|\{)?([0-9a-f-]{36})(?:%7D|\})?$/i.exec(url)
      if (match && (req.method === 'GET' || req.method === 'HEAD')) return await this.#download(req, res, match[1]!)
      return this.#status(req, res, 404)
    } catch (err) {
      this.#ctx.logger.error('peers', `request failed: ${String(err)}`)
      if (!res.headersSent) this.#status(req, res, 500)
      else res.destroy()
    }
  }

  #status(req: IncomingMessage, res: ServerResponse, status: number): void {
    req.resume()
    res.writeHead(status, {'Content-Length': '0'}).end()
  }

  #reply(res: ServerResponse, status: SearchStatus, records: CacheRecord[] = []): void {
    const body = buildSearchResponse({status, records: records.map(toWireRecord)})
    res.writeHead(200, {'Content-Length': String(body.length), 'Content-Type': 'application/octet-stream'}).end(body)
  }

  async #search(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const lengthHeader = req.headers['content-length']
    if (lengthHeader === undefined) return this.#status(req, res, 411)
    const length = Number(lengthHeader)
    if (!Number.isInteger(length) || length === 0 || length % 2 === 1 || length > MAX_SEARCH_BODY) return this.#status(req, res, 400)
    const maxSearches = this.#options.maxConcurrentSearches ?? 16
    if (this.#searches >= maxSearches) return this.#status(req, res, 503)
    this.#searches++
    try {
      const body = await readBoundedBody(req, length)
      if (!body) return this.#status(req, res, 400)
      if (!(await this.#trusted(req))) return this.#reply(res, 'CertificateNotFound')
      let request
      try {
        request = parseSearchRequest(body)
      } catch (err) {
        if (err instanceof MalformedMessage) return this.#reply(res, 'InvalidSearch')
        throw err
      }
      const found = await this.#cache.find({url: request.originUrl, size: request.fileSize, etag: request.fileEtag, fileModifiedAt: request.fileModificationTime})
      const records = found.slice(0, request.maxRecords ?? found.length)
      this.#reply(res, records.length > 0 ? 'Success' : 'ContentNotFound', records)
    } finally {
      this.#searches--
    }
  }

  async #download(req: IncomingMessage, res: ServerResponse, rawId: string): Promise<void> {
    if (req.headers['content-length'] && req.headers['content-length'] !== '0') return this.#status(req, res, 400)
    if (req.headers['transfer-encoding']) return this.#status(req, res, 400)
    if (!(await this.#trusted(req))) return this.#status(req, res, 400)
    const id = parseGuid(rawId)
    const record = id ? await this.#record(id) : undefined
    if (!record) return this.#status(req, res, 404)
    const size = dataLength(record)
    const ranges = parseRecordRanges((req.headers.range ?? req.headers['content-range']) as string | undefined, size)
    if (ranges === 'invalid') {
      req.resume()
      res.writeHead(416, {'Content-Range': `bytes */${size}`, 'Content-Length': '0'}).end()
      return
    }
    const headers: Record<string, string> = {
      'Last-Modified': new Date(record.fileModifiedAt ?? record.createdAt).toUTCString(),
      'Accept-Ranges': 'bytes',
      BITS_BASIC_INFO: `${fileTime(record.createdAt)},${fileTime(record.lastAccessAt)},${fileTime(record.fileModifiedAt)},${fileTime(record.modifiedAt)},0x${record.attributes.toString(16).toUpperCase()}`,
    }
    const head = req.method === 'HEAD'
    if (!ranges) {
      res.writeHead(200, {...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size)})
      if (head || size === 0) return void res.end()
      await this.#send(record, 0, size - 1, res)
      return void res.end()
    }
    if (ranges.length === 1) {
      const [{start, end}] = ranges as [{start: number; end: number}]
      res.writeHead(206, {...headers, 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': String(end - start + 1)})
      if (head) return void res.end()
      await this.#send(record, start, end, res)
      return void res.end()
    }
    // Several ranges: one multipart/byteranges body, parts in the order asked, never merged.
    const boundary = randomBytes(12).toString('hex')
    const parts = ranges.map(({start, end}) => ({start, end, head: Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${start}-${end}/${size}\r\n\r\n`)}))
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
    const total = parts.reduce((sum, part) => sum + part.head.length + part.end - part.start + 1, tail.length)
    res.writeHead(206, {...headers, 'Content-Type': `multipart/byteranges; boundary=${boundary}`, 'Content-Length': String(total)})
    if (head) return void res.end()
    for (const part of parts) {
      res.write(part.head)
      await this.#send(record, part.start, part.end, res)
    }
    res.end(tail)
  }
}
