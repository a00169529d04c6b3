import {request} from 'undici'
import type {IncomingHttpHeaders} from 'node:http'
import type {Readable} from 'node:stream'
import {HRESULT} from '../errors.js'
import type {Logger} from '../log.js'
import {DispatcherPool, type HttpTimeouts, type JobNetworkSettings, type Route} from './dispatcher.js'
import {chooseAnswer, parseChallenges} from './http-auth.js'
import {checkRedirect} from './redirect-policy.js'
import {httpStatusError, TransferError} from './transfer-error.js'
import {toTransportError} from './transport-errors.js'

export interface HttpRequest {
  url: string
  method?: string
  /** Extra headers of this request (Range, If-Range); the job's custom headers are added. */
  headers?: Record<string, string>
  signal?: AbortSignal
  /** A request body (uploads); a stream is sent as it is read, so memory stays flat. */
  body?: Readable | Buffer
}

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Readable
  /** The URL that answered, after redirects. */
  url: string
  /** Every URL redirected to, in order. */
  redirects: string[]
}

export interface HttpSessionOptions extends HttpTimeouts {
  env?: NodeJS.ProcessEnv
  logger?: Logger
}

/** Reads a single-valued response header. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

/** Headers bits sets itself: a custom header never replaces them. */
const OWN_HEADERS = new Set(['host', 'range', 'if-range', 'authorization', 'proxy-authorization'])

type Answer = NonNullable<ReturnType<typeof chooseAnswer>>

/**
 * All HTTP traffic of one job: its proxies (with fallback to the next one), its custom headers on
 * every request, answers to 401/407 challenges with its credentials (Basic, Digest), its redirect
 * policy, and transport failures turned into TransferErrors with BITS codes.
 */
export class HttpSession {
  readonly #settings: JobNetworkSettings
  readonly #pool: DispatcherPool
  readonly #customHeaders: Record<string, string>
  /** Server credentials go only to the host the job names, never to a redirect target. */
  #serverAnswer: {host: string; answer: Answer} | undefined
  #proxyAnswer: Answer | undefined

