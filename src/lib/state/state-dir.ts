import {mkdir, access, constants} from 'node:fs/promises'
import {homedir} from 'node:os'
import path from 'node:path'
import {BitsError, errnoCode} from '../errors.js'

/** Folder names inside a state directory; `docs/state-dir.md` documents the layout. */
export const StateLayout = {
  jobs: 'jobs',
  cache: 'cache',
  peers: 'peers',
  uploads: 'uploads',
  logs: 'logs',
  settings: 'settings.json',
  daemonPid: 'daemon.pid',
  daemonLock: 'daemon.lock',
} as const

/**
 * The platform's per-user data directory for openbits: XDG on Linux, Application Support on macOS,
 * LOCALAPPDATA on Windows.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const home = homedir()
  if (platform === 'win32') {
    const base = env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local')
    return path.join(base, 'openbits', 'Data')
  }
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'openbits')
  const base = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(home, '.local', 'share')
  return path.join(base, 'openbits')
}

/** Resolves the state directory: the flag, then `BITS_STATE_DIR`, then the platform default. */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env.BITS_STATE_DIR
  return chosen ? path.resolve(chosen) : defaultStateDir(env)
}

/**
 * Creates the state directory (0700: it holds credentials) and checks that it can be written,
 * so that an unusable directory is reported once, by name, instead of as a failure deep inside.
 */
export async function ensureStateDir(stateDir: string, ...subdirs: string[]): Promise<void> {
  try {
    await mkdir(stateDir, {recursive: true, mode: 0o700})
    for (const sub of subdirs) await mkdir(path.join(stateDir, sub), {recursive: true, mode: 0o700})
    await access(stateDir, constants.R_OK | constants.W_OK | constants.X_OK)
  } catch (err) {
    throw new BitsError('STATE_UNREADABLE', `State directory ${stateDir} cannot be used (${errnoCode(err) ?? String(err)})`, {
      cause: err,
      hint: 'Fix its permissions, or choose another with --state-dir or BITS_STATE_DIR',
    })
  }
}
