import {test} from 'node:test'
import assert from 'node:assert/strict'
import {formatJobId, parseGuid, resolveJobRef} from '../../../src/lib/jobs/job-ref.js'
import {BitsError} from '../../../src/lib/errors.js'

const jobs = [
  {id: '5d3a8e2c-1111-4a4a-8b8b-000000000001', displayName: 'nightly'},
  {id: '5d3a9999-2222-4a4a-8b8b-000000000002', displayName: 'nightly'},
  {id: 'abcdef01-3333-4a4a-8b8b-000000000003', displayName: 'weekly'},
]

const code = (expected: string) => (err: unknown) => err instanceof BitsError && err.code === expected

test('parseGuid() - accepts braces and upper case', () => {
  assert.equal(parseGuid('{5D3A8E2C-1111-4A4A-8B8B-000000000001}'), jobs[0]!.id)
  assert.equal(parseGuid('5d3a8e2c-1111-4a4a-8b8b-000000000001'), jobs[0]!.id)
  assert.equal(parseGuid('5d3a8e2c'), undefined)
  assert.equal(formatJobId(jobs[0]!.id), '{5D3A8E2C-1111-4A4A-8B8B-000000000001}')
})

test('resolveJobRef() - by GUID with or without braces', () => {
  assert.equal(resolveJobRef('{5D3A8E2C-1111-4A4A-8B8B-000000000001}', jobs), jobs[0])
  assert.equal(resolveJobRef('abcdef01-3333-4a4a-8b8b-000000000003', jobs), jobs[2])
})

test('resolveJobRef() - by unique prefix of at least 4 characters', () => {
  assert.equal(resolveJobRef('abcd', jobs), jobs[2])
  assert.equal(resolveJobRef('{5D3A8E', jobs), jobs[0])
  assert.throws(() => resolveJobRef('5d3a', jobs), code('USAGE_AMBIGUOUS_JOB'))
  assert.throws(() => resolveJobRef('abc', jobs), code('JOB_NOT_FOUND'))
})

test('resolveJobRef() - by display name; an ambiguous name lists the candidates', () => {
  assert.equal(resolveJobRef('weekly', jobs), jobs[2])
  assert.throws(
    () => resolveJobRef('nightly', jobs),
    (err: unknown) => err instanceof BitsError && err.code === 'USAGE_AMBIGUOUS_JOB' && err.message.includes('{5D3A8E2C') && err.message.includes('{5D3A9999'),
  )
})

test('resolveJobRef() - unknown reference is BG_E_NOT_FOUND', () => {
  assert.throws(() => resolveJobRef('monthly', jobs), (err: unknown) => err instanceof BitsError && err.code === 'JOB_NOT_FOUND' && err.hresult === 0x80200001 && err.exitCode === 3)
  assert.throws(() => resolveJobRef('  ', jobs), code('USAGE_INVALID_ARG'))
})
