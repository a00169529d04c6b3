import {createInterface} from 'node:readline'
import {BitsError} from '../lib/errors.js'

/**
 * Reads a secret: from `envName` when set, else from a prompt on the terminal with echo off.
 * Never from argv, where other users could read it in the process list.
 */
export async function readSecret(question: string, envName: string): Promise<string> {
  const fromEnv = process.env[envName]
  if (fromEnv !== undefined) return fromEnv
  if (!process.stdin.isTTY) {
    throw new BitsError('USAGE_INVALID_ARG', `No password: ${envName} is not set and standard input is not a terminal`, {
      hint: `Set ${envName} in the environment of this command`,
    })
  }
  const rl = createInterface({input: process.stdin, output: process.stderr, terminal: true})
  const output = rl as unknown as {_writeToOutput: (text: string) => void}
  let muted = false
  output._writeToOutput = (text: string) => {
    if (!muted || text.includes('\n')) process.stderr.write(muted ? '\n' : text)
  }
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, resolve)
      muted = true
    })
  } finally {
    rl.close()
  }
}
