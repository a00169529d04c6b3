import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {connect} from 'node:tls'
import {CacheStore} from '../../src/lib/cache/cache-store.js'
import {createContext, type LibContext} from '../../src/lib/context.js'
import {parseSearchResponse} from '../../src/lib/peers/bpcr-messages.js'
import {addTrusted, ensureIdentity, type PeerIdentity} from '../../src/lib/peers/peer-identity.js'
import {PeerServer} from '../../src/lib/peers/peer-server.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const URL_41 = 'http://au.download.windowsupdate.com/msdownload/update/v3-19990518/cabpool/mpas-fe_424732ca30169e03f76401cec04764f02cc6bc3f.exe'

let dir: string
let cleanup: () => Promise<void>
let serverCtx: LibContext
let server: PeerServer
let port: number
let trustedClient: PeerIdentity
let strangerClient: PeerIdentity
let recordId: string
const data = randomBytes(64)
const whole = randomBytes(5000)
let wholeId: string

/** One raw HTTPS exchange with a client certificate; the whole answer, parsed. */
function exchange(request: Buffer | string, identity: PeerIdentity): Promise<{status: number; headers: Record<string, string>; body: Buffer}> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: '127.0.0.1', port, cert: identity.certPem, key: identity.keyPem, rejectUnauthorized: false}, () => socket.write(request))
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const all = Buffer.concat(chunks)
      const split = all.indexOf('\r\n\r\n')
      const [statusLine, ...lines] = all.subarray(0, split).toString('latin1').split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
      resolve({status: Number(statusLine!.split(' ')[1]), headers, body: all.subarray(split + 4)})
    })
  })
}

const post = (body: Buffer, extra = '', version = '1.1') => Buffer.concat([Buffer.from(`POST /BITS-peer-caching HTTP/${version}\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}Content-Length: ${body.length}\r\n\r\n`), body])
const get = (target: string, extra = '', method = 'GET') => `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`

before(async () => {
  ;({dir, cleanup} = await makeTempDir())
  serverCtx = createContext(path.join(dir, 'server'))
  trustedClient = await ensureIdentity(createContext(path.join(dir, 'client')), {name: 'client'})
  strangerClient = await ensureIdentity(createContext(path.join(dir, 'stranger')), {name: 'stranger'})
  await addTrusted(serverCtx, trustedClient.certPem)
  const cache = new CacheStore(serverCtx)
  recordId = (await cache.add({url: URL_41, size: 3373384, fileModifiedAt: '2006-11-07T18:21:41.000Z', etag: null, ranges: [{start: 100, length: 16}, {start: 200, length: 48}], data: Readable.from([data])})).id
  wholeId = (await cache.add({url: 'https://example.com/whole.bin', size: whole.length, fileModifiedAt: '2026-01-01T00:00:00.000Z', etag: '"w"', data: Readable.from([whole])})).id
  server = new PeerServer(serverCtx, {port: 0, maxConcurrentSearches: 4})
  port = (await server.listen()).port
})
after(async () => {
  await server.close()
  await cleanup()
})

test('DISCOVERY-REQUEST - the spec\'s 4.1 request bytes get a Success with the matching record', async () => {
  const body = await readFile(new URL('./fixtures/ms-bpcr-4.1-search-request.bin', import.meta.url))
  const answer = await exchange(post(body, 'Accept: */*\r\nX-ETW-ACTIVITY-ID: {A5C414C6-94AC-4319-8E8D-4C300915CD9B}\r\nUser-Agent: BITS\r\n'), trustedClient)
  assert.equal(answer.status, 200)
  assert.equal(Number(answer.headers['content-length']), answer.body.length)
  assert.equal(answer.body[1], 0, 'UTF-16LE body as Windows writes it')
  const response = parseSearchResponse(answer.body)
  assert.equal(response.status, 'Success')
  assert.equal(response.records.length, 1)
  assert.equal(response.records[0]!.id, `{${recordId.toUpperCase()}}`)
  assert.equal(response.records[0]!.localUrl, `BITS-peer-caching/{${recordId.toUpperCase()}}`)
  assert.deepEqual(response.records[0]!.ranges, [{offset: 100, length: 16}, {offset: 200, length: 48}])
  const other = Buffer.from('<?xml version="1.0" encoding="utf-16"?><SearchRequest><OriginUrl>"https://nowhere.example/x"</OriginUrl></SearchRequest>', 'utf16le')
  assert.equal(parseSearchResponse((await exchange(post(other), trustedClient)).body).status, 'ContentNotFound')
})

test('an untrusted client gets CertificateNotFound to a search and 400 to a download, not a broken connection', async () => {
  const body = await readFile(new URL('./fixtures/ms-bpcr-4.1-search-request.bin', import.meta.url))
  const search = await exchange(post(body), strangerClient)
  assert.equal(search.status, 200)
  assert.equal(parseSearchResponse(search.body).status, 'CertificateNotFound')
  assert.equal((await exchange(get(`/BITS-peer-caching/%7B${wholeId}%7D`), strangerClient)).status, 400)
})

