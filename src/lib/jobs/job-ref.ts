import {BitsError, HRESULT} from '../errors.js'

/** What a job reference is resolved against: the id and name of each job. */
export interface JobIdentity {
  id: string
  displayName: string
}

const GUID = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i
const GUID_PREFIX = /^\{?([0-9a-f-]{4,36})$/i

/** Normalises a GUID with or without braces to the lower-case bare form job files use. */
export function parseGuid(text: string): string | undefined {
  return GUID.exec(text.trim())?.[1]?.toLowerCase()
}

/** Formats a job id the way BITS prints it: upper case, in braces. */
export function formatJobId(id: string): string {
  return `{${id.toUpperCase()}}`
}

/**
 * Resolves what the user typed to one job: a GUID (braces optional), a unique GUID prefix of at
 * least 4 characters, or a display name. Names need not be unique in BITS, so an ambiguous name
 * is an error that lists the candidates by id.
 */
export function resolveJobRef<T extends JobIdentity>(ref: string, jobs: readonly T[]): T {
  const trimmed = ref.trim()
  if (!trimmed) throw new BitsError('USAGE_INVALID_ARG', 'Job reference is empty', {hint: 'Name a job by GUID, GUID prefix or display name'})

  const guid = parseGuid(trimmed)
  if (guid) {
    const exact = jobs.find((job) => job.id === guid)
    if (exact) return exact
  }

  const byName = jobs.filter((job) => job.displayName === trimmed)
  const prefix = GUID_PREFIX.exec(trimmed)?.[1]?.toLowerCase()
  const byPrefix = prefix && !guid ? jobs.filter((job) => job.id.startsWith(prefix)) : []

  const candidates = [...new Map([...byName, ...byPrefix].map((job) => [job.id, job])).values()]
  if (candidates.length === 1) return candidates[0]!
  if (candidates.length > 1) {
    const list = candidates.map((job) => `${formatJobId(job.id)} ${job.displayName}`)
    throw new BitsError('USAGE_AMBIGUOUS_JOB', `"${trimmed}" matches ${candidates.length} jobs: ${list.join(', ')}`, {
      hint: 'Name the job by its GUID or a longer GUID prefix',
      details: {candidates: candidates.map((job) => ({id: job.id, displayName: job.displayName}))},
    })
  }
  throw new BitsError('JOB_NOT_FOUND', `No job matches "${trimmed}" (BG_E_NOT_FOUND 0x80200001)`, {
    hresult: HRESULT.BG_E_NOT_FOUND,
    hint: 'List your jobs with "bits list"',
  })
}
