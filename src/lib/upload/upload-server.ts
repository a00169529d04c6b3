import {randomUUID} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {lstat, mkdir, open, readdir, readFile, realpath, rename, rm, stat} from 'node:fs/promises'
import {createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'
import path from 'node:path'
import {request} from 'undici'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode} from '../errors.js'
import {writeFileAtomic} from '../state/atomic-write.js'
import {StateLayout} from '../state/state-dir.js'
import {bitsCapableListener, isBitsPost} from './bits-method-adapter.js'
import type {UploadUsers} from './upload-users.js'
import {BITS_UPLOAD_PROTOCOL, formatHresultHeader, parseFragmentRange, parsePacketType, UploadErrorContext, UploadHresult} from './upload-protocol.js'

/** A directory that accepts uploads under a URL path. */
export interface UploadMount {
  dir: string
  /** URL path prefix, e.g. `/uploads`. */
  urlPath: string
}

export interface UploadServerSettings {
  mounts: UploadMount[]
  /** Largest upload accepted, in bytes. @default unlimited */
  maxUploadSize?: number
  /** Replace an existing destination file. @default false */
  allowOverwrite?: boolean
  /** Sessions idle this long are removed with their partial data. @default 14 days (IIS) */
  sessionTimeoutMs?: number
  /** Back-end notified when an upload is complete; its answer is the upload-reply. */
  notification?: {url: string; type: 'reference' | 'value'}
  /** Sent as BITS-Host-Id on Create-Session, for server farms. */
  hostId?: string
  /** When set, every request needs Basic credentials of one of these users. */
  users?: UploadUsers
}

/** A session as persisted in `uploads/sessions/<id>.json`, so uploads survive a server restart. */
interface UploadSession {
  id: string
  destination: string
  temp: string
  total: number | null
  received: number
  complete: boolean
  replyFile: string | null
  replyUrl: string | null
  lastActivity: string
}

class AckError extends Error {
  constructor(
    readonly status: number,
    readonly hresult: number | undefined,
    message: string,
    readonly context: number = UploadErrorContext.SERVER,
    readonly extra: Record<string, string> = {},
  ) {
    super(message)
  }
}

const invalid = (message: string) => new AckError(400, UploadHresult.E_INVALIDARG, message)
const sessionNotFound = () => new AckError(500, UploadHresult.BG_E_SESSION_NOT_FOUND, 'session not found')

/**
 * The server side of [MC-BUP], like the IIS BITS extension: BITS_POST packets (matched without
 * regard to case), sessions persisted in the state directory, fragments written in place and
 * acknowledged by offset, optional back-end notification whose answer becomes the upload-reply,
 * and GET/HEAD with ranges for finished files. Destination names never leave their directory.
 */
export class UploadHandler {
  readonly #ctx: LibContext
  readonly #settings: UploadServerSettings
  readonly #sessionsDir: string
  readonly #queues = new Map<string, Promise<unknown>>()

  constructor(ctx: LibContext, settings: UploadServerSettings) {
    this.#ctx = ctx
    this.#settings = settings
    this.#sessionsDir = path.join(ctx.stateDir, StateLayout.uploads, 'sessions')
  }

  /** Handles the request when it targets a mount; false lets another handler have it. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const mount = this.#mountOf(req.url ?? '/')
    if (!mount) return false
    if (this.#settings.users) {
      void this.#settings.users.verify(req.headers.authorization).then((user) => {
        if (!user) {
          req.resume()
          res.writeHead(401, {'WWW-Authenticate': 'Basic realm="bits uploads"', 'Content-Length': '0'}).end()
          return
        }
        this.#dispatch(req, res, mount)
      })
      return true
    }
    this.#dispatch(req, res, mount)
    return true
  }

  #dispatch(req: IncomingMessage, res: ServerResponse, mount: UploadMount): void {
    if (isBitsPost(req)) void this.#post(req, res, mount)
    else if (req.method === 'GET' || req.method === 'HEAD') void this.#serveFile(req, res, mount)
    else res.writeHead(405, {allow: 'BITS_POST, GET, HEAD'}).end()
  }

  /** Removes sessions idle longer than the session timeout, with their partial data. */
  async expireSessions(): Promise<number> {
    const timeout = this.#settings.sessionTimeoutMs ?? 14 * 86_400_000
    const names = await readdir(this.#sessionsDir).catch(() => [] as string[])
    let removed = 0
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const session = await this.#loadSession(name.slice(0, -5)).catch(() => undefined)
      if (session && this.#ctx.now().getTime() - Date.parse(session.lastActivity) > timeout) {
        await this.#dropSession(session, true)
        removed++
      }
    }
    return removed
  }

