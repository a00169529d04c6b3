import {BitsError, HRESULT} from '../errors.js'
import {
  CREDENTIAL_SCHEMES,
  CREDENTIAL_TARGETS,
  JobDefaults,
  JobLimits,
  NOTIFY_FLAGS_VALID_MASK,
  PRIORITIES,
  PROXY_USAGES,
  SECURITY_FLAGS_VALID_MASK,
  SecurityFlag,
  type CommandLine,
  type CredentialScheme,
  type CredentialTarget,
  type JobRecord,
  type Priority,
  type ProxyUsage,
} from './job.js'

/**
 * A change to a job's properties, as `bits set` gathers it from its flags. `null` clears a
 * property back to its default; `undefined` leaves it alone.
 */
export interface JobSettingsChange {
  displayName?: string
  description?: string
  priority?: Priority
  minRetryDelay?: number | null
  noProgressTimeout?: number | null
  maxDownloadTime?: number | null
  notifyFlags?: number | null
  notifyCmdLine?: CommandLine | null
  proxy?: {usage: ProxyUsage; list: string[]} | null
  proxyBypass?: string[] | null
  setCredentials?: {target: CredentialTarget; scheme: CredentialScheme; username: string; password: string}[]
  removeCredentials?: {target: CredentialTarget; scheme: CredentialScheme}[]
  customHeaders?: string[] | null
  securityFlags?: number | null
  redirectPolicy?: RedirectPolicy
  peerCachingFlags?: number | null
  httpMethod?: string | null
  dynamicContent?: boolean
  replyFileName?: string | null
  parallel?: number | null
  caFile?: string | null
  clientCert?: string | null
  clientKey?: string | null
}

export const REDIRECT_POLICIES = ['allow-silent', 'allow-report', 'disallow'] as const
export type RedirectPolicy = (typeof REDIRECT_POLICIES)[number]
const REDIRECT_BITS: Record<RedirectPolicy, number> = {
  'allow-silent': SecurityFlag.REDIRECT_POLICY_ALLOW_SILENT,
  'allow-report': SecurityFlag.REDIRECT_POLICY_ALLOW_REPORT,
  disallow: SecurityFlag.REDIRECT_POLICY_DISALLOW,
}

/** Schemes openbits can answer a challenge with; the others are refused at `set` time. */
export const SUPPORTED_CREDENTIAL_SCHEMES: readonly CredentialScheme[] = ['BASIC', 'DIGEST']

/** Header names BITS itself owns on every request: a custom header may not replace them. */
const RESERVED_HEADERS = new Set(['host', 'range', 'if-range', 'authorization', 'proxy-authorization', 'content-length', 'transfer-encoding', 'connection'])

function invalid(message: string, hint: string, hresult: number = HRESULT.E_INVALIDARG): BitsError {
  return new BitsError('USAGE_INVALID_ARG', message, {hint, hresult})
}

function tooLong(what: string, limit: number, unit = 'characters'): BitsError {
  return new BitsError('USAGE_STRING_TOO_LONG', `${what} is longer than ${limit} ${unit} (BG_E_STRING_TOO_LONG 0x80200021)`, {
    hresult: HRESULT.BG_E_STRING_TOO_LONG,
    hint: `Shorten it to at most ${limit} ${unit}`,
  })
}

export function checkDisplayName(name: string): string {
  if (name.length === 0) throw invalid('Display name is empty', 'Give the job a name, e.g. bits create nightly')
  if (name.length > JobLimits.displayName) throw tooLong('Display name', JobLimits.displayName)
  return name
}

export function checkDescription(text: string): string {
  if (text.length > JobLimits.description) throw tooLong('Description', JobLimits.description)
  return text
}

function checkSeconds(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw invalid(`${what} must be a whole number of seconds from 0 to 4294967295, got ${value}`, `e.g. --${what.toLowerCase().replaceAll(' ', '-')} 600`)
  return value
}

