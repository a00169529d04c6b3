import path from 'node:path'
import {BitsError} from '../errors.js'
import type {CommandLine, Priority} from './job.js'
import {
  parseBypassList,
  parseCredentialKey,
  parseCredentialSpec,
  parsePeerCachingFlags,
  parseProxySetting,
  parseUnsigned,
  type JobSettingsChange,
  type RedirectPolicy,
} from './job-settings.js'

/** The text flags of `bits set`, as the CLI parsed them. */
export interface SettingsFlags {
  'display-name'?: string
  description?: string
  priority?: string
  'min-retry-delay'?: string
  'no-progress-timeout'?: string
  'max-download-time'?: string
  'notify-flags'?: string
  'notify-cmdline'?: string
  proxy?: string
  'proxy-bypass'?: string
  credentials?: string[]
  'remove-credentials'?: string[]
  'custom-header'?: string[]
  'clear-custom-headers'?: boolean
  'security-flags'?: string
  'redirect-policy'?: RedirectPolicy
  'peer-caching'?: string
  'http-method'?: string
  dynamic?: boolean
  'reply-file'?: string
  parallel?: string
  'ca-file'?: string
  'client-cert'?: string
  'client-key'?: string
}

/** bitsadmin clears a value with the word NULL; an empty string does the same here. */
function isClear(text: string): boolean {
  return text === '' || text.toUpperCase() === 'NULL'
}

function seconds(text: string | undefined, what: string): number | null | undefined {
  if (text === undefined) return undefined
  if (text.toLowerCase() === 'default') return null
  if (!/^\d+$/.test(text)) throw new BitsError('USAGE_INVALID_ARG', `${what} must be a whole number of seconds or "default", got "${text}"`, {hint: `e.g. --${what} 600`})
  return Number(text)
}

function optionalPath(text: string | undefined, cwd: string): string | null | undefined {
  if (text === undefined) return undefined
  return isClear(text) ? null : path.resolve(cwd, text)
}

/**
 * Turns `bits set` flags into a settings change. Credential specs are checked here, before any
 * password is asked for; `passwords[i]` belongs to `flags.credentials[i]`.
 */
export function buildSettingsChange(flags: SettingsFlags, passwords: string[], parseCmdLine: (text: string) => CommandLine, cwd: string): JobSettingsChange {
  const change: JobSettingsChange = {}
  if (flags['display-name'] !== undefined) change.displayName = flags['display-name']
  if (flags.description !== undefined) change.description = flags.description
  if (flags.priority !== undefined) change.priority = flags.priority.toUpperCase() as Priority
  change.minRetryDelay = seconds(flags['min-retry-delay'], 'min-retry-delay')
  change.noProgressTimeout = seconds(flags['no-progress-timeout'], 'no-progress-timeout')
  change.maxDownloadTime = seconds(flags['max-download-time'], 'max-download-time')
  if (flags['notify-flags'] !== undefined) change.notifyFlags = flags['notify-flags'] === 'default' ? null : parseUnsigned(flags['notify-flags'], 'Notify flags')
  if (flags['notify-cmdline'] !== undefined) change.notifyCmdLine = isClear(flags['notify-cmdline']) ? null : parseCmdLine(flags['notify-cmdline'])
  if (flags.proxy !== undefined) change.proxy = parseProxySetting(flags.proxy)
  if (flags['proxy-bypass'] !== undefined) change.proxyBypass = isClear(flags['proxy-bypass']) ? null : parseBypassList(flags['proxy-bypass'])
  if (flags.credentials) {
    change.setCredentials = flags.credentials.map((spec, index) => {
      const parsed = parseCredentialSpec(spec)
      return {...parsed, password: passwords[index] ?? ''}
    })
  }
  if (flags['remove-credentials']) change.removeCredentials = flags['remove-credentials'].map(parseCredentialKey)
  if (flags['custom-header']) change.customHeaders = flags['custom-header']
  if (flags['clear-custom-headers']) change.customHeaders = null
  if (flags['security-flags'] !== undefined) change.securityFlags = flags['security-flags'] === 'default' ? null : parseUnsigned(flags['security-flags'], 'Security flags')
  if (flags['redirect-policy'] !== undefined) change.redirectPolicy = flags['redirect-policy']
  if (flags['peer-caching'] !== undefined) change.peerCachingFlags = parsePeerCachingFlags(flags['peer-caching'])
  if (flags['http-method'] !== undefined) change.httpMethod = isClear(flags['http-method']) ? null : flags['http-method']
  if (flags.dynamic !== undefined) change.dynamicContent = flags.dynamic
  if (flags['reply-file'] !== undefined) change.replyFileName = optionalPath(flags['reply-file'], cwd)
  if (flags.parallel !== undefined) change.parallel = flags.parallel === 'default' ? null : Number(flags.parallel)
  change.caFile = optionalPath(flags['ca-file'], cwd)
  change.clientCert = optionalPath(flags['client-cert'], cwd)
  change.clientKey = optionalPath(flags['client-key'], cwd)
  for (const key of Object.keys(change) as (keyof JobSettingsChange)[]) if (change[key] === undefined) delete change[key]
  if (Object.keys(change).length === 0) throw new BitsError('USAGE_INVALID_ARG', 'No property to set', {hint: 'Pass at least one flag; see bits set --help'})
  return change
}