  constructor(settings: JobNetworkSettings, options: HttpSessionOptions = {}) {
    this.#settings = settings
    this.#pool = new DispatcherPool(settings, options, options.env, options.logger)
    this.#customHeaders = {}
    for (const line of settings.customHeaders) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).trim().toLowerCase()
      if (!OWN_HEADERS.has(name)) this.#customHeaders[name] = line.slice(colon + 1).trim()
    }
  }

  /** Sends a request and follows redirects within the job's policy (at most 10 hops). */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const redirects: string[] = []
    const origin = new URL(req.url).host
    let url = req.url
    for (;;) {
      const response = await this.#authenticated(url, req, origin)
      const location = response.status >= 300 && response.status < 400 ? response.headers.location : undefined
      if (!location || response.status === 304) return {...response, url, redirects}
      response.body.resume()
      const next = new URL(Array.isArray(location) ? location[0]! : location, url).href
      checkRedirect({from: url, to: next, status: response.status, hops: redirects.length + 1, securityFlags: this.#settings.securityFlags})
      redirects.push(next)
      url = next
    }
  }

  /**
   * One request, answering once a 401 from the job's own host with its server credentials, and a
   * 407 from a forward proxy with its proxy credentials (Basic or Digest). For HTTPS through a
   * CONNECT tunnel undici sends the proxy's Basic credentials itself and reports a 407 as an
   * error, which becomes the job's fatal 0x80190197.
   */
  async #authenticated(url: string, req: HttpRequest, origin: string): Promise<Omit<HttpResponse, 'url' | 'redirects'>> {
    const target = new URL(url)
    const method = req.method ?? 'GET'
    const uri = target.pathname + target.search
    for (let attempt = 0; attempt < 3; attempt++) {
      const headers: Record<string, string> = {...this.#customHeaders, ...req.headers}
      if (this.#serverAnswer && this.#serverAnswer.host === target.host) headers.authorization = this.#serverAnswer.answer.header(method, uri)
      const response = await this.#send(target, method, headers, req.signal, req.body)
      const challengeHeader = response.status === 407 ? 'proxy-authenticate' : response.status === 401 ? 'www-authenticate' : undefined
      if (!challengeHeader) return response
      const isProxy = response.status === 407
      // A streamed body is gone once sent: such a request is not repeated (the upload's first,
      // bodiless packet has already answered the challenge for the fragments that follow).
      const canRepeat = req.body === undefined || Buffer.isBuffer(req.body)
      if (!canRepeat || (isProxy ? this.#proxyAnswer : this.#serverAnswer) || (!isProxy && target.host !== origin)) return response
      const answer = chooseAnswer(parseChallenges(response.headers[challengeHeader]), this.#settings.credentials, isProxy ? 'PROXY' : 'SERVER')
      if (!answer) return response
      response.body.resume()
      if (isProxy) this.#proxyAnswer = answer
      else this.#serverAnswer = {host: target.host, answer}
    }
    throw new Error('unreachable: each challenge is answered at most once')
  }

  async #send(target: URL, method: string, headers: Record<string, string>, signal: AbortSignal | undefined, body?: Readable | Buffer): Promise<Omit<HttpResponse, 'url' | 'redirects'>> {
    const routes = await this.#pool.routes(target)
    let lastError: unknown
    for (const route of routes) {
      try {
        // undici drops the connection after a body sent with a method it does not know (BITS_POST),
        // fearing a server that ignores the body, and after every HEAD, fearing a server that sends
        // one. BITS sends a HEAD before each file: closing there would cost a new connection (and
        // TLS handshake) per file. BITS servers read bodies, and a HEAD answered with a body breaks
        // only the next response on that connection, which then fails and is retried.
        const reset = body !== undefined || method === 'HEAD' ? false : undefined
        const response = route.forward ? await this.#forward(target, route.proxy!, method, headers, route, signal, body) : await request(target, {method: method as 'GET', headers, dispatcher: route.dispatcher, signal, body, reset})
        return {status: response.statusCode, headers: response.headers as IncomingHttpHeaders, body: response.body}
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err
        lastError = this.#routeError(err, target, route)
        // An unreachable proxy: BITS tries the next one in the list.
        if (!(route.proxy && lastError instanceof TransferError && lastError.code === 'TRANSFER_PROXY')) throw lastError
      }
    }
    throw lastError
  }

  /** A classic forward-proxy request: the absolute URI, sent to the proxy. */
  #forward(target: URL, proxy: string, method: string, headers: Record<string, string>, route: Route, signal: AbortSignal | undefined, body?: Readable | Buffer) {
    const proxyHeaders = this.#proxyAnswer ? {'proxy-authorization': this.#proxyAnswer.header(method, target.href)} : {}
    return route.dispatcher.request({origin: new URL(proxy).origin, path: target.href, method: method as 'GET', headers: {...headers, ...proxyHeaders, host: target.host}, signal, body})
  }

  #routeError(err: unknown, target: URL, route: Route): TransferError {
    if (err instanceof TransferError) return err
    const message = err instanceof Error ? err.message : String(err)
    // A proxy that refused (CONNECT, or 407 to a forwarded request): undici puts its status in the message.
    const tunnelStatus = /Proxy[^()]*\((\d{3})\)/.exec(message)?.[1]
    if (tunnelStatus) return httpStatusError(Number(tunnelStatus), target.href)
    // Connection failures on a proxied route are the proxy's: past it, failures come back as statuses.
    if (route.proxy && /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ECONNRESET|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT/.test(`${(err as {code?: string}).code ?? ''} ${message}`)) {
      return new TransferError('TRANSFER_PROXY', `Proxy ${route.proxy} is unreachable: ${message}`, {hresult: HRESULT.WINHTTP_CANNOT_CONNECT, context: 'GENERAL_TRANSPORT', transient: true, cause: err})
    }
    return toTransportError(err, target.href)
  }

  async close(): Promise<void> {
    await this.#pool.close()
  }

  async destroy(): Promise<void> {
    await this.#pool.destroy()
  }
}