export function parseProxyList(text: string): string[] {
  const list = text.split(/[\s,;]+/).filter(Boolean)
  for (const entry of list) {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ? entry : `http://${entry}`
    let url: URL
    try {
      url = new URL(withScheme)
    } catch {
      throw invalid(`Proxy "${entry}" is not a host[:port] or URL (BG_E_INVALID_PROXY_INFO 0x8020003F)`, 'e.g. --proxy override:http://proxy.example:3128', HRESULT.BG_E_INVALID_PROXY_INFO)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw invalid(`Proxy "${entry}" uses ${url.protocol}; only http and https proxies are supported`, 'e.g. --proxy override:http://proxy.example:3128', HRESULT.BG_E_INVALID_PROXY_INFO)
    }
  }
  if (text.length > JobLimits.proxyList) throw tooLong('Proxy list', JobLimits.proxyList)
  return list
}

/** Parses `--proxy USAGE[:LIST]`, e.g. `override:http://p:3128` or `no_proxy`. */
export function parseProxySetting(text: string): {usage: ProxyUsage; list: string[]} {
  const colon = text.indexOf(':')
  const word = (colon < 0 ? text : text.slice(0, colon)).toUpperCase().replace('-', '_')
  const usage = PROXY_USAGES.find((candidate) => candidate === word || (candidate === 'NO_PROXY' && word === 'DIRECT'))
  if (!usage) throw invalid(`Proxy usage "${text}" is not one of ${PROXY_USAGES.join(', ').toLowerCase()}`, 'e.g. --proxy override:http://127.0.0.1:3128 or --proxy no_proxy')
  const list = colon < 0 ? [] : parseProxyList(text.slice(colon + 1))
  if (usage === 'OVERRIDE' && list.length === 0) throw invalid('Proxy usage OVERRIDE needs a proxy list (BG_E_INVALID_PROXY_INFO 0x8020003F)', 'e.g. --proxy override:http://127.0.0.1:3128', HRESULT.BG_E_INVALID_PROXY_INFO)
  if (usage !== 'OVERRIDE' && list.length > 0) throw invalid(`Proxy usage ${usage} takes no proxy list`, 'Only override takes a list', HRESULT.BG_E_INVALID_PROXY_INFO)
  return {usage, list}
}

export function parseBypassList(text: string): string[] {
  if (text.length > JobLimits.proxyList) throw tooLong('Proxy bypass list', JobLimits.proxyList)
  return text.split(/[\s,;]+/).filter(Boolean)
}

/** Parses `TARGET:SCHEME:USER` (password supplied separately, never from argv). */
export function parseCredentialSpec(text: string): {target: CredentialTarget; scheme: CredentialScheme; username: string} {
  const [targetText, schemeText, ...userParts] = text.split(':')
  const target = CREDENTIAL_TARGETS.find((value) => value === targetText?.toUpperCase())
  const scheme = CREDENTIAL_SCHEMES.find((value) => value === schemeText?.toUpperCase())
  const username = userParts.join(':')
  if (!target || !scheme) throw invalid(`Credentials "${text}" are not TARGET:SCHEME:USER`, 'e.g. --credentials server:basic:alice (target server|proxy, scheme basic|digest)')
  checkScheme(scheme)
  if (userParts.length > 0 && username.length === 0) throw invalid('User name is empty', 'Basic and Digest need a user name (BITS E_INVALIDARG)')
  if (username.length > JobLimits.userName) throw tooLong('User name', JobLimits.userName)
  return {target, scheme, username}
}

/** Parses `TARGET:SCHEME` for removal. */
export function parseCredentialKey(text: string): {target: CredentialTarget; scheme: CredentialScheme} {
  const [targetText, schemeText] = text.split(':')
  const target = CREDENTIAL_TARGETS.find((value) => value === targetText?.toUpperCase())
  const scheme = CREDENTIAL_SCHEMES.find((value) => value === schemeText?.toUpperCase())
  if (!target || !scheme) throw invalid(`"${text}" is not TARGET:SCHEME`, 'e.g. --remove-credentials server:basic')
  return {target, scheme}
}

function checkScheme(scheme: CredentialScheme): void {
  if (SUPPORTED_CREDENTIAL_SCHEMES.includes(scheme)) return
  throw new BitsError('USAGE_UNSUPPORTED', `Authentication scheme ${scheme} is not supported by openbits; only BASIC and DIGEST are`, {
    hresult: HRESULT.E_NOTIMPL,
    hint: 'Use basic or digest, over https for basic',
  })
}

