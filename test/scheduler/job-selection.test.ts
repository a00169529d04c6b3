import {test} from 'node:test'
import assert from 'node:assert/strict'
import {pickJobsToRun, type RunCandidate} from '../../src/lib/scheduler/job-selection.js'

const job = (id: string, priority: RunCandidate['priority'], extra: Partial<RunCandidate> = {}): RunCandidate => ({id, priority, createdAt: `2026-01-01T00:00:0${id.length}Z`, lastTurn: 0, running: false, ...extra})
const options = {maxBackgroundJobs: 1, timeSliceMs: 1000, now: 10_000}

test('pickJobsToRun() - every FOREGROUND job runs at once, beside one background job', () => {
  const result = pickJobsToRun([job('f1', 'FOREGROUND'), job('f2', 'FOREGROUND'), job('n1', 'NORMAL'), job('n2', 'NORMAL')], options)
  assert.deepEqual(result.start.sort(), ['f1', 'f2', 'n1'])
  assert.deepEqual(result.preempt, [])
})

test('pickJobsToRun() - a higher priority pre-empts a running lower one', () => {
  const result = pickJobsToRun([job('low', 'LOW', {running: true, runningSince: 9900, lastTurn: 9900}), job('high', 'HIGH')], options)
  assert.deepEqual(result.start, ['high'])
  assert.deepEqual(result.preempt, ['low'])
})

test('pickJobsToRun() - same priority: the running job keeps its turn until its slice ends', () => {
  const running = job('a', 'NORMAL', {running: true, runningSince: 9500, lastTurn: 9500})
  const waiting = job('b', 'NORMAL')
  const during = pickJobsToRun([running, waiting], options)
  assert.deepEqual(during.start, [])
  assert.deepEqual(during.preempt, [])
  assert.equal(during.sliceEndsAt, 10_500)
  const after = pickJobsToRun([running, waiting], {...options, now: 10_600})
  assert.deepEqual(after.start, ['b'])
  assert.deepEqual(after.preempt, ['a'])
})

test('pickJobsToRun() - round-robin: the job that waited longest goes next', () => {
  const result = pickJobsToRun([job('recent', 'NORMAL', {lastTurn: 9000}), job('old', 'NORMAL', {lastTurn: 1000}), job('never', 'NORMAL')], options)
  assert.deepEqual(result.start, ['never'])
})

test('pickJobsToRun() - a lone job keeps running after its slice; maxBackgroundJobs widens the set', () => {
  const lone = pickJobsToRun([job('a', 'NORMAL', {running: true, runningSince: 0, lastTurn: 0})], options)
  assert.deepEqual(lone, {start: [], preempt: []})
  const two = pickJobsToRun([job('h', 'HIGH'), job('n', 'NORMAL'), job('l', 'LOW')], {...options, maxBackgroundJobs: 2})
  assert.deepEqual(two.start, ['h', 'n'])
})
