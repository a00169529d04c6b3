/**
 * Runs long work with the two-stage stop every daemon-like command shares: the first SIGINT or
 * SIGTERM asks for a graceful stop (the work's signal aborts with 'graceful'), a second one
 * forces it ('force').
 */
export async function runUntilSignalled<T>(work: (signal: {graceful: AbortSignal; force: AbortSignal}) => Promise<T>): Promise<T> {
  const graceful = new AbortController()
  const force = new AbortController()
  const onSignal = (name: NodeJS.Signals) => {
    if (!graceful.signal.aborted) {
      process.stderr.write(`Received ${name}: stopping gracefully (send it again to force)\n`)
      graceful.abort('graceful')
    } else {
      force.abort('force')
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    return await work({graceful: graceful.signal, force: force.signal})
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