/** Checks one `Name: value` header line. */
export function checkHeaderLine(line: string): string {
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*)$/.exec(line)
  if (!match || /[\r\n\0]/.test(line)) throw invalid(`Custom header "${line}" is not a "Name: value" line`, 'e.g. --custom-header "X-Request-Id: 42"')
  if (RESERVED_HEADERS.has(match[1]!.toLowerCase())) throw invalid(`Custom header ${match[1]} is set by bits itself and cannot be replaced`, 'Use --credentials for authentication; ranges and host come from the URL')
  return `${match[1]}: ${match[2]}`
}

export function parseUnsigned(text: string, what: string): number {
  const value = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(value) || value > 0xffffffff) throw invalid(`${what} must be a whole number (decimal or 0x hex), got "${text}"`, `e.g. 0x0001`)
  return value
}

/** Parses `client,server`, `none` or a number into peer-caching flags. */
export function parsePeerCachingFlags(text: string): number {
  if (/^(0x[0-9a-f]+|\d+)$/i.test(text)) {
    const value = parseUnsigned(text, 'Peer-caching flags')
    if (value & ~0x7) throw invalid(`Peer-caching flags ${text} has unknown bits`, 'Use client (1), server (2), disable-branch-cache (4)', HRESULT.E_NOTIMPL)
    return value
  }
  let flags = 0
  for (const word of text.toLowerCase().split(/[\s,|]+/).filter(Boolean)) {
    if (word === 'none') continue
    if (word === 'client') flags |= 1
    else if (word === 'server') flags |= 2
    else if (word === 'disable-branch-cache') flags |= 4
    else throw invalid(`Peer-caching flag "${word}" is not client, server or none`, 'e.g. --peer-caching client,server')
  }
  return flags
}

