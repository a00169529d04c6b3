import {readFileSync} from 'node:fs'
import {rootCertificates, TLSSocket, type ConnectionOptions} from 'node:tls'
import {Agent, buildConnector, ProxyAgent, type Dispatcher} from 'undici'
import {BitsError} from '../errors.js'
import {SecurityFlag, type JobRecord} from '../jobs/job.js'
import type {Logger} from '../log.js'
import {basicAuthorization} from './http-auth.js'
import {ProxySelector} from './proxy-selection.js'
import {checkRevocation} from './crl-check.js'
import {findIssuer, IGNORE_FLAGS_MASK, parsePemBundle, presentedChain, verifyServerCertificate} from './tls-verification.js'

/** Timeouts of the HTTP stack; tests shorten them. */
export interface HttpTimeouts {
  /** @default 30000 */
  connectTimeoutMs?: number
  /** Time to wait for response headers. @default 60000 */
  headersTimeoutMs?: number
  /** Longest silence inside a body before the transfer counts as stalled. @default 60000 */
  bodyTimeoutMs?: number
}

/** The network settings of a job that decide how a connection is made. */
export type JobNetworkSettings = Pick<JobRecord, 'proxy' | 'credentials' | 'customHeaders' | 'securityFlags' | 'httpMethod' | 'caFile' | 'clientCert' | 'clientKey'>

/** One way to reach a URL: directly, or through the named proxy. */
export interface Route {
  dispatcher: Dispatcher
  /** The proxy URL, or undefined for a direct connection. */
  proxy?: string
  /**
   * Plain HTTP through a proxy goes as a classic forward-proxy request (absolute URI to the
   * proxy), so that a 407 comes back as a response the session can answer (Basic or Digest).
   */
  forward?: boolean
}

type ConnectCallback = (err: Error | null, socket: import('node:net').Socket | null) => void

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new BitsError('FILE_NOT_FOUND', `Cannot read the job's ${what} ${file}`, {cause: err, hint: `Fix the path with bits set JOB --${what.replaceAll(' ', '-')}`})
  }
}

/**
 * Chooses the undici dispatcher for each request of one job: direct or through the proxies its
 * settings name, with its TLS policy (extra CA, client certificate, and the security flags that
 * ignore one class of certificate error each). Dispatchers are kept for the whole job, so its
 * files go over reused connections.
 */
export class DispatcherPool {
  readonly #timeouts: HttpTimeouts
  readonly #settings: JobNetworkSettings
  readonly #selector: ProxySelector
  readonly #tls: ConnectionOptions
  readonly #verifyOurselves: boolean
  readonly #checkCrl: boolean
  readonly #extraTrust: ReturnType<typeof parsePemBundle>
  readonly #direct: Agent
  readonly #proxies = new Map<string, ProxyAgent>()

  constructor(settings: JobNetworkSettings, timeouts: HttpTimeouts = {}, env: NodeJS.ProcessEnv = process.env, logger?: Logger) {
    this.#settings = settings
    this.#timeouts = timeouts
    this.#selector = new ProxySelector(settings.proxy, env, logger)
    const extraCa = settings.caFile ? readPem(settings.caFile, 'ca file') : undefined
    this.#extraTrust = extraCa ? parsePemBundle(extraCa) : []
    this.#verifyOurselves = (settings.securityFlags & IGNORE_FLAGS_MASK) !== 0
    this.#checkCrl = (settings.securityFlags & SecurityFlag.ENABLE_CRL_CHECK) !== 0
    this.#tls = {
      ...(extraCa ? {ca: [...rootCertificates, extraCa.toString()]} : {}),
      ...(settings.clientCert ? {cert: readPem(settings.clientCert, 'client cert')} : {}),
      ...(settings.clientKey ? {key: readPem(settings.clientKey, 'client key')} : {}),
      // Node checks everything or nothing; when the job ignores one class of error, verification
      // is done by verifyServerCertificate instead, which ignores exactly that class. A resumed TLS
      // session shows no certificate chain to check, so such connections never resume one.
      ...(this.#verifyOurselves ? {rejectUnauthorized: false} : {}),
      ...(this.#verifyOurselves || this.#checkCrl ? {maxCachedSessions: 0} : {}),
    }
    this.#direct = new Agent({...this.#agentOptions(), connect: this.#connector()})
  }

  #agentOptions() {
    return {
      headersTimeout: this.#timeouts.headersTimeoutMs ?? 60_000,
      bodyTimeout: this.#timeouts.bodyTimeoutMs ?? 60_000,
      keepAliveTimeout: 10_000,
      connections: 8,
    }
  }

