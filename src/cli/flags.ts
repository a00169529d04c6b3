import {Args} from '@oclif/core'

/** The JOB argument every job command takes. */
export const jobArg = Args.string({
  description: 'Job: GUID (braces optional), unique GUID prefix (4+ characters) or display name',
  required: true,
})