/** Applies a checked change to a job record in place. */
export function applySettings(job: JobRecord, change: JobSettingsChange): void {
  if (change.displayName !== undefined) job.displayName = checkDisplayName(change.displayName)
  if (change.description !== undefined) job.description = checkDescription(change.description)
  if (change.httpMethod !== undefined) {
    const method = (change.httpMethod ?? 'GET').toUpperCase()
    if (!/^[!#$%&'*+.^_`|~0-9A-Z-]+$/.test(method)) throw invalid(`HTTP method "${change.httpMethod}" is not a token`, 'e.g. --http-method GET')
    if (method !== 'GET' && job.dynamicContent) throw invalid('A custom HTTP method cannot be combined with dynamic content', 'Turn off --dynamic first')
    job.httpMethod = method
    // BITS 10.2: a custom verb forces FOREGROUND for good.
    if (method !== 'GET') job.priority = 'FOREGROUND'
  }
  if (change.priority !== undefined) {
    if (!PRIORITIES.includes(change.priority)) throw invalid(`Priority "${change.priority}" is not one of ${PRIORITIES.join(', ')}`, 'e.g. --priority high')
    if (job.httpMethod !== 'GET' && change.priority !== 'FOREGROUND') throw invalid(`Job uses HTTP method ${job.httpMethod}, which keeps it FOREGROUND`, 'Set --http-method GET first')
    job.priority = change.priority
  }
  if (change.minRetryDelay !== undefined) {
    const value = change.minRetryDelay === null ? JobDefaults.minRetryDelay : checkSeconds('Min retry delay', change.minRetryDelay)
    job.minRetryDelay = Math.max(value, JobDefaults.minRetryDelayFloor)
  }
  if (change.noProgressTimeout !== undefined) job.noProgressTimeout = change.noProgressTimeout === null ? JobDefaults.noProgressTimeout : checkSeconds('No progress timeout', change.noProgressTimeout)
  if (change.maxDownloadTime !== undefined) job.maxDownloadTime = change.maxDownloadTime === null ? JobDefaults.maxDownloadTime : checkSeconds('Max download time', change.maxDownloadTime)
  if (change.notifyFlags !== undefined) {
    const flags = change.notifyFlags ?? JobDefaults.notifyFlags
    if (flags & ~NOTIFY_FLAGS_VALID_MASK) throw invalid(`Notify flags ${flags} has unknown bits`, 'Use 1 transferred, 2 error, 4 disable, 8 modification; e.g. 3', HRESULT.E_NOTIMPL)
    job.notifyFlags = flags
  }
  if (change.notifyCmdLine !== undefined) {
    const line = change.notifyCmdLine
    if (line && line.program.length > JobLimits.notifyProgram) throw tooLong('Notify program', JobLimits.notifyProgram)
    if (line && line.args.join(' ').length > JobLimits.notifyArgs) throw tooLong('Notify arguments', JobLimits.notifyArgs)
    job.notifyCmdLine = line
  }
  if (change.proxy !== undefined) {
    const proxy = change.proxy ?? {usage: 'PRECONFIG' as const, list: []}
    job.proxy = {usage: proxy.usage, list: proxy.list, bypass: proxy.usage === 'OVERRIDE' ? job.proxy.bypass : []}
  }
  if (change.proxyBypass !== undefined) {
    if (change.proxyBypass && change.proxyBypass.length > 0 && job.proxy.usage !== 'OVERRIDE') throw invalid('A proxy bypass list needs proxy usage OVERRIDE', 'Pass --proxy override:http://host:port with it', HRESULT.BG_E_INVALID_PROXY_INFO)
    job.proxy.bypass = change.proxyBypass ?? []
  }
  for (const removal of change.removeCredentials ?? []) {
    job.credentials = job.credentials.filter((cred) => cred.target !== removal.target || cred.scheme !== removal.scheme)
  }
  for (const cred of change.setCredentials ?? []) {
    checkScheme(cred.scheme)
    if (!cred.username || !cred.password) throw invalid(`${cred.scheme} credentials need a user name and a password`, 'Set BITS_PASSWORD or answer the prompt')
    if (cred.password.length > JobLimits.password) throw tooLong('Password', JobLimits.password)
    job.credentials = [...job.credentials.filter((old) => old.target !== cred.target || old.scheme !== cred.scheme), cred]
  }
  if (change.customHeaders !== undefined) {
    const headers = (change.customHeaders ?? []).map(checkHeaderLine)
    const bytes = Buffer.byteLength(headers.map((line) => line + '\r\n').join('')) + 1
    if (bytes > JobLimits.customHeadersBytes) throw tooLong('Custom headers', JobLimits.customHeadersBytes, 'bytes')
    job.customHeaders = headers
  }
  if (change.securityFlags !== undefined) {
    const flags = change.securityFlags ?? 0
    if (flags & ~SECURITY_FLAGS_VALID_MASK || (flags & SecurityFlag.REDIRECT_POLICY_MASK) === 0x300) {
      throw invalid(`Security flags 0x${flags.toString(16)} has unknown bits`, 'See "bits set --help" for the flag values', HRESULT.E_NOTIMPL)
    }
    job.securityFlags = flags
  }
  if (change.redirectPolicy !== undefined) {
    job.securityFlags = (job.securityFlags & ~SecurityFlag.REDIRECT_POLICY_MASK) | REDIRECT_BITS[change.redirectPolicy]
  }
  if (change.peerCachingFlags !== undefined) job.peerCachingFlags = change.peerCachingFlags ?? 0
  if (change.dynamicContent !== undefined) {
    if (change.dynamicContent && job.type !== 'download') throw invalid('Dynamic content applies to download jobs only', 'Create a download job for it')
    if (change.dynamicContent && job.httpMethod !== 'GET') throw invalid('Dynamic content cannot be combined with a custom HTTP method', 'Set --http-method GET first')
    job.dynamicContent = change.dynamicContent
  }
  if (change.replyFileName !== undefined) {
    if (change.replyFileName !== null && job.type !== 'upload-reply') throw invalid('A reply file name applies to upload-reply jobs only', 'Create the job with --upload-reply')
    job.replyFileName = change.replyFileName
  }
  if (change.parallel !== undefined) {
    const value = change.parallel ?? JobDefaults.parallel
    if (!Number.isInteger(value) || value < 1 || value > JobLimits.parallel) throw invalid(`Parallel must be 1 to ${JobLimits.parallel}, got ${value}`, 'e.g. --parallel 4')
    job.parallel = value
  }
  if (change.caFile !== undefined) job.caFile = change.caFile
  if (change.clientCert !== undefined) job.clientCert = change.clientCert
  if (change.clientKey !== undefined) job.clientKey = change.clientKey
}
