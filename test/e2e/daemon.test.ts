import {afterEach, beforeEach, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {createContext} from '../../src/lib/context.js'
import {getJob} from '../../src/lib/jobs/job-service.js'
import {runningDaemonPid} from '../../src/lib/server/daemon-launcher.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {inState, sha256, sha256File, waitForJob} from '../helpers/engine.js'
import {BIN, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** `bits serve` as a real process; resolves once it has taken its lock. */
async function startServe(stateDir: string, extra: string[] = []): Promise<{child: ChildProcess; stdout: () => string; exited: Promise<number | null>}> {
  const child = spawn(process.execPath, [BIN, 'serve', '--state-dir', stateDir, '--jsonl', '--log-level', 'warn', ...extra], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout!.on('data', (chunk) => (out += chunk))
  child.stderr!.resume()
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const deadline = Date.now() + 10_000
  while (!out.includes('"started"')) {
    if (Date.now() > deadline) throw new Error(`bits serve did not start: ${out}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return {child, stdout: () => out, exited}
}

describe('bits serve and the background daemon', () => {
  let origin: FixtureServer
  let dir: string
  let stateDir: string
  let cleanup: () => Promise<void>
  const children: ChildProcess[] = []

  beforeEach(async () => {
    origin = await new FixtureServer().start()
    ;({dir, cleanup} = await makeTempDir())
    stateDir = path.join(dir, 'state')
  })
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL')
    const pid = await runningDaemonPid(stateDir)
    if (pid) process.kill(pid, 'SIGKILL')
    await origin.stop()
    await cleanup()
  })

  test('transfer - downloads in this process and leaves an identical file; --json reports the completion', async () => {
    const body = randomBytes(1_000_000)
    origin.files.set('/big.bin', {body, etag: '"big"'})
    const local = path.join(dir, 'big.bin')
    const result = await runCli(['transfer', origin.url('/big.bin'), local, '--json'], {stateDir})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.status, 0)
    assert.deepEqual(result.json.result.filesKept, [local])
    assert.equal(result.json.result.job.state, 'ACKNOWLEDGED')
    assert.equal(await sha256File(local), sha256(body))
  })

  test('transfer - a fatal error cancels the job and exits non-zero with the BITS code', async () => {
    const result = await runCli(['transfer', origin.url('/missing.bin'), path.join(dir, 'm.bin'), '--json'], {stateDir})
    assert.equal(result.code, 6)
    assert.equal(result.json.error.code, 'JOB_FAILED')
    assert.equal(result.json.error.hresult, '0x80190194')
    assert.match(result.json.error.message, /0x80190194/)
    const list = await runCli(['list', '--all', '--json'], {stateDir})
    assert.equal(list.json.result.jobs[0].state, 'CANCELLED')
  })

  test('resume starts a background daemon; the job completes while nobody waits; the daemon exits when idle', async () => {
    const body = randomBytes(200_000)
    origin.files.set('/bg.bin', {body, etag: '"bg"'})
    const create = await runCli(['create', 'walk-away', '--json'], {stateDir})
    const id = create.json.result.id
    await runCli(['addfile', id, origin.url('/bg.bin'), path.join(dir, 'bg.bin')], {stateDir})
    await runCli(['settings', 'idleExitSeconds', '1'], {stateDir})
    const resumed = await runCli(['resume', id, '--json'], {stateDir, env: {BITS_NO_DAEMON: ''}})
    assert.equal(resumed.code, 0, resumed.stderr)
    const ctx = createContext(stateDir)
    await waitForJob(ctx, id, inState('TRANSFERRED'), 15_000)
    const complete = await runCli(['complete', id], {stateDir})
    assert.equal(complete.code, 0)
    assert.equal(await sha256File(path.join(dir, 'bg.bin')), sha256(body))
    const deadline = Date.now() + 10_000
    while ((await runningDaemonPid(stateDir)) !== undefined) {
      assert.ok(Date.now() < deadline, 'background daemon exits after the idle time')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })

  test('serve - a second instance for the same state directory refuses clearly', async () => {
    const first = await startServe(stateDir)
    children.push(first.child)
    const second = await runCli(['serve', '--json'], {stateDir})
    assert.equal(second.code, 9)
    assert.equal(second.json.error.code, 'SERVER_ALREADY_RUNNING')
    assert.match(second.json.error.message, new RegExp(String(first.child.pid)))
    first.child.kill('SIGTERM')
    assert.equal(await first.exited, 0)
    assert.match(first.stdout(), /"type":"stopped","reason":"signal"/)
  })

  test('serve - SIGKILL mid-transfer, restart: the job resumes from its checkpoint and ends byte-identical', async () => {
    const body = randomBytes(4_000_000)
    origin.files.set('/slow.bin', {body, etag: '"slow"', fault: (n) => (n === 0 ? {kind: 'throttle', chunkBytes: 64 * 1024, intervalMs: 50} : undefined)})
    const create = await runCli(['create', 'crash', '--json'], {stateDir})
    const id = create.json.result.id
    await runCli(['addfile', id, origin.url('/slow.bin'), path.join(dir, 'slow.bin')], {stateDir})
    const first = await startServe(stateDir)
    children.push(first.child)
    await runCli(['resume', id], {stateDir})
    const ctx = createContext(stateDir)
    const progressed = await waitForJob(ctx, id, (job) => job.bytesTransferred >= 500_000, 15_000)
    first.child.kill('SIGKILL')
    await first.exited
    const checkpoint = (await getJob(ctx, id)).bytesTransferred
    assert.ok(checkpoint >= progressed.bytesTransferred && checkpoint < body.length, `checkpoint ${checkpoint}`)
    const second = await startServe(stateDir)
    children.push(second.child)
    await waitForJob(ctx, id, inState('TRANSFERRED', 'ERROR'), 15_000)
    const resumedGet = origin.requests.filter((r) => r.method === 'GET' && r.path === '/slow.bin').at(-1)!
    assert.match(String(resumedGet.headers.range), /^bytes=\d+-$/)
    assert.ok(Number(/\d+/.exec(String(resumedGet.headers.range))![0]) >= checkpoint)
    second.child.kill('SIGINT')
    assert.equal(await second.exited, 0)
    const complete = await runCli(['complete', id], {stateDir})
    assert.equal(complete.code, 0)
    assert.equal(sha256(await readFile(path.join(dir, 'slow.bin'))), sha256(body))
  })

  test('transfer - Ctrl-C suspends the job, keeps its bytes and exits 130; an empty remote file transfers', async () => {
    const body = randomBytes(3_000_000)
    origin.files.set('/ctrlc.bin', {body, etag: '"c"', fault: () => ({kind: 'throttle', chunkBytes: 32 * 1024, intervalMs: 50})})
    const child = spawn(process.execPath, [BIN, 'transfer', origin.url('/ctrlc.bin'), path.join(dir, 'ctrlc.bin'), '--json', '--state-dir', stateDir], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, BITS_NO_DAEMON: '1'}})
    children.push(child)
    let out = ''
    child.stdout!.on('data', (chunk) => (out += chunk))
    child.stderr!.resume()
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const ctx = createContext(stateDir)
    const deadline = Date.now() + 10_000
    for (;;) {
      const list = await runCli(['list', '--json'], {stateDir})
      if (list.json?.result.jobs[0]?.bytesTransferred > 0) break
      assert.ok(Date.now() < deadline, 'transfer made progress')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    child.kill('SIGINT')
    assert.equal(await exited, 130)
    const result = JSON.parse(out)
    assert.equal(result.error.code, 'INTERRUPTED')
    const id = /\{([0-9A-F-]+)\}/.exec(result.error.message)![1]!.toLowerCase()
    const job = await getJob(ctx, id)
    assert.equal(job.state, 'SUSPENDED')
    assert.ok(job.bytesTransferred > 0 && job.bytesTransferred < body.length)
    origin.files.set('/empty.bin', {body: Buffer.alloc(0), etag: '"e"'})
    const empty = await runCli(['transfer', origin.url('/empty.bin'), path.join(dir, 'empty.bin'), '--json'], {stateDir})
    assert.equal(empty.code, 0, empty.stderr)
    assert.equal((await readFile(path.join(dir, 'empty.bin'))).length, 0)
  })
})
