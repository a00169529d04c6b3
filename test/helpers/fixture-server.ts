import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createTlsServer} from 'node:https'
import type {AddressInfo, Socket} from 'node:net'

/** How the fixture answers one path; faults are scripted per request number. */
export interface FixtureFile {
  body: Buffer
  etag?: string
  lastModified?: string
  /** Leave out Content-Length on HEAD and GET (chunked). */
  noLength?: boolean
  /** Answer ranges with 200 and the whole body. */
  ignoreRange?: boolean
  /** Refuse HEAD with this status. */
  headStatus?: number
  /** Script per GET request (0-based count of GETs to this path): a fault or undefined. */
  fault?: (getIndex: number, req: IncomingMessage) => Fault | undefined
}

export type Fault =
  | {kind: 'status'; status: number; headers?: Record<string, string>}
  /** Send this many body bytes, then destroy the socket. */
  | {kind: 'reset-after'; bytes: number}
  /** Declare the full length but close cleanly after this many bytes. */
  | {kind: 'truncate-after'; bytes: number}
  /** Send this many bytes, then stop sending (the socket stays open). */
  | {kind: 'stall-after'; bytes: number}
  | {kind: 'redirect'; status: number; location: string}
  /** Send the body in chunks of `chunkBytes` every `intervalMs`: a slow link. */
  | {kind: 'throttle'; chunkBytes: number; intervalMs: number}

export interface RequestRecord {
  method: string
  path: string
  headers: IncomingMessage['headers']
  bodyBytesSent: number
}

/**
 * A real HTTP/1.1 server on 127.0.0.1 with byte ranges, validators and scripted faults: the
 * origin of the transfer tests.
 */
export class FixtureServer {
  readonly files = new Map<string, FixtureFile>()
  readonly requests: RequestRecord[] = []
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #gets = new Map<string, number>()
  #port = 0
  /** Connections accepted so far. */
  connections = 0

  readonly #scheme: 'http' | 'https'

  /** With `tls`, an HTTPS server with that certificate. */
  constructor(tls?: {cert: string; key: string; ca?: string; requestCert?: boolean; rejectUnauthorized?: boolean; maxVersion?: 'TLSv1.2' | 'TLSv1.3'}) {
    this.#scheme = tls ? 'https' : 'http'
    this.#server = tls ? createTlsServer(tls, (req, res) => this.#handle(req, res)) : createServer((req, res) => this.#handle(req, res))
    this.#server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.connections++
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.#port = (this.#server.address() as AddressInfo).port
    return this
  }

  url(path: string): string {
    return `${this.#scheme}://127.0.0.1:${this.#port}${path}`
  }

  get port(): number {
    return this.#port
  }

  /** Body bytes the server sent for `path` with GET. */
  bytesSent(path: string): number {
    return this.requests.filter((r) => r.path === path && r.method === 'GET').reduce((sum, r) => sum + r.bodyBytesSent, 0)
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!
    const record: RequestRecord = {method: req.method ?? 'GET', path, headers: req.headers, bodyBytesSent: 0}
    this.requests.push(record)
    const file = this.files.get(path)
    if (!file) {
      res.writeHead(404).end()
      return
    }
    const headers: Record<string, string | number> = {'accept-ranges': file.ignoreRange ? 'none' : 'bytes'}
    if (file.ignoreRange) delete headers['accept-ranges']
    if (file.etag) headers.etag = file.etag
    if (file.lastModified) headers['last-modified'] = file.lastModified
    if (req.method === 'HEAD') {
      if (file.headStatus) {
        res.writeHead(file.headStatus).end()
        return
      }
      if (!file.noLength) headers['content-length'] = file.body.length
      res.writeHead(200, headers).end()
      return
    }
    const index = this.#gets.get(path) ?? 0
    this.#gets.set(path, index + 1)
    const fault = file.fault?.(index, req)
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, fault.headers).end()
      return
    }
    if (fault?.kind === 'redirect') {
      res.writeHead(fault.status, {location: fault.location}).end()
      return
    }
    let start = 0
    let end = file.body.length - 1
    let status = 200
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    const ifRange = req.headers['if-range']
    const validatorMatches = !ifRange || ifRange === file.etag || ifRange === file.lastModified
    if (range && !file.ignoreRange && validatorMatches) {
      start = Number(range[1])
      end = range[2] ? Math.min(Number(range[2]), end) : end
      if (start >= file.body.length) {
        res.writeHead(416, {'content-range': `bytes */${file.body.length}`}).end()
        return
      }
      status = 206
      headers['content-range'] = `bytes ${start}-${end}/${file.body.length}`
    }
    const slice = file.body.subarray(start, end + 1)
    if (!file.noLength) headers['content-length'] = slice.length
    res.writeHead(status, headers)
    if (fault?.kind === 'throttle') {
      let sent = 0
      const timer = setInterval(() => {
        const chunk = slice.subarray(sent, sent + fault.chunkBytes)
        sent += chunk.length
        record.bodyBytesSent = sent
        if (sent >= slice.length) {
          clearInterval(timer)
          res.end(chunk)
        } else if (!res.write(chunk)) {
          // Backpressure: the client is slower than the throttle; keep the pace anyway.
        }
      }, fault.intervalMs)
      res.on('close', () => clearInterval(timer))
      return
    }
    const limit = fault && 'bytes' in fault ? Math.min(fault.bytes, slice.length) : slice.length
    const head = slice.subarray(0, limit)
    record.bodyBytesSent = head.length
    if (!fault) {
      res.end(slice)
      return
    }
    res.write(head, () => {
      if (fault.kind === 'reset-after') setTimeout(() => res.socket?.destroy(), 20)
      if (fault.kind === 'truncate-after') setTimeout(() => res.socket?.end(), 20)
      // stall-after: nothing more is sent; the client's body timeout must notice.
    })
  }
}
