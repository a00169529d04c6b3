import {readFile, readdir, unlink} from 'node:fs/promises'
import path from 'node:path'
import {BitsError, errnoCode, HRESULT} from '../errors.js'
import {JOB_SCHEMA_VERSION, JOB_STATES, type JobRecord} from '../jobs/job.js'
import {assertTransition} from '../jobs/state-machine.js'
import {formatJobId, parseGuid, resolveJobRef} from '../jobs/job-ref.js'
import {writeFileAtomic} from './atomic-write.js'
import {withLock} from './lock.js'
import {ensureStateDir, StateLayout} from './state-dir.js'

/** A job file that could not be read; other jobs keep working. */
export interface JobFileProblem {
  file: string
  error: BitsError
}

export interface JobListing {
  jobs: JobRecord[]
  problems: JobFileProblem[]
}

/**
 * One JSON file per job under `jobs/`. Reads never lock; every read-modify-write runs under the
 * job's own lock file, so concurrent `bits` processes and the daemon never lose each other's
 * updates, and a writer's crash leaves the previous version intact (atomic rename).
 */
export class JobStore {
  readonly dir: string

  constructor(readonly stateDir: string) {
    this.dir = path.join(stateDir, StateLayout.jobs)
  }

  fileOf(id: string): string {
    return path.join(this.dir, `${id}.json`)
  }

  async init(): Promise<void> {
    await ensureStateDir(this.stateDir, StateLayout.jobs)
  }

  /** Every readable job, plus a problem entry naming each file that could not be read. */
  async list(): Promise<JobListing> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return {jobs: [], problems: []}
      throw unreadable(this.dir, err)
    }
    const jobs: JobRecord[] = []
    const problems: JobFileProblem[] = []
    const files = names.filter((name) => name.endsWith('.json') && parseGuid(name.slice(0, -5)))
    await Promise.all(
      files.map(async (name) => {
        const file = path.join(this.dir, name)
        try {
          const job = await this.#readFile(file)
          if (job) jobs.push(job)
        } catch (err) {
          if (err instanceof BitsError) problems.push({file, error: err})
          else throw err
        }
      }),
    )
    jobs.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
    return {jobs, problems}
  }

  /** Reads one job by id; JOB_NOT_FOUND when it does not exist. */
  async read(id: string): Promise<JobRecord> {
    const job = await this.#readFile(this.fileOf(id))
    if (!job) throw notFound(formatJobId(id))
    return job
  }

  /**
   * Resolves a reference (GUID, prefix, name) to a job. A full GUID reads just its file, so a
   * corrupt neighbour cannot get in the way; otherwise a corrupt file only matters when nothing
   * else matches, and then the error names it.
   */
  async resolve(ref: string): Promise<JobRecord> {
    const guid = parseGuid(ref)
    if (guid) {
      const job = await this.#readFile(this.fileOf(guid))
      if (job) return job
    }
    const {jobs, problems} = await this.list()
    try {
      return resolveJobRef(ref, jobs)
    } catch (err) {
      if (err instanceof BitsError && err.code === 'JOB_NOT_FOUND' && problems.length > 0) {
        const [first] = problems
        throw new BitsError('STATE_CORRUPT', `${err.message}; ${problems.length} job file(s) could not be read, first ${first!.file}: ${first!.error.message}`, {
          hint: first!.error.hint,
          cause: first!.error,
        })
      }
      throw err
    }
  }

  async create(job: JobRecord): Promise<void> {
    await this.init()
    await writeFileAtomic(this.fileOf(job.id), serialize(job))
  }

  /**
   * Read-modify-write of one job under its lock. `change` gets a private copy; a state change
   * is checked against the transition table; `modifiedAt` moves when anything changed.
   */
  async update(id: string, change: (job: JobRecord) => JobRecord | void | Promise<JobRecord | void>, now: () => Date = () => new Date(), options: {durable?: boolean} = {}): Promise<JobRecord> {
    return withLock(`${this.fileOf(id)}.lock`, async () => {
      const current = await this.read(id)
      const draft = structuredClone(current)
      const next = (await change(draft)) ?? draft
      if (next.state !== current.state) assertTransition(current.state, next.state, formatJobId(id))
      if (serialize(next) === serialize(current)) return current
      next.modifiedAt = now().toISOString()
      await writeFileAtomic(this.fileOf(id), serialize(next), options)
      return next
    })
  }

  /** Removes a job's file for good (purge of long-final jobs). */
  async remove(id: string): Promise<void> {
    await unlink(this.fileOf(id)).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err
    })
  }

  async #readFile(file: string): Promise<JobRecord | undefined> {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined
      throw unreadable(file, err)
    }
    return parseJobFile(file, text)
  }
}

function serialize(job: JobRecord): string {
  return JSON.stringify(job, null, 2) + '\n'
}

/** Parses and checks a job file; names the file and the fix when it is not a job this version can use. */
export function parseJobFile(file: string, text: string): JobRecord {
  const corrupt = (why: string) =>
    new BitsError('STATE_CORRUPT', `Job file ${file} is unusable: ${why}`, {
      hint: `Move the file out of ${path.dirname(file)} (other jobs are unaffected), or cancel the job if bits can still read it`,
      details: {file},
    })
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw corrupt(text.trim() === '' ? 'it is empty' : `not valid JSON (${(err as Error).message})`)
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw corrupt('not a JSON object')
  const record = data as Partial<JobRecord>
  if (typeof record.schemaVersion !== 'number') throw corrupt('schemaVersion is missing')
  if (record.schemaVersion > JOB_SCHEMA_VERSION) {
    throw new BitsError('STATE_CORRUPT', `Job file ${file} has schemaVersion ${record.schemaVersion}, newer than this openbits understands (${JOB_SCHEMA_VERSION})`, {
      hint: 'Upgrade openbits, or use the newer version that wrote it',
      details: {file},
    })
  }
  if (typeof record.id !== 'string' || !parseGuid(record.id)) throw corrupt('id is not a GUID')
  if (!JOB_STATES.includes(record.state as never)) throw corrupt(`state ${JSON.stringify(record.state)} is not a BITS job state`)
  if (!Array.isArray(record.files)) throw corrupt('files is not a list')
  if (typeof record.displayName !== 'string' || typeof record.createdAt !== 'string') throw corrupt('displayName or createdAt is missing')
  return record as JobRecord
}

function unreadable(file: string, err: unknown): BitsError {
  return new BitsError('STATE_UNREADABLE', `Cannot read ${file} (${errnoCode(err) ?? String(err)})`, {
    cause: err,
    hint: 'Check the permissions of the state directory, or choose another with --state-dir',
  })
}

function notFound(label: string): BitsError {
  return new BitsError('JOB_NOT_FOUND', `No job ${label} (BG_E_NOT_FOUND 0x80200001)`, {
    hresult: HRESULT.BG_E_NOT_FOUND,
    hint: 'List your jobs with "bits list"',
  })
}
