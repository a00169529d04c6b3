import {afterEach, beforeEach, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import type {LibContext} from '../../src/lib/context.js'
import {getJob, suspendJob, cancelJob} from '../../src/lib/jobs/job-service.js'
import type {JobState} from '../../src/lib/jobs/job.js'
import type {Scheduler} from '../../src/lib/scheduler/scheduler.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {inState, queueJob, startEngine, waitForJob} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('Scheduler', () => {
  let origin: FixtureServer
  let dir: string
  let cleanup: () => Promise<void>
  let ctx: LibContext
  let scheduler: Scheduler
  let stop: () => Promise<void>

  beforeEach(async () => {
    origin = await new FixtureServer().start()
    ;({dir, cleanup} = await makeTempDir())
  })
  afterEach(async () => {
    await stop?.()
    await origin.stop()
    await cleanup()
  })

  /** A file whose body stalls after some bytes until `release()`; lets a test hold a job in TRANSFERRING. */
  function slowFile(name: string, size: number, stallEveryTime = false) {
    const body = randomBytes(size)
    origin.files.set(`/${name}`, {body, etag: `"${name}"`, fault: (n) => (n === 0 || stallEveryTime ? {kind: 'stall-after', bytes: 1000} : undefined)})
    return body
  }

  test('start() - notices a job queued after it started, within 200 ms, without polling', async () => {
    origin.files.set('/a', {body: randomBytes(1000), etag: '"a"'})
    ;({ctx, scheduler, stop} = await startEngine(path.join(dir, 'state'), {rescanMs: 60_000}))
    const job = await queueJob(ctx, 'late', [{remoteUrl: origin.url('/a'), localPath: path.join(dir, 'a')}])
    const started = Date.now()
    await waitForJob(ctx, job.id, inState('CONNECTING', 'TRANSFERRING', 'TRANSFERRED'), 2000)
    assert.ok(Date.now() - started < 1000, 'picked up by the file watcher, not by the 60 s rescan')
  })

  test('a HIGH job pre-empts a running NORMAL job, which goes back to QUEUED and finishes later', async () => {
    slowFile('normal', 200_000)
    origin.files.set('/high', {body: randomBytes(5000), etag: '"h"'})
    ;({ctx, scheduler, stop} = await startEngine(path.join(dir, 'state'), {timeouts: {bodyTimeoutMs: 10_000}}))
    const normal = await queueJob(ctx, 'normal', [{remoteUrl: origin.url('/normal'), localPath: path.join(dir, 'n')}])
    await waitForJob(ctx, normal.id, inState('TRANSFERRING'))
    const states: JobState[] = []
    scheduler.on('state', ({job}) => job.id === normal.id && states.push(job.state))
    const high = await queueJob(ctx, 'high', [{remoteUrl: origin.url('/high'), localPath: path.join(dir, 'h')}], {priority: 'HIGH'})
    await waitForJob(ctx, high.id, inState('TRANSFERRED'))
    assert.ok(states.includes('QUEUED'), `normal job was pre-empted: ${states.join(',')}`)
    await waitForJob(ctx, normal.id, inState('TRANSFERRED'), 20_000)
  })

  test('jobs of one priority share time: a small job finishes while a large stalled one waits its turn', async () => {
    slowFile('big', 500_000, true)
    origin.files.set('/small', {body: randomBytes(2000), etag: '"s"'})
    ;({ctx, scheduler, stop} = await startEngine(path.join(dir, 'state'), {timeSliceMs: 200, timeouts: {bodyTimeoutMs: 10_000}}))
    const big = await queueJob(ctx, 'big', [{remoteUrl: origin.url('/big'), localPath: path.join(dir, 'big')}])
    await waitForJob(ctx, big.id, inState('TRANSFERRING'))
    const small = await queueJob(ctx, 'small', [{remoteUrl: origin.url('/small'), localPath: path.join(dir, 'small')}])
    await waitForJob(ctx, small.id, inState('TRANSFERRED'), 5000)
    assert.notEqual((await getJob(ctx, big.id)).state, 'TRANSFERRED')
  })

  test('suspend and cancel from another process stop a running transfer', async () => {
    slowFile('s', 100_000)
    ;({ctx, scheduler, stop} = await startEngine(path.join(dir, 'state'), {timeouts: {bodyTimeoutMs: 10_000}}))
    const job = await queueJob(ctx, 'stop-me', [{remoteUrl: origin.url('/s'), localPath: path.join(dir, 's')}])
    await waitForJob(ctx, job.id, inState('TRANSFERRING'))
    await suspendJob(ctx, job.id)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal((await getJob(ctx, job.id)).state, 'SUSPENDED')
    const result = await cancelJob(ctx, job.id)
    assert.equal(result.job.state, 'CANCELLED')
  })

  test('the no-progress timeout turns a transient error into ERROR; the max download time gives 0x80200054', async () => {
    origin.files.set('/down', {body: randomBytes(100), etag: '"d"', fault: () => ({kind: 'status', status: 503})})
    origin.files.set('/slow', {body: randomBytes(100_000), etag: '"x"', fault: () => ({kind: 'stall-after', bytes: 100})})
    ;({ctx, scheduler, stop} = await startEngine(path.join(dir, 'state'), {timeouts: {bodyTimeoutMs: 10_000}}))
    const noRetries = await queueJob(ctx, 'no-retries', [{remoteUrl: origin.url('/down'), localPath: path.join(dir, 'down')}], {noProgressTimeout: 0})
    const failed = await waitForJob(ctx, noRetries.id, inState('ERROR', 'TRANSIENT_ERROR'))
    assert.equal(failed.state, 'ERROR')
    assert.equal(failed.error?.code, '0x801901f7')
    const limited = await queueJob(ctx, 'limited', [{remoteUrl: origin.url('/slow'), localPath: path.join(dir, 'slow')}], {maxDownloadTime: 1})
    const timedOut = await waitForJob(ctx, limited.id, inState('ERROR', 'TRANSFERRED'), 5000)
    assert.equal(timedOut.error?.code, '0x80200054')
  })
})