  #mountOf(url: string): UploadMount | undefined {
    const pathname = url.split('?')[0]!
    return this.#settings.mounts.find((mount) => pathname === mount.urlPath || pathname.startsWith(mount.urlPath.endsWith('/') ? mount.urlPath : `${mount.urlPath}/`))
  }

  /** The file a URL names inside its mount: refuses `..`, absolute parts, NUL, backslashes and symlinks. */
  async #destination(url: string, mount: UploadMount): Promise<string> {
    let relative: string
    try {
      relative = decodeURIComponent(url.split('?')[0]!.slice(mount.urlPath.replace(/\/$/, '').length))
    } catch {
      throw invalid('URL is not valid percent-encoding')
    }
    const segments = relative.split('/').filter((segment) => segment !== '')
    if (segments.length === 0 || segments.some((segment) => segment === '.' || segment === '..' || /[\\\0:]/.test(segment))) {
      throw new AckError(403, UploadHresult.E_ACCESSDENIED, 'destination name is not allowed')
    }
    const root = await realpath(mount.dir)
    const target = path.join(root, ...segments)
    const parent = await realpath(path.dirname(target)).catch(() => undefined)
    if (!parent || (parent !== root && !parent.startsWith(root + path.sep))) throw new AckError(403, UploadHresult.E_ACCESSDENIED, 'destination directory is outside the upload directory or missing')
    const existing = await lstat(target).catch(() => undefined)
    if (existing?.isSymbolicLink() || existing?.isDirectory()) throw new AckError(403, UploadHresult.E_ACCESSDENIED, 'destination is a link or a directory')
    return target
  }

  async #post(req: IncomingMessage, res: ServerResponse, mount: UploadMount): Promise<void> {
    const type = parsePacketType(req.headers['bits-packet-type'] as string | undefined)
    const sessionId = req.headers['bits-session-id'] as string | undefined
    try {
      if (!type) throw invalid('missing or unknown BITS-Packet-Type')
      if (type === 'ping') {
        await drain(req)
        return ack(res, 200, {})
      }
      // A packet without a body may come without Content-Length: undici (and RFC 9110) leave out
      // `Content-Length: 0` for methods that expect no body. A fragment must always carry it.
      if (req.headers['content-length'] === undefined && (type === 'fragment' || req.headers['transfer-encoding'])) throw invalid('Content-Length is required')
      const length = Number(req.headers['content-length'] ?? 0)
      if (type !== 'fragment' && length !== 0) throw invalid(`${type} carries no body`)
      if (type === 'create-session') return ack(res, 200, await this.#createSession(req, mount))
      if (!sessionId) throw sessionNotFound()
      const headers = await this.#serially(sessionId, async () => {
        const session = await this.#loadSession(sessionId)
        if (type === 'fragment') return this.#fragment(req, session, length)
        if (type === 'close-session') return this.#close(session)
        return this.#cancel(session)
      })
      ack(res, 200, {'BITS-Session-Id': sessionId, ...headers})
    } catch (err) {
      req.resume()
      if (err instanceof AckError) {
        ack(res, err.status, {...(sessionId ? {'BITS-Session-Id': sessionId} : {}), ...err.extra, ...(err.hresult === undefined ? {} : {'BITS-Error-Code': formatHresultHeader(err.hresult), 'BITS-Error-Context': `0x${err.context.toString(16)}`})})
      } else {
        this.#ctx.logger.error('upload', `request failed: ${String(err)}`)
        ack(res, 500, {'BITS-Error-Code': formatHresultHeader(errnoCode(err) === 'ENOSPC' ? UploadHresult.ERROR_DISK_FULL : 0x80004005), 'BITS-Error-Context': '0x5'})
      }
    }
  }

  /** One request at a time per session (the protocol has one outstanding request anyway). */
  async #serially<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve()
    const next = previous.catch(() => undefined).then(work)
    this.#queues.set(id, next)
    try {
      return await next
    } finally {
      if (this.#queues.get(id) === next) this.#queues.delete(id)
    }
  }

  async #createSession(req: IncomingMessage, mount: UploadMount): Promise<Record<string, string>> {
    const offered = String(req.headers['bits-supported-protocols'] ?? '').toLowerCase().split(/[\s,]+/)
    if (!offered.includes(BITS_UPLOAD_PROTOCOL)) throw new AckError(400, UploadHresult.E_INVALIDARG, 'no supported protocol offered')
    const destination = await this.#destination(req.url ?? '/', mount)
    if (!this.#settings.allowOverwrite && (await stat(destination).catch(() => undefined))) {
      throw new AckError(403, UploadHresult.E_ACCESSDENIED, 'destination exists and overwriting is off')
    }
    const id = `{${randomUUID().toUpperCase()}}`
    const session: UploadSession = {
      id,
      destination,
      temp: path.join(path.dirname(destination), `.${path.basename(destination)}.${id.slice(1, 9).toLowerCase()}.bitsupload`),
      total: null,
      received: 0,
      complete: false,
      replyFile: null,
      replyUrl: null,
      lastActivity: this.#ctx.now().toISOString(),
    }
    await (await open(session.temp, 'w', 0o600)).close()
    await this.#saveSession(session)
    this.#ctx.logger.info('upload', `session ${id} for ${destination}`)
    return {
      'BITS-Protocol': BITS_UPLOAD_PROTOCOL,
      'BITS-Session-Id': id,
      'Accept-Encoding': 'identity',
      ...(this.#settings.hostId ? {'BITS-Host-Id': this.#settings.hostId} : {}),
    }
  }

  async #fragment(req: IncomingMessage, session: UploadSession, length: number): Promise<Record<string, string>> {
    const range = parseFragmentRange(req.headers['content-range'] as string | undefined)
    if (!range || range.last - range.first + 1 !== length) throw invalid('Content-Range is missing, malformed or does not match Content-Length')
    if (session.total !== null && range.total !== session.total) throw invalid('the total length changed between fragments')
    if (this.#settings.maxUploadSize !== undefined && range.total > this.#settings.maxUploadSize) {
      throw new AckError(413, UploadHresult.BG_E_TOO_LARGE, `upload of ${range.total} bytes is over the limit of ${this.#settings.maxUploadSize}`)
    }
    const receivedHeader = () => ({'BITS-Received-Content-Range': String(session.received)})
    if (range.first > session.received) throw new AckError(416, undefined, 'fragment starts past the received bytes', UploadErrorContext.SERVER, receivedHeader())
    session.total = range.total
    // Bytes the server already has (a re-sent fragment) are skipped, never written again.
    let skip = session.received - range.first
    let position = session.received
    const handle = await open(session.temp, 'r+')
    try {
      for await (const chunk of req) {
        let buffer = chunk as Buffer
        if (skip > 0) {
          const dropped = Math.min(skip, buffer.length)
          buffer = buffer.subarray(dropped)
          skip -= dropped
        }
        if (buffer.length === 0) continue
        await handle.write(buffer, 0, buffer.length, position)
        position += buffer.length
      }
      await handle.datasync()
    } finally {
      await handle.close()
    }
    session.received = Math.max(session.received, Math.min(position, range.last + 1))
    session.lastActivity = this.#ctx.now().toISOString()
    const extra: Record<string, string> = {}
    if (session.received === session.total && !session.complete) {
      session.complete = true
      if (this.#settings.notification) {
        try {
          await this.#notify(session, req)
        } catch (err) {
          // Stay incomplete so that the client's retry of the last fragment notifies again.
          session.complete = false
          await this.#saveSession(session)
          throw err
        }
      }
    }
    if (session.complete && session.replyUrl) extra['BITS-Reply-URL'] = session.replyUrl
    await this.#saveSession(session)
    return {...receivedHeader(), ...extra}
  }

  /** Posts the finished upload to the back-end; its answer becomes the reply (upload-reply). */
  async #notify(session: UploadSession, req: IncomingMessage): Promise<void> {
    const {url, type} = this.#settings.notification!
    const original = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`
    const replyFile = `${session.temp}.reply`
    const headers: Record<string, string> = {'BITS-Original-Request-URL': original}
    if (type === 'reference') {
      headers['BITS-Request-DataFile-Name'] = session.temp
      headers['BITS-Response-DataFile-Name'] = replyFile
    }
    let response: Awaited<ReturnType<typeof request>>
    try {
      response = await request(new URL(url, original), {
        method: 'POST',
        headers: {...headers, 'content-length': String(type === 'value' ? session.total : 0)},
        body: type === 'value' ? createReadStream(session.temp) : undefined,
        headersTimeout: 300_000,
        bodyTimeout: 300_000,
      })
    } catch (err) {
      throw new AckError(408, UploadHresult.BACKEND_TIMEOUT, `back-end notification failed: ${String(err)}`, UploadErrorContext.SERVER_APPLICATION)
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      response.body.resume()
      throw new AckError(response.statusCode, 0x80190000 + response.statusCode, 'back-end refused the upload', UploadErrorContext.SERVER_APPLICATION)
    }
    const staticUrl = response.headers['bits-static-response-url'] as string | undefined
    if (staticUrl) {
      response.body.resume()
      session.replyUrl = staticUrl
      return
    }
    if (type === 'value') {
      const handle = await open(replyFile, 'w', 0o600)
      try {
        for await (const chunk of response.body) await handle.write(chunk as Buffer)
      } finally {
        await handle.close()
      }
    } else {
      response.body.resume()
    }
    session.replyFile = replyFile
    session.replyUrl = `${path.posix.dirname(new URL(original).pathname)}/.replies/${encodeURIComponent(session.id)}`
  }

  async #close(session: UploadSession): Promise<Record<string, string>> {
    // An empty file has no fragment: closing a session that received nothing commits it empty.
    const empty = session.total === null && session.received === 0
    if (!session.complete && !empty) {
      // Closing before every byte arrived discards the partial upload, as IIS does.
      await this.#dropSession(session, true)
      return {}
    }
    if (!this.#settings.notification || this.#settings.notification.type === 'value') {
      if (!this.#settings.allowOverwrite && (await stat(session.destination).catch(() => undefined))) {
        await this.#dropSession(session, true)
        throw new AckError(403, UploadHresult.E_ACCESSDENIED, 'destination appeared meanwhile and overwriting is off')
      }
      await rename(session.temp, session.destination)
    }
    await this.#dropSession(session, true)
    this.#ctx.logger.info('upload', `session ${session.id} closed: ${session.destination}`)
    return {}
  }

  async #cancel(session: UploadSession): Promise<Record<string, string>> {
    await this.#dropSession(session, true)
    return {}
  }

  async #serveFile(req: IncomingMessage, res: ServerResponse, mount: UploadMount): Promise<void> {
    try {
      const replyMatch = /\/\.replies\/([^/?]+)$/.exec(req.url ?? '')
      const file = replyMatch ? (await this.#loadSession(decodeURIComponent(replyMatch[1]!))).replyFile : await this.#destination(req.url ?? '/', mount)
      const info = file ? await stat(file).catch(() => undefined) : undefined
      if (!file || !info?.isFile()) return void res.writeHead(404).end()
      const headers: Record<string, string | number> = {'accept-ranges': 'bytes', 'last-modified': info.mtime.toUTCString(), etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`}
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''))
      let start = 0
      let end = info.size - 1
      if (range) {
        start = Number(range[1])
        end = range[2] ? Math.min(Number(range[2]), end) : end
        if (start > end) return void res.writeHead(416, {'content-range': `bytes */${info.size}`}).end()
        headers['content-range'] = `bytes ${start}-${end}/${info.size}`
      }
      headers['content-length'] = Math.max(0, end - start + 1)
      res.writeHead(range ? 206 : 200, headers)
      if (req.method === 'HEAD' || info.size === 0) return void res.end()
      createReadStream(file, {start, end}).pipe(res)
    } catch (err) {
      if (!res.headersSent) res.writeHead(err instanceof AckError ? (err.status === 500 ? 404 : err.status) : 500).end()
    }
  }

  #sessionFile(id: string): string {
    // Session ids reach the file system only after this check.
    if (!/^\{[0-9A-F-]{36}\}$/.test(id)) throw sessionNotFound()
    return path.join(this.#sessionsDir, `${id.slice(1, -1)}.json`)
  }

  async #loadSession(id: string): Promise<UploadSession> {
    const file = this.#sessionFile(id.startsWith('{') ? id.toUpperCase() : `{${id.toUpperCase()}}`)
    try {
      return JSON.parse(await readFile(file, 'utf8')) as UploadSession
    } catch {
      throw sessionNotFound()
    }
  }

  async #saveSession(session: UploadSession): Promise<void> {
    await mkdir(this.#sessionsDir, {recursive: true, mode: 0o700})
    await writeFileAtomic(this.#sessionFile(session.id), JSON.stringify(session), {durable: false})
  }

  async #dropSession(session: UploadSession, deleteData: boolean): Promise<void> {
    if (deleteData) {
      await rm(session.temp, {force: true})
      if (session.replyFile) await rm(session.replyFile, {force: true})
    }
    await rm(this.#sessionFile(session.id), {force: true})
  }
}

