import {test} from 'node:test'
import assert from 'node:assert/strict'
import {parseRate, RateLimit} from '../../src/lib/peers/rate-limit.js'

test('RateLimit.take() - a second of budget, then waits in proportion to the excess', () => {
  let now = 0
  const limit = new RateLimit(1000, () => now)
  assert.equal(limit.take(600), 0)
  assert.equal(limit.take(400), 0)
  assert.equal(limit.take(500), 500, 'half a second for 500 bytes over budget')
  now += 1500
  assert.equal(limit.take(1000), 0, 'the bucket refilled (and holds at most one second)')
  assert.equal(limit.take(100), 100)
})

test('parseRate() - sizes per second, at least 1 KiB/s', () => {
  assert.equal(parseRate('10MiB'), 10 * 1024 * 1024)
  assert.equal(parseRate('500KiB/s'), 500 * 1024)
  assert.equal(parseRate('2000000'), 2_000_000)
  assert.throws(() => parseRate('fast'), RangeError)
  assert.throws(() => parseRate('10'), RangeError)
})
