import {Agent, type Dispatcher} from 'undici'
import type {JobRecord} from '../jobs/job.js'

/** Timeouts of the HTTP stack; tests shorten them. */
export interface HttpTimeouts {
  /** @default 30000 */
  connectTimeoutMs?: number
  /** Time to wait for response headers. @default 60000 */
  headersTimeoutMs?: number
  /** Longest silence inside a body before the transfer counts as stalled. @default 60000 */
  bodyTimeoutMs?: number
}

/** The network settings of a job that decide how a connection is made. */
export type JobNetworkSettings = Pick<JobRecord, 'proxy' | 'credentials' | 'customHeaders' | 'securityFlags' | 'httpMethod' | 'caFile' | 'clientCert' | 'clientKey'>

/**
 * Chooses the undici dispatcher for each request of one job. One keep-alive Agent is shared by
 * every file of the job, so files go over a reused connection.
 */
export class DispatcherPool {
  readonly #direct: Agent

  constructor(_settings: JobNetworkSettings, timeouts: HttpTimeouts = {}) {
    this.#direct = new Agent({
      connect: {timeout: timeouts.connectTimeoutMs ?? 30_000},
      headersTimeout: timeouts.headersTimeoutMs ?? 60_000,
      bodyTimeout: timeouts.bodyTimeoutMs ?? 60_000,
      keepAliveTimeout: 10_000,
      connections: 8,
    })
  }

  /** The dispatcher for a request to `url`. */
  for(_url: URL): Dispatcher {
    return this.#direct
  }

  async close(): Promise<void> {
    await this.#direct.close().catch(() => this.#direct.destroy())
  }

  async destroy(): Promise<void> {
    await this.#direct.destroy()
  }
}
