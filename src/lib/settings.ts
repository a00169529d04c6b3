import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {BitsError} from './errors.js'
import {StateLayout} from './state/state-dir.js'

/** User settings of a state directory (`settings.json`, managed by conf). */
export interface Settings {
  /** Start `bits serve` in the background when work is queued and no daemon runs. */
  autoStartDaemon: boolean
  /** Background jobs transferring at once (BITS: 1). */
  maxBackgroundJobs: number
  /** A background job's turn when others of its priority wait, in seconds. */
  timeSliceSeconds: number
  /** A background-started daemon exits after the queue was idle this long, in seconds. */
  idleExitSeconds: number
  /** Peer-caching flags given to new jobs (1 client, 2 server). */
  defaultPeerCachingFlags: number
  /** Files one job may hold (BITS MaxFilesPerJob policy: 200). */
  maxFilesPerJob: number
  /** The user's proxy settings for PRECONFIG jobs, used where the environment sets none. */
  httpProxy: string
  httpsProxy: string
  noProxy: string
  /** PAC script (URL or file) for AUTODETECT jobs, where BITS_PAC_URL is not set. */
  pacUrl: string
  /** [MS-BPDP] multicast discovery by peer servers and searches; BITS_PEER_DISCOVERY=off overrides it. */
  peerDiscovery: boolean
}

export const SETTING_DEFAULTS: Settings = {
  autoStartDaemon: true,
  maxBackgroundJobs: 1,
  timeSliceSeconds: 30,
  idleExitSeconds: 60,
  defaultPeerCachingFlags: 0,
  maxFilesPerJob: 200,
  httpProxy: '',
  httpsProxy: '',
  noProxy: '',
  pacUrl: '',
  peerDiscovery: true,
}

const SCHEMA = {
  autoStartDaemon: {type: 'boolean'},
  maxBackgroundJobs: {type: 'integer', minimum: 1, maximum: 64},
  timeSliceSeconds: {type: 'integer', minimum: 1},
  idleExitSeconds: {type: 'integer', minimum: 1},
  defaultPeerCachingFlags: {type: 'integer', minimum: 0, maximum: 7},
  maxFilesPerJob: {type: 'integer', minimum: 1, maximum: 100_000},
  httpProxy: {type: 'string'},
  httpsProxy: {type: 'string'},
  noProxy: {type: 'string'},
  pacUrl: {type: 'string'},
  peerDiscovery: {type: 'boolean'},
} as const

export type SettingName = keyof Settings

// conf pulls in a JSON-schema validator: load it only when settings are used, not on every start.
async function openStore(stateDir: string) {
  const {default: Conf} = await import('conf')
  try {
    return new Conf<Settings>({cwd: stateDir, configName: path.basename(StateLayout.settings, '.json'), schema: SCHEMA, defaults: SETTING_DEFAULTS, projectSuffix: ''})
  } catch (err) {
    throw new BitsError('STATE_CORRUPT', `Settings file ${path.join(stateDir, StateLayout.settings)} is unusable: ${(err as Error).message}`, {
      hint: 'Fix or delete the file; defaults apply without it',
      cause: err,
    })
  }
}

/**
 * Reads the settings. conf writes plain JSON, so reading needs no schema machinery: a read costs
 * one small file, which matters on every `bits create` and `resume`. A file that does not parse is
 * reported by name.
 */
export async function readSettings(stateDir: string): Promise<Settings> {
  const file = path.join(stateDir, StateLayout.settings)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return {...SETTING_DEFAULTS}
  }
  try {
    return {...SETTING_DEFAULTS, ...(JSON.parse(text) as Partial<Settings>)}
  } catch (err) {
    throw new BitsError('STATE_CORRUPT', `Settings file ${file} is unusable: ${(err as Error).message}`, {hint: 'Fix or delete the file; defaults apply without it', cause: err})
  }
}

/** Parses and stores one setting from its text form. */
export async function writeSetting(stateDir: string, name: string, text: string): Promise<Settings> {
  if (!(name in SETTING_DEFAULTS)) {
    throw new BitsError('USAGE_INVALID_ARG', `Unknown setting "${name}"`, {hint: `Settings: ${Object.keys(SETTING_DEFAULTS).join(', ')}`})
  }
  const key = name as SettingName
  const kind = typeof SETTING_DEFAULTS[key]
  const value: unknown = kind === 'boolean' ? parseBoolean(text) : kind === 'string' ? text : Number(text)
  const store = await openStore(stateDir)
  try {
    store.set(key, value as never)
  } catch (err) {
    throw new BitsError('USAGE_INVALID_ARG', `Invalid value "${text}" for ${name}: ${(err as Error).message}`, {hint: `e.g. bits settings ${name} ${String(SETTING_DEFAULTS[key])}`})
  }
  return {...SETTING_DEFAULTS, ...store.store}
}

/**
 * The environment jobs see: the process environment, with the user's proxy settings filling in
 * what it does not set (environment variables win, as for curl).
 */
export function proxyEnvironment(settings: Settings, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const fill = (name: string, value: string) => (value && env[name] === undefined && env[name.toLowerCase()] === undefined ? {[name]: value} : {})
  return {...fill('HTTP_PROXY', settings.httpProxy), ...fill('HTTPS_PROXY', settings.httpsProxy), ...fill('NO_PROXY', settings.noProxy), ...(settings.pacUrl && !env.BITS_PAC_URL ? {BITS_PAC_URL: settings.pacUrl} : {}), ...env}
}

function parseBoolean(text: string): boolean | string {
  if (/^(true|on|yes|1)$/i.test(text)) return true
  if (/^(false|off|no|0)$/i.test(text)) return false
  return text
}