  /** A connector that checks the server certificate itself when the job ignores errors or checks CRLs. */
  #connector(): buildConnector.connector {
    const base = buildConnector({...this.#tls, timeout: this.#timeouts.connectTimeoutMs ?? 30_000} as buildConnector.BuildOptions)
    if (!this.#verifyOurselves && !this.#checkCrl) return base
    const connector = (options: buildConnector.Options, callback: ConnectCallback) => base(options, this.#checked(options, callback))
    return connector as buildConnector.connector
  }

  /** Wraps a connect callback with the job's own certificate checks (per-class flags, CRL). */
  #checked(options: {servername?: string | null; hostname: string}, callback: ConnectCallback): ConnectCallback {
    return (err, socket) => {
      if (err || !(socket instanceof TLSSocket)) return callback(err, socket)
      const fail = (failure: unknown) => {
        socket.destroy()
        callback(failure as Error, null)
      }
      try {
        if (this.#verifyOurselves) verifyServerCertificate(socket, options.servername || options.hostname, this.#settings.securityFlags, this.#extraTrust)
      } catch (failure) {
        return fail(failure)
      }
      if (!this.#checkCrl) return callback(null, socket)
      const chain = presentedChain(socket)
      checkRevocation(chain[0]!, chain[0] && findIssuer(chain[0], chain, this.#extraTrust)).then(() => callback(null, socket), fail)
    }
  }

  /** The routes to try for `url`, in order: its proxies, or a direct connection. */
  async routes(url: URL): Promise<Route[]> {
    const proxies = await this.#selector.routeFor(url)
    if (proxies.length === 0) return [{dispatcher: this.#direct}]
    if (url.protocol === 'http:') return proxies.map((proxy) => ({dispatcher: this.#direct, proxy, forward: true}))
    return proxies.map((proxy) => ({dispatcher: this.#proxyAgent(proxy), proxy}))
  }

  #proxyAgent(uri: string): ProxyAgent {
    let agent = this.#proxies.get(uri)
    if (agent) return agent
    const basic = this.#settings.credentials.find((credential) => credential.target === 'PROXY' && credential.scheme === 'BASIC')
    agent = new ProxyAgent({
      uri,
      // HTTPS goes through a CONNECT tunnel, which undici opens with these static credentials.
      ...(basic ? {token: basicAuthorization(basic)} : {}),
      requestTls: {...this.#tls, timeout: this.#timeouts.connectTimeoutMs ?? 30_000} as buildConnector.BuildOptions,
      ...this.#agentOptions(),
    })
    if (this.#verifyOurselves || this.#checkCrl) this.#verifyThroughTunnel(agent)
    this.#proxies.set(uri, agent)
    return agent
  }

  /** undici builds the TLS connection inside a tunnel with its own connector: wrap it the same way. */
  #verifyThroughTunnel(agent: ProxyAgent): void {
    const slot = Object.getOwnPropertySymbols(agent).find((symbol) => symbol.description === 'connect endpoint function')
    const holder = agent as unknown as Record<symbol, (options: buildConnector.Options & {httpSocket?: unknown}, callback: ConnectCallback) => void>
    const original = slot ? holder[slot] : undefined
    if (!slot || !original) {
      throw new BitsError('USAGE_UNSUPPORTED', 'Ignoring certificate errors through a proxy is not supported by this undici version', {hint: 'Remove the ignore flags from --security-flags, or use --proxy no_proxy'})
    }
    holder[slot] = (options, callback) => original(options, this.#checked(options, callback))
  }

  async close(): Promise<void> {
    await Promise.all([this.#direct, ...this.#proxies.values()].map((agent) => agent.close().catch(() => agent.destroy())))
  }

  async destroy(): Promise<void> {
    await Promise.all([this.#direct, ...this.#proxies.values()].map((agent) => agent.destroy()))
  }
}
