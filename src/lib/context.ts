import {silentLogger, type Logger} from './log.js'

/** What every library call needs from its front-end: where state lives and how to report. */
export interface LibContext {
  stateDir: string
  logger: Logger
  /** The clock; tests pass a fake one. */
  now: () => Date
  env: NodeJS.ProcessEnv
  /** Relative local paths resolve against this (bitsadmin rejects them; we are kinder). */
  cwd: string
}

export function createContext(stateDir: string, overrides: Partial<Omit<LibContext, 'stateDir'>> = {}): LibContext {
  return {
    stateDir,
    logger: overrides.logger ?? silentLogger,
    now: overrides.now ?? (() => new Date()),
    env: overrides.env ?? process.env,
    cwd: overrides.cwd ?? process.cwd(),
  }
}
