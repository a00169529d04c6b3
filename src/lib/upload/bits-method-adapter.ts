import {Duplex} from 'node:stream'
import {createServer as createNetServer, type Socket} from 'node:net'
import {createServer as createTlsServer} from 'node:tls'

/** Header the adapter adds so that the handler knows the request was a BITS_POST. */
export const BITS_METHOD_HEADER = 'x-openbits-method'

const HEAD_END = Buffer.from('\r\n\r\n')
const MAX_HEAD = 64 * 1024

/**
 * Node's HTTP parser accepts only the methods it knows, and `BITS_POST` is not one of them. This
 * sits between the socket and the HTTP server and rewrites each request line `BITS_POST /x` to
 * `POST /x` with a marker header, following request boundaries through Content-Length (BITS
 * clients always send it). Everything else passes through untouched.
 */
export class BitsMethodAdapter extends Duplex {
  readonly socket: Socket
  #pending = Buffer.alloc(0)
  /** Body bytes of the current request still to pass through before the next request line. */
  #bodyLeft = 0
  /** After a request we cannot follow (chunked), stop rewriting on this connection. */
  #passthrough = false

  constructor(socket: Socket) {
    super({allowHalfOpen: false})
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(this.#transform(chunk))) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  // Properties the HTTP server reads from its socket.
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort
  }

  get encrypted(): boolean {
    return Boolean((this.socket as Socket & {encrypted?: boolean}).encrypted)
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms, callback)
    return this
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay)
    return this
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay)
    return this
  }

  override _read(): void {
    this.socket.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy(error ?? undefined)
    callback(error)
  }

  #transform(chunk: Buffer): Buffer {
    if (this.#passthrough) return chunk
    const out: Buffer[] = []
    let data = Buffer.concat([this.#pending, chunk])
    this.#pending = Buffer.alloc(0)
    while (data.length > 0) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, data.length)
        out.push(data.subarray(0, take))
        this.#bodyLeft -= take
        data = data.subarray(take)
        continue
      }
      const end = data.indexOf(HEAD_END)
      if (end < 0) {
        if (data.length > MAX_HEAD) {
          this.#passthrough = true
          out.push(data)
        } else {
          this.#pending = data
        }
        break
      }
      let head = data.subarray(0, end + 4).toString('latin1')
      data = data.subarray(end + 4)
      if (/^BITS_POST /.test(head)) {
        const lineEnd = head.indexOf('\r\n')
        head = `POST ${head.slice('BITS_POST '.length, lineEnd)}\r\n${BITS_METHOD_HEADER}: BITS_POST${head.slice(lineEnd)}`
      }
      if (/\r\ntransfer-encoding:/i.test(head)) this.#passthrough = true
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      this.#bodyLeft = length ? Number(length[1]) : 0
      out.push(Buffer.from(head, 'latin1'))
      if (this.#passthrough) {
        out.push(data)
        break
      }
    }
    return Buffer.concat(out)
  }
}

/**
 * A listening front for an HTTP server that also understands `BITS_POST`: plain TCP, or TLS when
 * given a certificate; each connection reaches `httpServer` through the adapter.
 */
export function bitsCapableListener(httpServer: import('node:http').Server, tls?: {cert: Buffer | string; key: Buffer | string}): import('node:net').Server {
  const hand = (socket: Socket) => httpServer.emit('connection', new BitsMethodAdapter(socket))
  return tls ? createTlsServer(tls, hand) : createNetServer(hand)
}

/** True when the request arrived as `BITS_POST` (rewritten by the adapter). */
export function isBitsPost(req: import('node:http').IncomingMessage): boolean {
  return req.method === 'BITS_POST' || (req.method === 'POST' && req.headers[BITS_METHOD_HEADER] === 'BITS_POST')
}
