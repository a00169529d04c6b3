import {spawn} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  /** stdout parsed as the one --json document, when it parses. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read the documented --json shapes
  json: any
}

export interface CliOptions {
  stateDir: string
  env?: NodeJS.ProcessEnv
  cwd?: string
  input?: string
  timeoutMs?: number
  /** Run inside this network namespace (ip netns exec; the test made it). */
  netns?: string
}

/** The command line that runs `bits`, inside a network namespace when asked. */
export function bitsCommand(args: string[], netns?: string): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, process.execPath, BIN, ...args]] : [process.execPath, [BIN, ...args]]
}

/** Runs the built `bits` binary as a real process against a state directory. */
export function runCli(args: string[], options: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [command, argv] = bitsCommand(args, options.netns)
    const child = spawn(command, argv, {
      cwd: options.cwd ?? process.cwd(),
      env: {...process.env, BITS_STATE_DIR: options.stateDir, BITS_NO_DAEMON: '1', ...options.env},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      let json: unknown
      try {
        json = JSON.parse(stdout)
      } catch {
        json = undefined
      }
      resolve({code, stdout, stderr, json})
    })
    child.stdin.end(options.input ?? '')
  })
}
