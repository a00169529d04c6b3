/**
 * The logger the library talks to. The library never writes to the terminal itself: a front-end
 * (the CLI, the daemon) passes a logger whose sink decides where lines go.
 */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
export type LogFormat = 'text' | 'json'

export interface Logger {
  error(subject: string, message: string, fields?: Record<string, unknown>): void
  warn(subject: string, message: string, fields?: Record<string, unknown>): void
  info(subject: string, message: string, fields?: Record<string, unknown>): void
  debug(subject: string, message: string, fields?: Record<string, unknown>): void
}

const SECRET_FIELD = /password|authorization|secret|token|key$/i

/** Never lets a secret reach a log line, whatever the caller passed. */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(fields)) out[name] = SECRET_FIELD.test(name) ? '[redacted]' : value
  return out
}

/** A logger that formats lines at or above `level` and hands them to `sink`. */
export function createLogger(level: LogLevel, format: LogFormat, sink: (line: string) => void, now: () => Date = () => new Date()): Logger {
  const threshold = LOG_LEVELS.indexOf(level)
  const emit = (lvl: LogLevel) => (subject: string, message: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(lvl) > threshold) return
    const safe = fields ? redactFields(fields) : undefined
    if (format === 'json') {
      sink(JSON.stringify({time: now().toISOString(), level: lvl, subject, message, ...safe}))
    } else {
      const extra = safe && Object.keys(safe).length > 0 ? ' ' + Object.entries(safe).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : ''
      sink(`${now().toISOString()} ${lvl.toUpperCase()} ${subject}: ${message}${extra}`)
    }
  }
  return {error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug')}
}

export const silentLogger: Logger = createLogger('error', 'text', () => undefined)
