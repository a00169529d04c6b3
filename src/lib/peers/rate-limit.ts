import {Transform, type TransformCallback} from 'node:stream'

/**
 * A byte budget shared by every response of a server: `take(n)` says how long to wait before
 * sending n more bytes so that the total stays under `bytesPerSecond` (a token bucket holding at
 * most one second of bytes).
 */
export class RateLimit {
  readonly #rate: number
  readonly #now: () => number
  #tokens: number
  #last: number

  constructor(bytesPerSecond: number, now: () => number = () => Date.now()) {
    this.#rate = bytesPerSecond
    this.#now = now
    this.#tokens = bytesPerSecond
    this.#last = now()
  }

  /** Milliseconds to wait before `bytes` may go out (0: at once). */
  take(bytes: number): number {
    const now = this.#now()
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#last) / 1000) * this.#rate)
    this.#last = now
    this.#tokens -= bytes
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#rate) * 1000)
  }

  /** A pass-through stream that holds chunks back to respect the budget. */
  throttle(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) => {
        const wait = this.take(chunk.length)
        if (wait === 0) callback(null, chunk)
        else setTimeout(() => callback(null, chunk), wait)
      },
    })
  }
}

/** Parses `--max-rate` values: `500KiB`, `10MiB`, `1000000` (bytes per second). */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?(?:\/s)?$/i.exec(text.trim())
  const units: Record<string, number> = {b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9}
  const value = match ? Math.floor(Number(match[1]) * units[(match[2] ?? 'b').toLowerCase()]!) : Number.NaN
  if (!Number.isFinite(value) || value < 1024) throw new RangeError(`"${text}" is not a rate of at least 1 KiB/s (e.g. 10MiB)`)
  return value
}
