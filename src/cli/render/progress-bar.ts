import {formatBytes} from './job.js'

/**
 * A one-line progress bar for a terminal (bytes, rate, ETA), redrawn in place on stderr so that
 * stdout stays clean for the result.
 */
export class ProgressBar {
  readonly #stream: NodeJS.WriteStream
  #startedAt = Date.now()
  #samples: {at: number; bytes: number}[] = []
  #lastDraw = 0

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream
  }

  update(done: number, total: number | null, label: string): void {
    const now = Date.now()
    this.#samples.push({at: now, bytes: done})
    while (this.#samples.length > 2 && now - this.#samples[0]!.at > 5000) this.#samples.shift()
    if (now - this.#lastDraw < 100 && (total === null || done < total)) return
    this.#lastDraw = now
    const first = this.#samples[0]!
    const seconds = (now - first.at) / 1000
    const rate = seconds > 0 ? (done - first.bytes) / seconds : 0
    const width = 24
    const fraction = total ? Math.min(1, done / total) : 0
    const bar = total ? '#'.repeat(Math.round(fraction * width)).padEnd(width, '.') : '?'.repeat(width)
    const eta = total && rate > 0 ? `ETA ${formatDuration((total - done) / rate)}` : ''
    const percent = total ? `${(fraction * 100).toFixed(0).padStart(3)}%` : '   ?'
    const line = `${label} [${bar}] ${percent} ${formatBytes(done)} / ${formatBytes(total)}  ${formatBytes(Math.round(rate))}/s ${eta}`
    this.#stream.write(`\r${line.slice(0, (this.#stream.columns || 100) - 1).padEnd(Math.min(line.length + 2, (this.#stream.columns || 100) - 1))}`)
  }

  done(message: string): void {
    const elapsed = formatDuration((Date.now() - this.#startedAt) / 1000)
    this.#stream.write(`\r\x1b[2K${message} in ${elapsed}\n`)
  }

  clear(): void {
    this.#stream.write('\r\x1b[2K')
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`
  const minutes = Math.floor(seconds / 60)
  return minutes < 60 ? `${minutes}m${Math.round(seconds % 60)}s` : `${Math.floor(minutes / 60)}h${minutes % 60}m`
}
