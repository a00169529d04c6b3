import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {readFile, readdir} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {CACHE_BLOCK_SIZE, CacheStore} from '../../src/lib/cache/cache-store.js'
import {createContext} from '../../src/lib/context.js'
import {BitsError} from '../../src/lib/errors.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
before(async () => {
  ;({dir, cleanup} = await makeTempDir())
})
after(() => cleanup())

/** A context whose clock the test moves. */
function clockedContext(name: string) {
  let now = Date.parse('2026-01-01T00:00:00Z')
  const ctx = createContext(path.join(dir, name), {now: () => new Date(now)})
  return {ctx, advance: (ms: number) => (now += ms)}
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

test('CacheStore.add() - stores data with a SHA-256 per block; find() matches URL and validators; open() reads ranges', async () => {
  const {ctx} = clockedContext('store1')
  const store = new CacheStore(ctx)
  const data = randomBytes(2 * CACHE_BLOCK_SIZE + 1000)
  const record = await store.add({url: 'https://example.com/a.bin', size: data.length, fileModifiedAt: '2026-01-01T00:00:00.000Z', etag: '"v1"', data: Readable.from([data.subarray(0, 700_000), data.subarray(700_000)])})
  assert.deepEqual(record.blockHashes, [sha(data.subarray(0, CACHE_BLOCK_SIZE)), sha(data.subarray(CACHE_BLOCK_SIZE, 2 * CACHE_BLOCK_SIZE)), sha(data.subarray(2 * CACHE_BLOCK_SIZE))])
  assert.equal((await readFile(store.dataFile(record.id))).equals(data), true)
  assert.equal((await store.find({url: 'https://example.com/a.bin'})).length, 1)
  assert.equal((await store.find({url: 'https://example.com/a.bin', etag: '"v2"'})).length, 0)
  assert.equal((await store.find({url: 'https://example.com/a.bin', size: data.length + 1})).length, 0)
  assert.equal((await store.find({url: 'https://example.com/a.bin', fileModifiedAt: 'Thu, 01 Jan 2026 00:00:00 GMT'})).length, 1)
  const chunks: Buffer[] = []
  for await (const chunk of await store.open(`{${record.id.toUpperCase()}}`, 10, 19)) chunks.push(chunk as Buffer)
  assert.equal(Buffer.concat(chunks).equals(data.subarray(10, 20)), true)
  await assert.rejects(store.add({url: 'https://example.com/short', size: 10, fileModifiedAt: null, etag: null, data: Readable.from([Buffer.alloc(5)])}), (err: unknown) => err instanceof BitsError && err.code === 'CACHE_CORRUPT')
  await assert.rejects(store.get('../../etc/passwd'), (err: unknown) => err instanceof BitsError && err.code === 'CACHE_MISS')
})

test('CacheStore limits - least recently used records go first when over the size cap; idle records expire', async () => {
  const {ctx, advance} = clockedContext('store2')
  const store = new CacheStore(ctx)
  await store.setLimits({maxSize: '2500B'})
  const add = (name: string) => store.add({url: `https://example.com/${name}`, size: 1000, fileModifiedAt: null, etag: null, data: Readable.from([randomBytes(1000)])})
  const first = await add('one')
  advance(61_000)
  const second = await add('two')
  advance(61_000)
  await store.touch(first)
  advance(61_000)
  await add('three')
  const urls = (await store.list()).map((record) => record.url).sort()
  assert.deepEqual(urls, ['https://example.com/one', 'https://example.com/three'], 'the least recently used record (two) was evicted')
  assert.deepEqual((await readdir(path.join(dir, 'store2', 'cache', 'data'))).length, 2)
  await store.setLimits({maxAgeSeconds: 3600})
  advance(3_601_000)
  const {expired} = await store.enforceLimits()
  assert.equal(expired.length, 2)
  assert.deepEqual(await store.list(), [])
  assert.equal(second.url, 'https://example.com/two')
})

test('bits cache add/list/info/deleteurl/limit/expiration/clear', async () => {
  const origin = await new FixtureServer().start()
  try {
    const body = randomBytes(300_000)
    origin.files.set('/c.bin', {body, etag: '"c"', lastModified: 'Tue, 03 Mar 2026 10:00:00 GMT'})
    const stateDir = path.join(dir, 'cli')
    const added = await runCli(['cache', 'add', origin.url('/c.bin'), '--json'], {stateDir})
    assert.equal(added.code, 0, added.stderr)
    assert.equal(added.json.result.bytes, body.length)
    assert.equal(added.json.result.etag, '"c"')
    const list = await runCli(['cache', 'list', '--json'], {stateDir})
    assert.equal(list.json.result.records.length, 1)
    assert.equal(list.json.result.totalBytes, body.length)
    const info = await runCli(['cache', 'info', added.json.result.id, '--json'], {stateDir})
    assert.equal(info.json.result.blockHashes[0], sha(body))
    assert.equal((await runCli(['cache', 'limit', '--set', '5%', '--json'], {stateDir})).json.result.maxSize, '5%')
    assert.equal((await runCli(['cache', 'limit', '--set', 'lots', '--json'], {stateDir})).code, 2)
    assert.equal((await runCli(['cache', 'expiration', '--set', '3600', '--json'], {stateDir})).json.result.maxAgeSeconds, 3600)
    const deleted = await runCli(['cache', 'deleteurl', origin.url('/c.bin'), '--json'], {stateDir})
    assert.equal(deleted.json.result.length, 1)
    assert.equal((await runCli(['cache', 'deleteurl', origin.url('/c.bin'), '--json'], {stateDir})).code, 3)
    await runCli(['cache', 'add', origin.url('/c.bin')], {stateDir})
    assert.equal((await runCli(['cache', 'clear', '--json'], {stateDir})).json.result.deleted, 1)
    const human = await runCli(['cache', 'list'], {stateDir})
    assert.match(human.stdout, /No cache records/)
  } finally {
    await origin.stop()
  }
})
