// Runs every test/**/*.test.ts with node:test through tsx. Node 20's `--test` takes paths, not
// globs, and Windows shells do not expand `*`, so the files are collected here.
// Usage: node scripts/run-tests.mjs [substring ...]  (only files whose path contains one of them)
import {readdirSync} from 'node:fs'
import {spawnSync} from 'node:child_process'
import path from 'node:path'

const filters = process.argv.slice(2)
const files = readdirSync('test', {recursive: true})
  .map((name) => path.join('test', String(name)))
  .filter((file) => file.endsWith('.test.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort()
if (files.length === 0) {
  console.error(`No test files match ${filters.join(', ') || 'test/**/*.test.ts'}`)
  process.exit(1)
}
const concurrency = process.env.BITS_TEST_CONCURRENCY ?? '2'
// Tests reach loopback and namespaces they make only: multicast discovery stays off unless a test turns it on.
const env = {...process.env, BITS_PEER_DISCOVERY: 'off'}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...files], {stdio: 'inherit', env})
process.exit(result.status ?? 1)
