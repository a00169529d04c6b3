import {test} from 'node:test'
import assert from 'node:assert/strict'
import {ALLOWED_TRANSITIONS, assertTransition, canTransition} from '../../../src/lib/jobs/state-machine.js'
import {JOB_STATES} from '../../../src/lib/jobs/job.js'
import {BitsError} from '../../../src/lib/errors.js'

test('canTransition() - final states have no way out', () => {
  for (const to of JOB_STATES) {
    if (to === 'ACKNOWLEDGED' || to === 'CANCELLED') continue
    assert.equal(canTransition('ACKNOWLEDGED', to), false)
    assert.equal(canTransition('CANCELLED', to), false)
  }
})

test('canTransition() - every non-final state can be cancelled and suspended', () => {
  for (const from of JOB_STATES) {
    if (from === 'ACKNOWLEDGED' || from === 'CANCELLED') continue
    assert.ok(canTransition(from, 'CANCELLED'), `${from} -> CANCELLED`)
    assert.ok(canTransition(from, 'SUSPENDED'), `${from} -> SUSPENDED`)
  }
})

test('canTransition() - follows the BITS table for the engine events', () => {
  assert.ok(canTransition('SUSPENDED', 'QUEUED'))
  assert.ok(canTransition('QUEUED', 'CONNECTING'))
  assert.ok(canTransition('CONNECTING', 'TRANSFERRING'))
  assert.ok(canTransition('TRANSFERRING', 'TRANSIENT_ERROR'))
  assert.ok(canTransition('TRANSIENT_ERROR', 'QUEUED'))
  assert.ok(canTransition('TRANSIENT_ERROR', 'ERROR'))
  assert.ok(canTransition('ERROR', 'QUEUED'))
  assert.ok(canTransition('TRANSFERRING', 'TRANSFERRED'))
  assert.ok(canTransition('TRANSFERRED', 'ACKNOWLEDGED'))
  assert.equal(canTransition('SUSPENDED', 'TRANSFERRING'), false)
  assert.equal(canTransition('SUSPENDED', 'TRANSFERRED'), false)
  assert.equal(canTransition('ERROR', 'TRANSFERRING'), false)
  assert.equal(canTransition('QUEUED', 'TRANSFERRED'), false)
})

test('assertTransition() - refuses with BG_E_INVALID_STATE', () => {
  assert.throws(
    () => assertTransition('CANCELLED', 'QUEUED', '{X}'),
    (err: unknown) => err instanceof BitsError && err.code === 'JOB_INVALID_STATE' && err.hresult === 0x80200002 && err.exitCode === 4,
  )
  assert.doesNotThrow(() => assertTransition('QUEUED', 'QUEUED', '{X}'))
  assert.equal(Object.keys(ALLOWED_TRANSITIONS).length, JOB_STATES.length)
})
