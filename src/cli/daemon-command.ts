import path from 'node:path'
import type {Config} from '@oclif/core'
import type {DaemonCommand} from '../lib/server/daemon-launcher.js'

/** How this installation starts `bits serve` in the background for a state directory. */
export function backgroundDaemonCommand(config: Config, stateDir: string, idleExitSeconds: number): DaemonCommand {
  return {
    executable: process.execPath,
    args: [path.join(config.root, 'bin', 'run.js'), 'serve', '--state-dir', stateDir, '--exit-when-idle', String(idleExitSeconds), '--quiet-if-running'],
  }
}
