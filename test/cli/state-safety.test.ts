import {afterEach, beforeEach, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFile, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('state directory safety', () => {
  let dir: string
  let stateDir: string
  let cleanup: () => Promise<void>
  const bits = (args: string[], env?: NodeJS.ProcessEnv) => runCli(args, {stateDir, cwd: dir, env, timeoutMs: 60_000})

  beforeEach(async () => {
    ;({dir, cleanup} = await makeTempDir())
    stateDir = path.join(dir, 'state')
  })
  afterEach(() => cleanup())

  test('20 processes running addfile on one job at once leave exactly 20 files', async () => {
    const id = (await bits(['create', 'crowd', '--json'])).json.result.id
    const results = await Promise.all(Array.from({length: 20}, (_, i) => bits(['addfile', id, `https://example.com/f${i}`, `./f${i}`, '--json'])))
    for (const result of results) assert.equal(result.code, 0, result.stderr)
    const job = (await bits(['info', id, '--json'])).json.result
    assert.equal(job.filesTotal, 20)
    assert.deepEqual(job.files.map((f: {remoteUrl: string}) => f.remoteUrl).sort(), Array.from({length: 20}, (_, i) => `https://example.com/f${i}`).sort())
  })

  test('a corrupt, truncated or newer-schema job file is named in the error while other jobs keep working', async () => {
    const good = (await bits(['create', 'good', '--json'])).json.result.id
    const bad = (await bits(['create', 'bad', '--json'])).json.result.id
    const future = (await bits(['create', 'future', '--json'])).json.result.id
    const badFile = path.join(stateDir, 'jobs', `${bad}.json`)
    const text = await readFile(badFile, 'utf8')
    await writeFile(badFile, text.slice(0, text.length / 2))
    const futureFile = path.join(stateDir, 'jobs', `${future}.json`)
    const record = JSON.parse(await readFile(futureFile, 'utf8'))
    await writeFile(futureFile, JSON.stringify({...record, schemaVersion: 99}))

    const list = await bits(['list', '--json'])
    assert.equal(list.code, 0)
    assert.deepEqual(list.json.result.jobs.map((j: {id: string}) => j.id), [good])
    assert.equal(list.json.warnings.length, 2)
    assert.ok(list.json.warnings.some((w: string) => w.includes(badFile) && w.includes('not valid JSON')))
    assert.ok(list.json.warnings.some((w: string) => w.includes(futureFile) && w.includes('schemaVersion 99')))

    const info = await bits(['info', bad, '--json'])
    assert.equal(info.code, 8)
    assert.equal(info.json.error.code, 'STATE_CORRUPT')
    assert.match(info.json.error.message, new RegExp(bad))
    assert.ok(info.json.error.hint)
    assert.equal((await bits(['resume', good, '--json'])).json.error.code, 'JOB_EMPTY', 'the good job still answers')
    const human = await bits(['list'])
    assert.match(human.stderr, /Warning: .*is unusable/)
  })

  test('an unusable state directory gives a named error (exit 8), also as root', async () => {
    const blocker = path.join(dir, 'not-a-dir')
    await writeFile(blocker, 'x')
    const result = await runCli(['create', 'x', '--json'], {stateDir: path.join(blocker, 'state'), cwd: dir})
    assert.equal(result.code, 8)
    assert.equal(result.json.error.code, 'STATE_UNREADABLE')
    assert.match(result.json.error.message, /not-a-dir/)
  })

  test('credentials never appear in any output; the job file is 0600', async () => {
    const secret = 'pa55-Zebra-Quartz-9137'
    await bits(['create', 'secret'])
    const set = await bits(['set', 'secret', '--credentials', 'server:basic:alice', '--credentials', 'proxy:digest:bob', '--json'], {BITS_PASSWORD: secret})
    assert.equal(set.code, 0, set.stderr)
    assert.deepEqual(set.json.result.credentials.map((c: {password: string}) => c.password), ['set', 'set'])
    const outputs = [set]
    for (const args of [['info', 'secret'], ['info', 'secret', '--verbose'], ['info', 'secret', '--json'], ['list', '--verbose'], ['list', '--json'], ['listfiles', 'secret'], ['set', 'secret', '--priority', 'low'], ['monitor', '--once', '--json']]) {
      outputs.push(await bits(args))
    }
    for (const output of outputs) {
      assert.ok(!output.stdout.includes(secret) && !output.stderr.includes(secret), 'secret leaked')
    }
    assert.match(outputs[2]!.stdout, /alice \(password set\)/)
    const id = outputs[3]!.json.result.id
    const mode = (await stat(path.join(stateDir, 'jobs', `${id}.json`))).mode & 0o777
    assert.equal(mode, 0o600)
    const noPassword = await runCli(['set', 'secret', '--credentials', 'server:basic:carol', '--json'], {stateDir, cwd: dir, env: {BITS_PASSWORD: undefined}})
    assert.equal(noPassword.code, 2)
    assert.match(noPassword.json.error.message, /BITS_PASSWORD/)
  })
})
