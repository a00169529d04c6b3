import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {once} from 'node:events'
import path from 'node:path'
import {BIN} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

test('bits peers serve --workers 2: SIGINT stops the supervisor and both workers', {timeout: 60_000}, async (t) => {
  const {dir, cleanup} = await makeTempDir()
  t.after(cleanup)
  const stateDir = path.join(dir, 'workers-state')
  const child = spawn(process.execPath, [BIN, 'peers', 'serve', '--host', '127.0.0.1', '--port', '0', '--workers', '2', '--no-discovery', '--state-dir', stateDir], {stdio: ['ignore', 'ignore', 'pipe']})
  t.after(() => child.kill('SIGKILL'))
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const serving = () => (stderr.match(/Serving the peer cache/g) ?? []).length
  for (const end = Date.now() + 30_000; serving() < 3; await new Promise((resolve) => setTimeout(resolve, 100))) {
    assert.ok(Date.now() < end, `the supervisor and two workers did not start:\n${stderr}`)
  }
  const exited = once(child, 'exit')
  child.kill('SIGINT')
  const [code] = (await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000, ['timeout']))])) as [number | string]
  assert.equal(code, 0, `exit: ${code}\n${stderr}`)
  // The workers are gone too (their command lines name this test's state directory).
  const left = spawnSync('pgrep', ['-f', stateDir], {encoding: 'utf8'}).stdout.trim()
  assert.equal(left, '', `processes left running: ${left}`)
})
