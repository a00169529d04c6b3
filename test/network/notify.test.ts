import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {completeJob} from '../../src/lib/jobs/job-service.js'
import {notifyDue} from '../../src/lib/scheduler/notify-command.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {inState, queueJob, startEngine, waitForJob} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let origin: FixtureServer
let dir: string
let cleanup: () => Promise<void>

before(async () => {
  origin = await new FixtureServer().start()
  ;({dir, cleanup} = await makeTempDir())
})
after(async () => {
  await origin.stop()
  await cleanup()
})

/** A notify program that records each call (argv and BITS_* environment) and fails its first `failures` calls. */
async function recorder(failures: number): Promise<{program: string; log: string}> {
  const log = path.join(dir, `calls-${randomBytes(4).toString('hex')}.jsonl`)
  const program = path.join(dir, `notify-${randomBytes(4).toString('hex')}.mjs`)
  await writeFile(
    program,
    `#!${process.execPath}
import {appendFileSync, readFileSync} from 'node:fs'
let calls = 0
try { calls = readFileSync(${JSON.stringify(log)}, 'utf8').trim().split('\\n').length } catch {}
appendFileSync(${JSON.stringify(log)}, JSON.stringify({argv: process.argv.slice(2), id: process.env.BITS_JOB_ID, state: process.env.BITS_JOB_STATE, at: Date.now()}) + '\\n')
console.log('notified', calls + 1)
process.exit(calls < ${failures} ? 1 : 0)
`,
    {mode: 0o755},
  )
  return {program, log}
}

const calls = async (log: string) => (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))

test('notifyDue() - flags 1 transferred, 2 error, 4 disables', () => {
  const line = {program: '/bin/true', args: []}
  assert.equal(notifyDue({notifyFlags: 3, notifyCmdLine: line}, 'TRANSFERRED'), true)
  assert.equal(notifyDue({notifyFlags: 2, notifyCmdLine: line}, 'TRANSFERRED'), false)
  assert.equal(notifyDue({notifyFlags: 2, notifyCmdLine: line}, 'ERROR'), true)
  assert.equal(notifyDue({notifyFlags: 7, notifyCmdLine: line}, 'ERROR'), false)
  assert.equal(notifyDue({notifyFlags: 3, notifyCmdLine: null}, 'ERROR'), false)
})

test('notify command line - runs on TRANSFERRED without a shell, with BITS_JOB_ID; a non-zero exit runs it again after the min retry delay', async () => {
  const {ctx, stop} = await startEngine(path.join(dir, 'state1'))
  try {
    origin.files.set('/n.bin', {body: randomBytes(1000), etag: '"n"'})
    const {program, log} = await recorder(1)
    const job = await queueJob(ctx, 'notified', [{remoteUrl: origin.url('/n.bin'), localPath: path.join(dir, 'n.bin')}], {
      notifyCmdLine: {program, args: ['$HOME', 'two words']},
      minRetryDelay: 5,
    })
    await waitForJob(ctx, job.id, inState('TRANSFERRED'))
    const deadline = Date.now() + 12_000
    while ((await calls(log)).length < 2) {
      assert.ok(Date.now() < deadline, 'the program ran twice')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const [first, second] = await calls(log)
    assert.deepEqual(first.argv, ['$HOME', 'two words'], 'arguments pass verbatim, no shell expansion')
    assert.equal(first.id, job.id)
    assert.equal(first.state, 'TRANSFERRED')
    assert.ok(second.at - first.at >= 4500, `re-run waited the min retry delay (${second.at - first.at} ms)`)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal((await calls(log)).length, 2, 'a zero exit ends the notifications')
    await completeJob(ctx, job.id)
  } finally {
    await stop()
  }
})

test('notify command line - runs on ERROR, not with flag 4 (disable)', async () => {
  const {ctx, stop} = await startEngine(path.join(dir, 'state2'))
  try {
    const failing = await recorder(0)
    const job = await queueJob(ctx, 'failing', [{remoteUrl: origin.url('/none.bin'), localPath: path.join(dir, 'none.bin')}], {notifyCmdLine: {program: failing.program, args: []}})
    await waitForJob(ctx, job.id, inState('ERROR'))
    const deadline = Date.now() + 5000
    while ((await calls(failing.log)).length < 1) {
      assert.ok(Date.now() < deadline, 'the program ran on ERROR')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal((await calls(failing.log))[0].state, 'ERROR')
    const silent = await recorder(0)
    const quiet = await queueJob(ctx, 'quiet', [{remoteUrl: origin.url('/none.bin'), localPath: path.join(dir, 'none2.bin')}], {notifyCmdLine: {program: silent.program, args: []}, notifyFlags: 7})
    await waitForJob(ctx, quiet.id, inState('ERROR'))
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal((await calls(silent.log)).length, 0)
  } finally {
    await stop()
  }
})