function ack(res: ServerResponse, status: number, headers: Record<string, string>): void {
  res.writeHead(status, {'BITS-Packet-Type': 'Ack', 'Content-Length': '0', ...headers}).end()
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // Ping has no body; anything sent is read and dropped.
  }
}

/** A running upload endpoint. */
export interface UploadServer {
  address: {host: string; port: number}
  handler: UploadHandler
  close(): Promise<void>
  destroy(): void
}

/** Parses `--listen HOST:PORT` (IPv6 in brackets). */
export function parseListen(text: string): {host: string; port: number} {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text)
  if (!match) throw new BitsError('USAGE_INVALID_ARG', `--listen ${text} is not HOST:PORT`, {hint: 'e.g. --listen 127.0.0.1:8080'})
  return {host: match[1] ?? match[2]!, port: Number(match[3])}
}

/** Starts an HTTP(S) endpoint that accepts BITS uploads (what `bits serve --upload` runs). */
export async function startUploadServer(ctx: LibContext, options: UploadServerSettings & {listen: string; tls?: {cert: Buffer; key: Buffer}}): Promise<UploadServer> {
  const handler = new UploadHandler(ctx, options)
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!handler.handle(req, res)) res.writeHead(404).end()
  }
  const httpServer: Server = createHttpServer(onRequest)
  const server = bitsCapableListener(httpServer, options.tls)
  const sockets = new Set<Socket>()
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  const {host, port} = parseListen(options.listen)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new BitsError('SERVER_LISTEN', `Cannot listen on ${options.listen}: ${err.message}`, {cause: err, hint: 'Choose another --listen address or port'})))
    server.listen(port, host, () => resolve())
  })
  const expiry = setInterval(() => void handler.expireSessions().catch(() => undefined), 60_000)
  expiry.unref()
  const address = server.address() as AddressInfo
  return {
    address: {host: address.address, port: address.port},
    handler,
    close: async () => {
      clearInterval(expiry)
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.end()
        setTimeout(() => {
          for (const socket of sockets) socket.destroy()
        }, 2000).unref()
      })
    },
    destroy: () => {
      clearInterval(expiry)
      for (const socket of sockets) socket.destroy()
      server.close()
    },
  }
}
