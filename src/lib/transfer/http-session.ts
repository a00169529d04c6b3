import {request} from 'undici'
import type {IncomingHttpHeaders} from 'node:http'
import type {Readable} from 'node:stream'
import {DispatcherPool, type HttpTimeouts, type JobNetworkSettings} from './dispatcher.js'
import {checkRedirect, MAX_REDIRECTS} from './redirect-policy.js'
import {toTransportError} from './transport-errors.js'

export interface HttpRequest {
  url: string
  method?: string
  /** Extra headers of this request (Range, If-Range); the job's custom headers are added. */
  headers?: Record<string, string>
  signal?: AbortSignal
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

/** Reads a single-valued response header. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

/**
 * All HTTP traffic of one job: the job's custom headers on every request, its redirect policy,
 * and transport failures turned into TransferErrors with BITS codes.
 */
export class HttpSession {
  readonly #settings: JobNetworkSettings
  readonly #pool: DispatcherPool
  readonly #customHeaders: Record<string, string>

  constructor(settings: JobNetworkSettings, timeouts: HttpTimeouts = {}) {
    this.#settings = settings
    this.#pool = new DispatcherPool(settings, timeouts)
    this.#customHeaders = {}
    for (const line of settings.customHeaders) {
      const colon = line.indexOf(':')
      this.#customHeaders[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
  }

  /** Sends a request and follows redirects within the job's policy (at most 10 hops). */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const redirects: string[] = []
    let url = req.url
    for (;;) {
      const response = await this.#send(url, req)
      const location = response.status >= 300 && response.status < 400 ? response.headers.location : undefined
      if (!location || response.status === 304) return {...response, url, redirects}
      response.body.resume()
      const next = new URL(Array.isArray(location) ? location[0]! : location, url).href
      checkRedirect({from: url, to: next, status: response.status, hops: redirects.length + 1, securityFlags: this.#settings.securityFlags})
      redirects.push(next)
      url = next
      if (redirects.length > MAX_REDIRECTS) throw new Error('unreachable: checkRedirect bounds the hops')
    }
  }

  async #send(url: string, req: HttpRequest): Promise<Omit<HttpResponse, 'url' | 'redirects'>> {
    const target = new URL(url)
    try {
      const response = await request(target, {
        method: (req.method ?? 'GET') as 'GET',
        headers: {...this.#customHeaders, ...req.headers},
        dispatcher: this.#pool.for(target),
        signal: req.signal,
      })
      return {status: response.statusCode, headers: response.headers as IncomingHttpHeaders, body: response.body}
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason ?? err
      throw toTransportError(err, url)
    }
  }

  async close(): Promise<void> {
    await this.#pool.close()
  }

  async destroy(): Promise<void> {
    await this.#pool.destroy()
  }
}
