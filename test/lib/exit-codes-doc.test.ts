import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {ERROR_CODES} from '../../src/lib/errors.js'

test('docs/exit-codes.md - lists every error code with its exit code and retryable flag', async () => {
  const doc = await readFile(new URL('../../docs/exit-codes.md', import.meta.url), 'utf8')
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const row = new RegExp(`^\\| \`${code}\` \\| ${spec.exitCode} \\| ${spec.retryable ? 'yes' : 'no'} \\|`, 'm')
    assert.match(doc, row, `docs/exit-codes.md is missing or wrong for ${code}`)
  }
})
