import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readdir, readFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {makeTempDir} from '../helpers/temp-dir.js'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

test('man pages - the checked-in pages match the command definitions (run npm run man)', async () => {
  const {dir, cleanup} = await makeTempDir()
  try {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'generate-man.mjs'), dir])
    const fresh = (await readdir(dir)).sort()
    const checkedIn = (await readdir(path.join(root, 'man'))).filter((name) => name.endsWith('.1')).sort()
    assert.deepEqual(checkedIn, fresh, 'man/ has missing or extra pages: run npm run man')
    assert.ok(fresh.includes('bits.1') && fresh.includes('bits-transfer.1'))
    for (const name of fresh) {
      assert.equal(await readFile(path.join(root, 'man', name), 'utf8'), await readFile(path.join(dir, name), 'utf8'), `man/${name} is stale: run npm run man`)
    }
  } finally {
    await cleanup()
  }
})

test('man pages - every page names its command, shows examples and the --json flag', async () => {
  const page = await readFile(path.join(root, 'man', 'bits-resume.1'), 'utf8')
  assert.match(page, /^\.TH "BITS-RESUME" "1"/)
  assert.match(page, /\.SH EXAMPLES[\s\S]*bits resume nightly/)
  assert.match(page, /\\-\\-json/)
  assert.match(page, /Environment: BITS_STATE_DIR/)
})
