import {readFile} from 'node:fs/promises'
import {isIP} from 'node:net'
import {request} from 'undici'
import type {Logger} from '../log.js'
import type {ProxySettings} from '../jobs/job.js'

/** Proxies to try in order for one URL; empty means connect directly. */
export type ProxyRoute = string[]

/** Normalises `host:port` or a URL to a proxy URL; http:// when no scheme is given. */
export function proxyUri(entry: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ? entry : `http://${entry}`
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host)
}

/**
 * The OVERRIDE bypass list as BITS reads it: host names or addresses, left-most `*` wildcards,
 * and `<local>` for every host without a dot (and loopback).
 */
export function isBypassed(host: string, bypass: string[]): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '')
  return bypass.some((raw) => {
    const entry = raw.toLowerCase()
    if (entry === '<local>') return !name.includes('.') || isLoopback(name)
    if (entry.startsWith('*')) return name.endsWith(entry.slice(1))
    return name === entry
  })
}

/** NO_PROXY as curl and undici read it: `*`, host suffixes (with or without a dot), optional port. */
export function matchesNoProxy(url: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '')
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  return noProxy
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((raw) => {
      if (raw === '*') return true
      const [entryHost, entryPort] = raw.toLowerCase().startsWith('[') ? [raw.slice(1, raw.indexOf(']')), raw.slice(raw.indexOf(']') + 2) || undefined] : raw.toLowerCase().split(':')
      if (entryPort && entryPort !== port) return false
      const suffix = entryHost!.replace(/^\*?\./, '')
      if (isIP(host)) return host === suffix
      return host === suffix || host.endsWith(`.${suffix}`)
    })
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name] ?? env[name.toLowerCase()] ?? undefined
}

/** PRECONFIG: HTTP_PROXY / HTTPS_PROXY / NO_PROXY of the environment (either case). */
export function preconfiguredRoute(url: URL, env: NodeJS.ProcessEnv): ProxyRoute {
  if (matchesNoProxy(url, envValue(env, 'NO_PROXY'))) return []
  const proxy = url.protocol === 'https:' ? (envValue(env, 'HTTPS_PROXY') ?? envValue(env, 'HTTP_PROXY')) : envValue(env, 'HTTP_PROXY')
  return proxy ? [proxyUri(proxy)] : []
}

/** Turns a PAC answer (`PROXY a:1; HTTPS b:2; DIRECT`) into a route; DIRECT ends the list. */
export function parsePacAnswer(answer: string): ProxyRoute {
  const route: ProxyRoute = []
  for (const part of answer.split(';').map((p) => p.trim()).filter(Boolean)) {
    const [kind, address] = part.split(/\s+/)
    const word = kind!.toUpperCase()
    if (word === 'DIRECT') break
    if ((word === 'PROXY' || word === 'HTTP') && address) route.push(`http://${address}`)
    if (word === 'HTTPS' && address) route.push(`https://${address}`)
  }
  return route
}

type FindProxy = (url: string) => Promise<string>

/**
 * Chooses the proxies of each request of one job from its proxy settings. PAC scripts (for
 * AUTODETECT) run in a QuickJS sandbox through pac-resolver, never in this process's JS engine.
 */
export class ProxySelector {
  readonly #settings: ProxySettings
  readonly #env: NodeJS.ProcessEnv
  readonly #logger: Logger | undefined
  #pac: Promise<FindProxy | undefined> | undefined

  constructor(settings: ProxySettings, env: NodeJS.ProcessEnv, logger?: Logger) {
    this.#settings = settings
    this.#env = env
    this.#logger = logger
  }

  async routeFor(url: URL): Promise<ProxyRoute> {
    switch (this.#settings.usage) {
      case 'NO_PROXY':
        return []
      case 'OVERRIDE':
        return isBypassed(url.hostname, this.#settings.bypass) ? [] : this.#settings.list.map(proxyUri)
      case 'AUTODETECT': {
        this.#pac ??= this.#loadPac()
        const find = await this.#pac
        return find ? parsePacAnswer(await find(url.href)) : preconfiguredRoute(url, this.#env)
      }
      default:
        return preconfiguredRoute(url, this.#env)
    }
  }

  async #loadPac(): Promise<FindProxy | undefined> {
    const location = this.#env.BITS_PAC_URL
    if (!location) {
      this.#logger?.warn('proxy', 'proxy usage AUTODETECT but no PAC script configured (BITS_PAC_URL); using the preconfigured proxy')
      return undefined
    }
    const script = /^https?:\/\//i.test(location) ? await (await request(location)).body.text() : await readFile(location, 'utf8')
    const [{QuickJS}, {createPacResolver}] = await Promise.all([import('quickjs-wasi'), import('pac-resolver')])
    return createPacResolver(await QuickJS.create(), script)
  }
}
