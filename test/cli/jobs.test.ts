import {afterEach, beforeEach, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFile, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const GUID = /^\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$/

describe('job commands (bin/run.js against a temporary state directory)', () => {
  let dir: string
  let stateDir: string
  let cleanup: () => Promise<void>
  const bits = (args: string[], input?: string) => runCli(args, {stateDir, cwd: dir, input})

  beforeEach(async () => {
    ;({dir, cleanup} = await makeTempDir())
    stateDir = path.join(dir, 'state')
  })
  afterEach(() => cleanup())

  test('create prints a GUID; addfile, list --json and resume follow BITS (the issue\'s "done when")', async () => {
    const created = await bits(['create', '--download', 'nightly'])
    assert.equal(created.code, 0, created.stderr)
    const guid = /\{[0-9A-F-]{36}\}/.exec(created.stdout)?.[0]
    assert.match(guid ?? '', GUID)
    const added = await bits(['addfile', 'nightly', 'https://example.com/a.bin', './a.bin'])
    assert.equal(added.code, 0, added.stderr)
    const list = await bits(['list', '--json'])
    assert.deepEqual(Object.keys(list.json).sort(), ['result', 'status', 'warnings'])
    const [job] = list.json.result.jobs
    assert.equal(job.state, 'SUSPENDED')
    assert.equal(job.filesTotal, 1)
    assert.equal(job.bytesTotal, null)
    assert.equal(job.files[0].localPath, path.join(dir, 'a.bin'), 'relative paths resolve against the current directory')
    const resumed = await bits(['resume', 'nightly', '--json'])
    assert.equal(resumed.code, 0)
    assert.equal(resumed.json.result.state, 'QUEUED')
  })

  test('resume of an empty job fails with 0x80200003 and the job stays SUSPENDED', async () => {
    await bits(['create', 'empty'])
    const resumed = await bits(['resume', 'empty', '--json'])
    assert.equal(resumed.code, 4)
    assert.equal(resumed.json.status, 4)
    assert.equal(resumed.json.error.code, 'JOB_EMPTY')
    assert.equal(resumed.json.error.hresult, '0x80200003')
    assert.ok(resumed.json.error.hint)
    const human = await bits(['resume', 'empty'])
    assert.equal(human.code, 4)
    assert.match(human.stderr, /^Error: .*0x80200003/m)
    assert.match(human.stderr, /^Try: /m)
    assert.equal(human.stdout, '')
    assert.equal((await bits(['info', 'empty', '--json'])).json.result.state, 'SUSPENDED')
  })

  test('usage errors exit 2 with one JSON error document; unknown jobs exit 3 with 0x80200001', async () => {
    const usage = await bits(['create', '--json'])
    assert.equal(usage.code, 2)
    assert.equal(usage.json.error.code, 'USAGE_INVALID_ARG')
    const badFlag = await bits(['list', '--bogus', '--json'])
    assert.equal(badFlag.code, 2)
    const missing = await bits(['info', 'nope', '--json'])
    assert.equal(missing.code, 3)
    assert.equal(missing.json.error.hresult, '0x80200001')
    const badUrl = await bits(['create', 'x'])
    assert.equal(badUrl.code, 0)
    const ftp = await bits(['addfile', 'x', 'ftp://example.com/a', './a', '--json'])
    assert.equal(ftp.code, 2)
    assert.match(ftp.json.error.message, /only http and https/)
    const noDir = await bits(['addfile', 'x', 'https://example.com/a', './missing-dir/a', '--json'])
    assert.equal(noDir.code, 3)
    assert.match(noDir.json.error.message, /missing-dir/)
  })

  test('an ambiguous display name is an error listing the candidates; a GUID prefix resolves', async () => {
    const first = (await bits(['create', 'twin', '--json'])).json.result.id
    const second = (await bits(['create', 'twin', '--json'])).json.result.id
    const ambiguous = await bits(['info', 'twin', '--json'])
    assert.equal(ambiguous.code, 2)
    assert.equal(ambiguous.json.error.code, 'USAGE_AMBIGUOUS_JOB')
    assert.deepEqual(ambiguous.json.error.details.candidates.map((c: {id: string}) => c.id).sort(), [first, second].sort())
    const byPrefix = await bits(['info', first.slice(0, 8), '--json'])
    assert.equal(byPrefix.json.result.id, first)
    const byBraces = await bits(['info', `{${second.toUpperCase()}}`, '--json'])
    assert.equal(byBraces.json.result.id, second)
  })

  test('addfileset adds every pair or none; listfiles lists them', async () => {
    await bits(['create', 'set'])
    await writeFile(path.join(dir, 'bad.txt'), '# files\nhttps://example.com/a ./a\nhttps://example.com/b\n')
    const bad = await bits(['addfileset', 'set', 'bad.txt', '--json'])
    assert.equal(bad.code, 2)
    assert.match(bad.json.error.message, /bad\.txt:3/)
    assert.equal((await bits(['info', 'set', '--json'])).json.result.filesTotal, 0, 'a bad line adds nothing')
    await writeFile(path.join(dir, 'good.txt'), '# files\nhttps://example.com/a ./a\n\nhttps://example.com/b "./b c"\n')
    const good = await bits(['addfileset', 'set', 'good.txt', '--json'])
    assert.equal(good.code, 0, good.stderr)
    const files = await bits(['listfiles', 'set', '--json'])
    assert.deepEqual(files.json.result.files.map((f: {localPath: string}) => f.localPath), [path.join(dir, 'a'), path.join(dir, 'b c')])
    const fromStdin = await bits(['addfileset', 'set', '-', '--json'], 'https://example.com/c ./c\n')
    assert.equal(fromStdin.json.result.filesTotal, 3)
  })

  test('cancel deletes temporary files; CANCELLED is final and leaves the list', async () => {
    const id = (await bits(['create', 'gone', '--json'])).json.result.id
    const job = (await bits(['addfile', id, 'https://example.com/a', './a', '--json'])).json.result
    const temp = job.files[0].temporaryName
    assert.equal(path.dirname(temp), dir, 'the temporary file lives beside the destination')
    await writeFile(temp, 'partial bytes')
    const cancelled = await bits(['cancel', id, '--json'])
    assert.equal(cancelled.code, 0)
    assert.deepEqual(cancelled.json.result.filesDeleted, [temp])
    await assert.rejects(stat(temp))
    assert.equal((await bits(['list', '--json'])).json.result.jobs.length, 0)
    assert.equal((await bits(['list', '--all', '--json'])).json.result.jobs[0].state, 'CANCELLED')
    const again = await bits(['resume', id, '--json'])
    assert.equal(again.code, 4)
    assert.equal(again.json.error.hresult, '0x80200002')
  })

  test('complete renames transferred files and, on a partial job, keeps only those (BG_S_PARTIAL_COMPLETE)', async () => {
    const id = (await bits(['create', 'done', '--json'])).json.result.id
    await bits(['addfile', id, 'https://example.com/a', './a'])
    const job = (await bits(['addfile', id, 'https://example.com/b', './b', '--json'])).json.result
    // Play the engine: file a is fully transferred, file b only started.
    const jobFile = path.join(stateDir, 'jobs', `${id}.json`)
    const record = JSON.parse(await readFile(jobFile, 'utf8'))
    Object.assign(record.files[0], {transferred: true, bytesTotal: 5, bytesTransferred: 5})
    await writeFile(jobFile, JSON.stringify(record))
    await writeFile(job.files[0].temporaryName, 'hello')
    await writeFile(job.files[1].temporaryName, 'hal')
    const completed = await bits(['complete', id, '--json'])
    assert.equal(completed.code, 0, completed.stderr)
    assert.equal(completed.json.result.partial, true)
    assert.equal(completed.json.result.hresult, '0x00200017')
    assert.match(completed.json.warnings[0], /BG_S_PARTIAL_COMPLETE/)
    assert.equal(await readFile(path.join(dir, 'a'), 'utf8'), 'hello')
    await assert.rejects(stat(path.join(dir, 'b')))
    await assert.rejects(stat(job.files[1].temporaryName))
    assert.equal(completed.json.result.job.state, 'ACKNOWLEDGED')
  })

  test('reset cancels every job of the user, one line each', async () => {
    await bits(['create', 'one'])
    await bits(['create', 'two'])
    const reset = await bits(['reset'])
    assert.equal(reset.code, 0)
    assert.equal(reset.stdout.match(/^\{[0-9A-F-]+\} canceled\.$/gm)?.length, 2)
    assert.match(reset.stdout, /2 out of 2 jobs canceled/)
    assert.equal((await bits(['list', '--json'])).json.result.jobs.length, 0)
  })

  test('set changes each property and clears it again; bad values are refused by name', async () => {
    await bits(['create', 'props'])
    const set = await bits([
      'set', 'props', '--priority', 'high', '--min-retry-delay', '1', '--no-progress-timeout', '60', '--notify-cmdline', '/usr/bin/logger "job done"',
      '--custom-header', 'X-A: 1', '--custom-header', 'X-B: 2', '--proxy', 'override:http://127.0.0.1:3128', '--proxy-bypass', '<local>',
      '--redirect-policy', 'disallow', '--security-flags', '0x4', '--peer-caching', 'client,server', '--parallel', '4', '--description', 'nightly build', '--json',
    ])
    assert.equal(set.code, 0, set.stderr)
    const job = set.json.result
    assert.equal(job.priority, 'HIGH')
    assert.equal(job.minRetryDelay, 5, 'values below 5 are clamped to 5')
    assert.equal(job.noProgressTimeout, 60)
    assert.deepEqual(job.notifyCmdLine, {program: '/usr/bin/logger', args: ['job done']})
    assert.deepEqual(job.customHeaders, ['X-A: 1', 'X-B: 2'])
    assert.deepEqual(job.proxy, {usage: 'OVERRIDE', list: ['http://127.0.0.1:3128'], bypass: ['<local>']})
    assert.equal(job.securityFlags, 0x204, '--redirect-policy sets the redirect bits of --security-flags')
    assert.equal(job.peerCachingFlags, 3)
    assert.equal(job.parallel, 4)
    const cleared = await bits(['set', 'props', '--notify-cmdline', 'NULL', '--clear-custom-headers', '--proxy', 'preconfig', '--min-retry-delay', 'default', '--json'])
    assert.equal(cleared.json.result.notifyCmdLine, null)
    assert.deepEqual(cleared.json.result.customHeaders, [])
    assert.deepEqual(cleared.json.result.proxy, {usage: 'PRECONFIG', list: [], bypass: []})
    assert.equal(cleared.json.result.minRetryDelay, 600)
    const reserved = await bits(['set', 'props', '--custom-header', 'Authorization: Basic x', '--json'])
    assert.equal(reserved.code, 2)
    assert.match(reserved.json.error.message, /Authorization/)
    const ntlm = await bits(['set', 'props', '--credentials', 'server:ntlm:alice', '--json'])
    assert.equal(ntlm.code, 2)
    assert.equal(ntlm.json.error.code, 'USAGE_UNSUPPORTED')
    const long = await bits(['set', 'props', '--display-name', 'x'.repeat(257), '--json'])
    assert.equal(long.json.error.hresult, '0x80200021')
  })

  test('an upload job takes exactly one file (0x8020001C)', async () => {
    await writeFile(path.join(dir, 'up.txt'), 'data')
    await bits(['create', '--upload', 'up'])
    assert.equal((await bits(['addfile', 'up', 'https://example.com/u', './up.txt'])).code, 0)
    const second = await bits(['addfile', 'up', 'https://example.com/u2', './up.txt', '--json'])
    assert.equal(second.code, 4)
    assert.equal(second.json.error.hresult, '0x8020001c')
  })

  test('human output: plain aligned text when not a terminal; TRANSFERRED says complete is next', async () => {
    await bits(['create', 'plain'])
    const list = await bits(['list'])
    assert.match(list.stdout, /^ID\s+NAME\s+TYPE\s+STATE/m)
    assert.doesNotMatch(list.stdout, /[┌│]/, 'no box drawing outside a terminal')
    assert.match(list.stdout, /plain\s+download\s+SUSPENDED/)
  })
})
