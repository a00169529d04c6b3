import path from 'node:path'
import {BitsError} from '../errors.js'
import type {CommandLine} from './job.js'

/**
 * Splits a notify command line into program and arguments the way a POSIX shell would quote,
 * without running a shell: double and single quotes group, backslash escapes inside double
 * quotes and outside quotes. The program is never looked up on PATH (BITS uses no search path).
 */
export function parseCommandLine(text: string, cwd: string): CommandLine {
  const tokens: string[] = []
  let current = ''
  let inToken = false
  let quote: '"' | "'" | null = null
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quote === "'") {
      if (ch === "'") quote = null
      else current += ch
    } else if (quote === '"') {
      if (ch === '"') quote = null
      else if (ch === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) current += text[++i]
      else current += ch
    } else if (ch === '"' || ch === "'") {
      quote = ch
      inToken = true
    } else if (ch === '\\' && i + 1 < text.length && process.platform !== 'win32') {
      current += text[++i]
      inToken = true
    } else if (/\s/.test(ch)) {
      if (inToken) tokens.push(current)
      current = ''
      inToken = false
    } else {
      current += ch
      inToken = true
    }
  }
  if (quote) throw new BitsError('USAGE_INVALID_ARG', `Notify command line has an unclosed ${quote} quote: ${text}`, {hint: 'Close the quote, e.g. --notify-cmdline "/usr/bin/logger \'job done\'"'})
  if (inToken) tokens.push(current)
  const [program, ...args] = tokens
  if (!program) throw new BitsError('USAGE_INVALID_ARG', 'Notify command line is empty', {hint: 'Pass a program path, or NULL to clear it'})
  return {program: path.resolve(cwd, program), args}
}

/** Renders a command line back into one string that `parseCommandLine` reads the same way. */
export function formatCommandLine(line: CommandLine): string {
  const quote = (token: string) => (/^[\w@%+=:,./-]+$/.test(token) ? token : `'${token.replaceAll("'", `'\\''`)}'`)
  return [line.program, ...line.args].map(quote).join(' ')
}
