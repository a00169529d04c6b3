import {afterEach, beforeEach, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {readdir, stat} from 'node:fs/promises'
import path from 'node:path'
import {completeJob, resumeJob} from '../../src/lib/jobs/job-service.js'
import type {LibContext} from '../../src/lib/context.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {inState, queueJob, sha256, sha256File, startEngine, waitForJob} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const LAST_MODIFIED = 'Tue, 03 Mar 2026 10:00:00 GMT'

describe('download engine against a faulty origin', () => {
  let origin: FixtureServer
  let dir: string
  let cleanup: () => Promise<void>
  let ctx: LibContext
  let stop: () => Promise<void>

  beforeEach(async () => {
    origin = await new FixtureServer().start()
    ;({dir, cleanup} = await makeTempDir())
    ;({ctx, stop} = await startEngine(path.join(dir, 'state')))
  })

  afterEach(async () => {
    await stop()
    await origin.stop()
    await cleanup()
  })

  const serve = (name: string, body: Buffer, extra: Partial<Parameters<FixtureServer['files']['set']>[1]> = {}) =>
    origin.files.set(`/${name}`, {body, etag: `"${sha256(body).slice(0, 12)}"`, lastModified: LAST_MODIFIED, ...extra})

  test('downloads a file into its temporary file; complete makes it appear, stamped with Last-Modified', async () => {
    const body = randomBytes(300_000)
    serve('a.bin', body)
    const local = path.join(dir, 'a.bin')
    const job = await queueJob(ctx, 'plain', [{remoteUrl: origin.url('/a.bin'), localPath: local}])
    const done = await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'))
    assert.equal(done.state, 'TRANSFERRED')
    assert.equal(done.bytesTotal, body.length)
    assert.equal(done.files[0]!.bytesFromOrigin, body.length)
    assert.ok(done.transferCompletedAt)
    await assert.rejects(stat(local), /ENOENT/, 'file must stay invisible until complete')
    await completeJob(ctx, job.id)
    assert.equal(await sha256File(local), sha256(body))
    assert.equal((await stat(local)).mtime.toUTCString(), LAST_MODIFIED)
    assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.bitspart')), [])
  })

  test('the files of a job share one connection: a HEAD does not close it', async () => {
    const bodies = Array.from({length: 5}, () => randomBytes(10_000))
    for (const [index, body] of bodies.entries()) serve(`many${index}.bin`, body)
    const job = await queueJob(ctx, 'many', bodies.map((_, index) => ({remoteUrl: origin.url(`/many${index}.bin`), localPath: path.join(dir, `many${index}.bin`)})))
    assert.equal((await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'))).state, 'TRANSFERRED')
    assert.deepEqual(origin.requests.map((request) => request.method), bodies.flatMap(() => ['HEAD', 'GET']))
    // Without reuse every file would open its own; the pool may open a second while the first finishes a body.
    assert.ok(origin.connections <= 2, `${origin.connections} connections for ${bodies.length} files`)
  })

  test('a reset mid-body is a transient error; resume continues with a Range and ends byte-identical', async () => {
    const body = randomBytes(400_000)
    serve('r.bin', body, {fault: (n) => (n === 0 ? {kind: 'reset-after', bytes: 150_000} : undefined)})
    const job = await queueJob(ctx, 'reset', [{remoteUrl: origin.url('/r.bin'), localPath: path.join(dir, 'r.bin')}])
    const failed = await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR', 'TRANSFERRED'))
    assert.equal(failed.state, 'TRANSIENT_ERROR')
    assert.equal(failed.errorCount, 1)
    assert.equal(failed.error?.context, 'GENERAL_TRANSPORT')
    assert.ok(failed.bytesTransferred > 0 && failed.bytesTransferred <= 150_000, `kept ${failed.bytesTransferred} bytes`)
    await resumeJob(ctx, job.id)
    await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'))
    const gets = origin.requests.filter((r) => r.method === 'GET' && r.path === '/r.bin')
    const resumed = gets.at(-1)!
    assert.equal(resumed.headers.range, `bytes=${failed.bytesTransferred}-`)
    assert.equal(resumed.headers['if-range'], origin.files.get('/r.bin')!.etag)
    assert.equal(origin.bytesSent('/r.bin'), 150_000 + body.length - failed.bytesTransferred, 'resume must not refetch kept bytes')
    const finished = await waitForJob(ctx, job.id, inState('TRANSFERRED'))
    assert.equal(finished.files[0]!.bytesFromOrigin, body.length, 'bytes fetched from the origin and kept')
    await completeJob(ctx, job.id)
    assert.equal(await sha256File(path.join(dir, 'r.bin')), sha256(body))
  })

  test('a truncated body (clean close before Content-Length) is transient and resumes', async () => {
    const body = randomBytes(200_000)
    serve('t.bin', body, {fault: (n) => (n === 0 ? {kind: 'truncate-after', bytes: 80_000} : undefined)})
    const job = await queueJob(ctx, 'truncated', [{remoteUrl: origin.url('/t.bin'), localPath: path.join(dir, 't.bin')}])
    assert.equal((await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR', 'TRANSFERRED'))).state, 'TRANSIENT_ERROR')
    await resumeJob(ctx, job.id)
    assert.equal((await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'))).state, 'TRANSFERRED')
    await completeJob(ctx, job.id)
    assert.equal(await sha256File(path.join(dir, 't.bin')), sha256(body))
  })

  test('503 with Retry-After: TRANSIENT_ERROR, retried no sooner than the longer of Retry-After and the min retry delay', async () => {
    serve('busy.bin', randomBytes(1000), {fault: () => ({kind: 'status', status: 503, headers: {'retry-after': '3600'}})})
    const before = Date.now()
    const job = await queueJob(ctx, 'busy', [{remoteUrl: origin.url('/busy.bin'), localPath: path.join(dir, 'busy.bin')}], {minRetryDelay: 5})
    const failed = await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR'))
    assert.equal(failed.state, 'TRANSIENT_ERROR')
    assert.equal(failed.error?.code, '0x801901f7')
    const retryAt = Date.parse(failed.retryAt!)
    assert.ok(retryAt - before >= 3_600_000 - 1000, `retryAt ${failed.retryAt} honours Retry-After`)
  })

  test('404 is fatal: ERROR with 0x80190194 naming the file', async () => {
    const job = await queueJob(ctx, 'missing', [{remoteUrl: origin.url('/nope.bin'), localPath: path.join(dir, 'nope.bin')}])
    const failed = await waitForJob(ctx, job.id, inState('ERROR', 'TRANSIENT_ERROR', 'TRANSFERRED'))
    assert.equal(failed.state, 'ERROR')
    assert.equal(failed.error?.code, '0x80190194')
    assert.equal(failed.error?.context, 'REMOTE_FILE')
    assert.equal(failed.error?.file, path.join(dir, 'nope.bin'))
    assert.equal(failed.errorCount, 0)
  })

  test('a server that answers a range with 200 restarts the file from byte 0', async () => {
    const body = randomBytes(300_000)
    let ignore = false
    serve('ir.bin', body, {
      fault: (n) => {
        if (n === 0) return {kind: 'reset-after', bytes: 100_000}
        ignore = true
        return undefined
      },
    })
    const job = await queueJob(ctx, 'ignore-range', [{remoteUrl: origin.url('/ir.bin'), localPath: path.join(dir, 'ir.bin')}])
    await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR'))
    origin.files.get('/ir.bin')!.ignoreRange = ignore
    await resumeJob(ctx, job.id)
    assert.equal((await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'))).state, 'TRANSFERRED')
    await completeJob(ctx, job.id)
    assert.equal(await sha256File(path.join(dir, 'ir.bin')), sha256(body))
  })

  test('without range support from the start, a normal job fails with 0x80200013; a dynamic one succeeds', async () => {
    const body = randomBytes(50_000)
    serve('nr.bin', body, {ignoreRange: true})
    const normal = await queueJob(ctx, 'no-ranges', [{remoteUrl: origin.url('/nr.bin'), localPath: path.join(dir, 'nr.bin')}])
    const failed = await waitForJob(ctx, normal.id, inState('ERROR', 'TRANSIENT_ERROR', 'TRANSFERRED'))
    assert.equal(failed.state, 'ERROR')
    assert.equal(failed.error?.code, '0x80200013')
    const dynamic = await queueJob(ctx, 'dynamic', [{remoteUrl: origin.url('/nr.bin'), localPath: path.join(dir, 'nr2.bin')}], {dynamicContent: true})
    assert.equal((await waitForJob(ctx, dynamic.id, inState('TRANSFERRED', 'ERROR'))).state, 'TRANSFERRED')
    await completeJob(ctx, dynamic.id)
    assert.equal(await sha256File(path.join(dir, 'nr2.bin')), sha256(body))
  })

  test('without a size, a normal job fails with 0x80200011', async () => {
    serve('ns.bin', randomBytes(10_000), {noLength: true, headStatus: 405, ignoreRange: true})
    const job = await queueJob(ctx, 'no-size', [{remoteUrl: origin.url('/ns.bin'), localPath: path.join(dir, 'ns.bin')}])
    const failed = await waitForJob(ctx, job.id, inState('ERROR', 'TRANSIENT_ERROR', 'TRANSFERRED'))
    assert.equal(failed.state, 'ERROR')
    assert.equal(failed.error?.code, '0x80200011')
  })

  test('a remote file that changed between attempts restarts that file only; finished files are kept', async () => {
    const first = randomBytes(100_000)
    const oldBody = randomBytes(300_000)
    const newBody = randomBytes(250_000)
    serve('one.bin', first)
    serve('two.bin', oldBody, {fault: (n) => (n === 0 ? {kind: 'reset-after', bytes: 120_000} : undefined)})
    const job = await queueJob(ctx, 'changed', [
      {remoteUrl: origin.url('/one.bin'), localPath: path.join(dir, 'one.bin')},
      {remoteUrl: origin.url('/two.bin'), localPath: path.join(dir, 'two.bin')},
    ])
    await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR'))
    const oneGets = origin.requests.filter((r) => r.method === 'GET' && r.path === '/one.bin').length
    serve('two.bin', newBody, {lastModified: 'Wed, 04 Mar 2026 10:00:00 GMT'})
    await resumeJob(ctx, job.id)
    assert.equal((await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'))).state, 'TRANSFERRED')
    assert.equal(origin.requests.filter((r) => r.method === 'GET' && r.path === '/one.bin').length, oneGets, 'finished file is not fetched again')
    const lastTwo = origin.requests.filter((r) => r.method === 'GET' && r.path === '/two.bin').at(-1)!
    assert.equal(lastTwo.headers.range, undefined, 'changed file restarts from byte 0')
    await completeJob(ctx, job.id)
    assert.equal(await sha256File(path.join(dir, 'one.bin')), sha256(first))
    assert.equal(await sha256File(path.join(dir, 'two.bin')), sha256(newBody))
  })

  test('redirects are followed (ALLOW_SILENT keeps the remote name; ALLOW_REPORT records the final URL)', async () => {
    const body = randomBytes(20_000)
    serve('final.bin', body)
    origin.files.set('/moved.bin', {body: Buffer.alloc(0), fault: () => ({kind: 'redirect', status: 302, location: '/final.bin'})})
    origin.files.set('/moved.bin', {...origin.files.get('/moved.bin')!, headStatus: 405})
    const silent = await queueJob(ctx, 'silent', [{remoteUrl: origin.url('/moved.bin'), localPath: path.join(dir, 's.bin')}])
    const silentDone = await waitForJob(ctx, silent.id, inState('TRANSFERRED', 'ERROR'))
    assert.equal(silentDone.state, 'TRANSFERRED', JSON.stringify(silentDone.error))
    assert.equal(silentDone.files[0]!.remoteUrl, origin.url('/moved.bin'))
    const report = await queueJob(ctx, 'report', [{remoteUrl: origin.url('/moved.bin'), localPath: path.join(dir, 'r.bin')}], {redirectPolicy: 'allow-report'})
    const reportDone = await waitForJob(ctx, report.id, inState('TRANSFERRED', 'ERROR'))
    assert.equal(reportDone.files[0]!.remoteUrl, origin.url('/final.bin'))
    const disallow = await queueJob(ctx, 'disallow', [{remoteUrl: origin.url('/moved.bin'), localPath: path.join(dir, 'd.bin')}], {redirectPolicy: 'disallow'})
    const refused = await waitForJob(ctx, disallow.id, inState('ERROR', 'TRANSFERRED', 'TRANSIENT_ERROR'))
    assert.equal(refused.state, 'ERROR')
    assert.equal(refused.error?.code, '0x8019012e')
    assert.match(refused.error!.description, /final\.bin/)
  })

  test('a stalled body is noticed by the body timeout and becomes a transient error', async () => {
    serve('stall.bin', randomBytes(100_000), {fault: () => ({kind: 'stall-after', bytes: 10_000})})
    const job = await queueJob(ctx, 'stall', [{remoteUrl: origin.url('/stall.bin'), localPath: path.join(dir, 'stall.bin')}])
    const failed = await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR', 'TRANSFERRED'))
    assert.equal(failed.state, 'TRANSIENT_ERROR')
    assert.equal(failed.error?.code, '0x80072ee2')
  })

  test('416 for a range inside the announced size is fatal: ERROR 0x801901a0', async () => {
    const body = randomBytes(100_000)
    serve('shrunk.bin', body, {fault: (n) => (n === 0 ? {kind: 'reset-after', bytes: 40_000} : {kind: 'status', status: 416, headers: {'content-range': 'bytes */10'}})})
    const job = await queueJob(ctx, 'shrunk', [{remoteUrl: origin.url('/shrunk.bin'), localPath: path.join(dir, 'shrunk.bin')}])
    await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR'))
    await resumeJob(ctx, job.id)
    const failed = await waitForJob(ctx, job.id, inState('ERROR', 'TRANSFERRED'))
    assert.equal(failed.state, 'ERROR')
    assert.equal(failed.error?.code, '0x801901a0')
  })
})
