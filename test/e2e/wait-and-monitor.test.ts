import {afterEach, beforeEach, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import {runningDaemonPid} from '../../src/lib/server/daemon-launcher.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {BIN, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('resume --wait, monitor and the daemon race', () => {
  let origin: FixtureServer
  let dir: string
  let stateDir: string
  let cleanup: () => Promise<void>

  beforeEach(async () => {
    origin = await new FixtureServer().start()
    ;({dir, cleanup} = await makeTempDir())
    stateDir = path.join(dir, 'state')
  })
  afterEach(async () => {
    const pid = await runningDaemonPid(stateDir)
    if (pid) process.kill(pid, 'SIGKILL')
    await origin.stop()
    await cleanup()
  })

  async function jobWith(url: string): Promise<string> {
    const id = (await runCli(['create', 'waited', '--json'], {stateDir})).json.result.id
    await runCli(['addfile', id, url, path.join(dir, `f-${id}`)], {stateDir})
    return id
  }

  test('resume --wait exits 0 once TRANSFERRED, and non-zero with the BITS code on ERROR', async () => {
    origin.files.set('/ok.bin', {body: randomBytes(50_000), etag: '"ok"'})
    const ok = await jobWith(origin.url('/ok.bin'))
    const good = await runCli(['resume', ok, '--wait', '--json'], {stateDir, env: {BITS_NO_DAEMON: ''}})
    assert.equal(good.code, 0, good.stderr)
    assert.equal(good.json.result.state, 'TRANSFERRED')
    const missing = await jobWith(origin.url('/missing.bin'))
    const bad = await runCli(['resume', missing, '--wait', '--json'], {stateDir, env: {BITS_NO_DAEMON: ''}})
    assert.equal(bad.code, 6)
    assert.equal(bad.json.error.hresult, '0x80190194')
    const info = await runCli(['info', missing, '--json'], {stateDir})
    assert.equal(info.json.result.state, 'ERROR', 'resume --wait leaves the failed job for the user to fix')
  })

  test('monitor --once --json reports every unfinished job with its state; --jsonl streams snapshots', async () => {
    origin.files.set('/m.bin', {body: randomBytes(1000), etag: '"m"'})
    const id = await jobWith(origin.url('/m.bin'))
    const once = await runCli(['monitor', '--once', '--json'], {stateDir})
    assert.equal(once.code, 0)
    assert.equal(once.json.result.jobs.length, 1)
    assert.equal(once.json.result.jobs[0].job.id, id)
    assert.equal(once.json.result.jobs[0].job.state, 'SUSPENDED')
    const streamed = await runCli(['monitor', '--jsonl', '--once', id], {stateDir})
    const lines = streamed.stdout.trim().split('\n').map((line) => JSON.parse(line))
    assert.equal(lines.length, 1)
    assert.equal(lines[0].jobs[0].job.displayName, 'waited')
    const human = await runCli(['monitor', '--once'], {stateDir})
    assert.match(human.stdout, /SUSPENDED/)
  })

  test('many racing background starts leave exactly one daemon', async () => {
    const starters = Array.from({length: 8}, () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'serve', '--state-dir', stateDir, '--exit-when-idle', '3', '--quiet-if-running', '--json'], {stdio: ['ignore', 'pipe', 'ignore']})
        let out = ''
        child.stdout.on('data', (chunk) => (out += chunk))
        child.on('exit', () => {
          clearTimeout(stop)
          resolve(out.includes('already-running') ? 1 : 0)
        })
        // The one that runs exits by itself once idle for 3 s; the bound only guards a hang (no fixed deadline, which a loaded machine misses).
        const stop = setTimeout(() => child.kill('SIGTERM'), 30_000)
      }),
    )
    const results = await Promise.all(starters)
    assert.equal(results.filter((quiet) => quiet === 0).length, 1, `one daemon ran, the others stepped aside: ${results.join(',')}`)
  })
})