test('DOWNLOAD-REQUEST - whole record, one range, several ranges in the asked order (multipart), HEAD', async () => {
  const full = await exchange(get(`/BITS-peer-caching/%7B${wholeId.toUpperCase()}%7D`), trustedClient)
  assert.equal(full.status, 200)
  assert.ok(full.body.equals(whole))
  assert.equal(full.headers['last-modified'], 'Thu, 01 Jan 2026 00:00:00 GMT')
  assert.match(full.headers['bits_basic_info']!, /^0x[0-9A-F]+,0x[0-9A-F]+,0x[0-9A-F]+,0x[0-9A-F]+,0x20$/)
  const partial = await exchange(get(`/BITS-peer-caching/${recordId}`, 'Range: bytes=0-15\r\n'), trustedClient)
  assert.equal(partial.status, 206)
  assert.equal(partial.headers['content-range'], 'bytes 0-15/64')
  assert.ok(partial.body.equals(data.subarray(0, 16)), 'ranges apply to the record data')
  const contentRangeForm = await exchange(get(`/BITS-peer-caching/${recordId}`, 'Content-Range: bytes 16-63/64\r\n'), trustedClient)
  assert.ok(contentRangeForm.body.equals(data.subarray(16)))
  const multi = await exchange(get(`/BITS-peer-caching/%7B${wholeId}%7D`, 'Range: bytes=4000-4099,0-9\r\n'), trustedClient)
  assert.equal(multi.status, 206)
  const boundary = /boundary=(\S+)/.exec(multi.headers['content-type']!)![1]!
  const parts = multi.body.toString('latin1').split(`--${boundary}`).slice(1, -1)
  assert.equal(parts.length, 2)
  assert.match(parts[0]!, /Content-Range: bytes 4000-4099\/5000/)
  assert.match(parts[1]!, /Content-Range: bytes 0-9\/5000/)
  assert.ok(Buffer.from(parts[0]!.split('\r\n\r\n')[1]!.replace(/\r\n$/, ''), 'latin1').equals(whole.subarray(4000, 4100)))
  const head = await exchange(get(`/BITS-peer-caching/%7B${wholeId}%7D`, '', 'HEAD'), trustedClient)
  assert.equal(head.status, 200)
  assert.equal(head.headers['content-length'], '5000')
  assert.equal(head.body.length, 0)
})

test('malformed requests get their status codes and the server keeps serving', async () => {
  const good = await readFile(new URL('./fixtures/ms-bpcr-4.1-search-request.bin', import.meta.url))
  assert.equal((await exchange(post(good, '', '1.0'), trustedClient)).status, 505)
  assert.equal((await exchange(get('/elsewhere'), trustedClient)).status, 404)
  assert.equal((await exchange('POST /BITS-peer-caching HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', trustedClient)).status, 411)
  assert.equal((await exchange(post(Buffer.alloc(0)), trustedClient)).status, 400, 'zero length')
  assert.equal((await exchange(post(Buffer.alloc(7, 0x41)), trustedClient)).status, 400, 'odd length')
  assert.equal((await exchange(post(Buffer.alloc(1024 * 1024 + 2, 0x20)), trustedClient)).status, 400, 'over 1 MiB')
  const garbage = await exchange(post(Buffer.from('<<<not xml>>>', 'utf16le')), trustedClient)
  assert.equal(parseSearchResponse(garbage.body).status, 'InvalidSearch')
  assert.equal((await exchange(`GET /BITS-peer-caching/${wholeId} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc`, trustedClient)).status, 400, 'GET with a body')
  assert.equal((await exchange(get('/BITS-peer-caching/%7B00000000-0000-0000-0000-000000000000%7D'), trustedClient)).status, 404)
  assert.equal((await exchange(get('/BITS-peer-caching/..%2F..%2Fetc%2Fpasswd'), trustedClient)).status, 404)
  const flood = await Promise.all(Array.from({length: 12}, () => exchange(post(good), trustedClient)))
  assert.ok(flood.every((answer) => answer.status === 200 || answer.status === 503), 'over the concurrency limit: 503')
  assert.equal(parseSearchResponse((await exchange(post(good), trustedClient)).body).status, 'Success', 'still serving')
})

test('a record deleted while its data file is open is not served again: 404 once the record is gone', async () => {
  const cache = new CacheStore(serverCtx)
  const body = randomBytes(3000)
  const id = (await cache.add({url: 'https://example.com/going.bin', size: body.length, fileModifiedAt: null, etag: '"g"', data: Readable.from([body])})).id
  const target = `/BITS-peer-caching/%7B${id}%7D`
  for (const range of ['0-999', '1000-2999']) {
    const answer = await exchange(get(target, `Range: bytes=${range}\r\n`), trustedClient)
    const [start, end] = range.split('-').map(Number) as [number, number]
    assert.deepEqual([answer.status, answer.body], [206, body.subarray(start, end + 1)])
  }
  await cache.delete(id)
  // The server keeps looked-up records for a second; after that the deleted record is unknown.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  assert.equal((await exchange(get(target, 'Range: bytes=0-99\r\n'), trustedClient)).status, 404)
})
