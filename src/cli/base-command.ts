import {Command, Flags, Errors, type Interfaces} from '@oclif/core'
import {createContext, type LibContext} from '../lib/context.js'
import {BitsError, ExitCode, toBitsError} from '../lib/errors.js'
import {createLogger, LOG_LEVELS, type Logger, type LogLevel} from '../lib/log.js'
import {resolveStateDir} from '../lib/state/state-dir.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/**
 * The one place that turns a command's return value or error into output and an exit status:
 * `--json` prints exactly one envelope document; humans get `Error: …` and `Try: …` on stderr.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    'state-dir': Flags.string({
      summary: 'State directory (jobs, cache, peers). Default: BITS_STATE_DIR, else the per-user data directory.',
      env: 'BITS_STATE_DIR',
      helpGroup: 'GLOBAL',
    }),
    'log-level': Flags.option({
      summary: 'Diagnostics written to stderr.',
      options: LOG_LEVELS,
      default: 'warn' as LogLevel,
      env: 'BITS_LOG_LEVEL',
      helpGroup: 'GLOBAL',
    })(),
  }

  /** Warnings gathered while running, printed in the envelope (JSON) or on stderr (humans). */
  protected warnings: string[] = []
  private logLevel: LogLevel = 'warn'

  /** Builds the library context from the global flags. */
  protected context(flags: {'state-dir'?: string; 'log-level'?: string}): LibContext {
    this.logLevel = (flags['log-level'] as LogLevel | undefined) ?? 'warn'
    return createContext(resolveStateDir(flags['state-dir']), {logger: this.logger(this.logLevel)})
  }

  protected logger(level: LogLevel, format: 'text' | 'json' = 'text'): Logger {
    return createLogger(level, format, (line) => process.stderr.write(line + '\n'))
  }

  /** True when human output goes to a terminal (tables, progress bars). */
  protected get isTty(): boolean {
    return Boolean(process.stdout.isTTY) && !this.jsonEnabled()
  }

  protected warn_(message: string): void {
    this.warnings.push(message)
    if (!this.jsonEnabled()) process.stderr.write(`Warning: ${message}\n`)
  }

  protected override toSuccessJson(result: unknown): unknown {
    return {status: ExitCode.OK, result, warnings: this.warnings}
  }

  protected override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n')
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<void> {
    if (err instanceof Errors.ExitError) throw err
    const bitsError = asBitsError(err)
    process.exitCode = bitsError.exitCode
    if (this.jsonEnabled()) {
      this.logJson({status: bitsError.exitCode, error: bitsError.toJSON(), warnings: this.warnings})
      return
    }
    process.stderr.write(`Error: ${bitsError.message}\n`)
    if (bitsError.hint) process.stderr.write(`Try: ${bitsError.hint}\n`)
    if (this.logLevel === 'debug' && bitsError.stack) process.stderr.write(`${String((bitsError.cause as Error | undefined)?.stack ?? bitsError.stack)}\n`)
  }
}

/** oclif's parse errors carry `oclif.exit` 2: they become USAGE_INVALID_ARG. */
function asBitsError(err: unknown): BitsError {
  if (err instanceof BitsError) return err
  const oclifExit = (err as {oclif?: {exit?: number}}).oclif?.exit
  if (err instanceof Errors.CLIError || oclifExit === 2) {
    return new BitsError('USAGE_INVALID_ARG', (err as Error).message.replace(/\n\s*See more help with --help$/, ''), {
      hint: 'See the command\'s --help for its arguments and flags',
      cause: err,
    })
  }
  return toBitsError(err)
}
