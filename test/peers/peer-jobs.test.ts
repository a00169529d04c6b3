import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {createServer as createHttpsServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import {buildSearchResponse} from '../../src/lib/peers/bpcr-messages.js'
import path from 'node:path'
import {Readable} from 'node:stream'
import {CacheStore} from '../../src/lib/cache/cache-store.js'
import {createContext, type LibContext} from '../../src/lib/context.js'
import {completeJob} from '../../src/lib/jobs/job-service.js'
import {addTrusted, ensureIdentity} from '../../src/lib/peers/peer-identity.js'
import {isQuarantined} from '../../src/lib/peers/peer-download.js'
import {PeerServer} from '../../src/lib/peers/peer-server.js'
import {addPeer} from '../../src/lib/peers/peer-table.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {inState, queueJob, sha256, startEngine, waitForJob} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
let origin: FixtureServer
let a: LibContext
let peerServer: PeerServer
let peerName: string
const body = randomBytes(3 * 1024 * 1024 + 777)

before(async () => {
  ;({dir, cleanup} = await makeTempDir())
  origin = await new FixtureServer().start()
  origin.files.set('/shared.bin', {body, etag: '"shared"', lastModified: 'Tue, 03 Mar 2026 10:00:00 GMT'})
  a = createContext(path.join(dir, 'a'))
  peerServer = new PeerServer(a, {host: '127.0.0.2', port: 0})
  peerName = `127.0.0.2:${(await peerServer.listen()).port}`
})
after(async () => {
  await peerServer.close()
  await origin.stop()
  await cleanup()
})

/** A second machine B that trusts A (and is trusted by it) and lists it as a peer. */
async function machineTrustingA(name: string): Promise<LibContext> {
  const b = createContext(path.join(dir, name))
  await addTrusted(b, (await ensureIdentity(a)).certPem)
  await addTrusted(a, (await ensureIdentity(b, {name})).certPem)
  const [host, port] = peerName.split(':')
  await addPeer(b, {host: host!, port: Number(port), source: 'added'})
  return b
}

async function download(ctx: LibContext, name: string, flags: number) {
  const {stop} = await startEngine(ctx.stateDir)
  try {
    const local = path.join(dir, `${name}.bin`)
    const job = await queueJob(ctx, name, [{remoteUrl: origin.url('/shared.bin'), localPath: local}], {peerCachingFlags: flags})
    const done = await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'), 20_000)
    await completeJob(ctx, job.id)
    return {done, data: await readFile(local)}
  } finally {
    await stop()
  }
}

test('peer caching: A downloads with the server flag, B with the client flag gets every byte from A and none from the origin', async () => {
  const fromOrigin = await download(a, 'a-copy', 2)
  assert.equal(fromOrigin.done.state, 'TRANSFERRED')
  const records = await new CacheStore(a).find({url: origin.url('/shared.bin')})
  assert.equal(records.length, 1, 'the finished file joined A\'s cache')
  const bodyBytesBefore = origin.bytesSent('/shared.bin')
  const b = await machineTrustingA('b')
  const viaPeer = await download(b, 'b-copy', 1)
  assert.equal(viaPeer.done.state, 'TRANSFERRED', JSON.stringify(viaPeer.done.error))
  assert.equal(sha256(viaPeer.data), sha256(body))
  assert.equal(origin.bytesSent('/shared.bin'), bodyBytesBefore, 'the origin served no body bytes to B')
  assert.deepEqual(viaPeer.done.files[0]!.bytesFromPeers, {[peerName]: body.length})
  assert.equal(viaPeer.done.files[0]!.bytesFromOrigin, 0)
})

test('peer caching: a partial record serves its prefix and the origin completes the file', async () => {
  const partialOrigin = randomBytes(2 * 1024 * 1024 + 99)
  origin.files.set('/partial.bin', {body: partialOrigin, etag: '"partial"', lastModified: 'Tue, 03 Mar 2026 10:00:00 GMT'})
  const prefix = 1024 * 1024 + 10
  await new CacheStore(a).add({url: origin.url('/partial.bin'), size: partialOrigin.length, fileModifiedAt: new Date('Tue, 03 Mar 2026 10:00:00 GMT').toISOString(), etag: '"partial"', ranges: [{start: 0, length: prefix}], data: Readable.from([partialOrigin.subarray(0, prefix)])})
  const d = await machineTrustingA('d')
  const {stop} = await startEngine(d.stateDir)
  try {
    const local = path.join(dir, 'd-partial.bin')
    const job = await queueJob(d, 'partial', [{remoteUrl: origin.url('/partial.bin'), localPath: local}], {peerCachingFlags: 1})
    const done = await waitForJob(d, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'), 20_000)
    assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
    await completeJob(d, job.id)
    assert.equal(sha256(await readFile(local)), sha256(partialOrigin))
    assert.equal(done.files[0]!.bytesFromPeers[peerName], prefix)
    assert.equal(done.files[0]!.bytesFromOrigin, partialOrigin.length - prefix)
    const lastGet = origin.requests.filter((r) => r.path === '/partial.bin' && r.method === 'GET').at(-1)!
    assert.equal(lastGet.headers.range, `bytes=${prefix}-`)
  } finally {
    await stop()
  }
})

test('peer caching: partial records on two peers together cover the file; the origin sends no body bytes', async () => {
  const split = randomBytes(3 * 1024 * 1024 + 5)
  origin.files.set('/split.bin', {body: split, etag: '"split"', lastModified: 'Tue, 03 Mar 2026 10:00:00 GMT'})
  const mtime = new Date('Tue, 03 Mar 2026 10:00:00 GMT').toISOString()
  const head = 1024 * 1024
  await new CacheStore(a).add({url: origin.url('/split.bin'), size: split.length, fileModifiedAt: mtime, etag: '"split"', ranges: [{start: 0, length: head}], data: Readable.from([split.subarray(0, head)])})
  const f = createContext(path.join(dir, 'f'))
  await new CacheStore(f).add({url: origin.url('/split.bin'), size: split.length, fileModifiedAt: mtime, etag: '"split"', ranges: [{start: head, length: split.length - head}], data: Readable.from([split.subarray(head)])})
  const second = new PeerServer(f, {host: '127.0.0.8', port: 0})
  const secondName = `127.0.0.8:${(await second.listen()).port}`
  try {
    const g = await machineTrustingA('g')
    await addTrusted(g, (await ensureIdentity(f, {name: 'f'})).certPem)
    await addTrusted(f, (await ensureIdentity(g)).certPem)
    await addPeer(g, {host: '127.0.0.8', port: Number(secondName.split(':')[1]), source: 'added'})
    const before = origin.bytesSent('/split.bin')
    const {stop} = await startEngine(g.stateDir)
    try {
      const local = path.join(dir, 'g-split.bin')
      const job = await queueJob(g, 'split', [{remoteUrl: origin.url('/split.bin'), localPath: local}], {peerCachingFlags: 1})
      const done = await waitForJob(g, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'), 20_000)
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      await completeJob(g, job.id)
      assert.equal(sha256(await readFile(local)), sha256(split))
      assert.deepEqual(done.files[0]!.bytesFromPeers, {[peerName]: head, [secondName]: split.length - head})
      assert.equal(origin.bytesSent('/split.bin'), before, 'no body bytes from the origin')
    } finally {
      await stop()
    }
  } finally {
    await second.close()
  }
})

test('the defaultPeerCachingFlags setting applies to new jobs', async () => {
  const stateDir = path.join(dir, 'defaults')
  const {writeSetting} = await import('../../src/lib/settings.js')
  const {createJob} = await import('../../src/lib/jobs/job-service.js')
  await writeSetting(stateDir, 'defaultPeerCachingFlags', '3')
  const job = await createJob(createContext(stateDir), {displayName: 'defaulted'})
  assert.equal(job.peerCachingFlags, 3)
})

test('peer caching: a peer that stalls is abandoned within the deadline and the origin sends the rest', async () => {
  const staller = createContext(path.join(dir, 'staller'))
  const identity = await ensureIdentity(staller, {name: 'staller'})
  const blockHashes = [sha256(body.subarray(0, 1024 * 1024)), sha256(body.subarray(1024 * 1024, 2 * 1024 * 1024)), sha256(body.subarray(2 * 1024 * 1024, 3 * 1024 * 1024)), sha256(body.subarray(3 * 1024 * 1024))]
  const server = createHttpsServer({cert: identity.certPem, key: identity.keyPem, requestCert: true, rejectUnauthorized: false}, (req, res) => {
    if (req.method === 'POST') {
      req.resume()
      const reply = buildSearchResponse({status: 'Success', records: [{id: '{11111111-2222-3333-4444-555555555555}', creationTime: '2026-01-01T00:00:00Z', modificationTime: '2026-01-01T00:00:00Z', lastAccessTime: '2026-01-01T00:00:00Z', originUrl: origin.url('/shared.bin'), localUrl: 'BITS-peer-caching/{11111111-2222-3333-4444-555555555555}', fileModificationTime: '2026-03-03T10:00:00.000Z', fileSize: body.length, ranges: [{offset: 0, length: body.length}], blockSize: 1024 * 1024, blockHashes}]})
      res.writeHead(200, {'content-length': reply.length}).end(reply)
      return
    }
    res.writeHead(206, {'content-length': body.length, 'content-range': `bytes 0-${body.length - 1}/${body.length}`})
    res.write(body.subarray(0, 1000))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', resolve))
  try {
    const e = createContext(path.join(dir, 'e'))
    await addTrusted(e, identity.certPem)
    await addPeer(e, {host: '127.0.0.3', port: (server.address() as AddressInfo).port, source: 'added'})
    const {stop} = await startEngine(e.stateDir)
    try {
      const local = path.join(dir, 'e.bin')
      const started = Date.now()
      const job = await queueJob(e, 'stalled', [{remoteUrl: origin.url('/shared.bin'), localPath: local}], {peerCachingFlags: 1})
      const done = await waitForJob(e, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'), 20_000)
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.ok(Date.now() - started < 10_000, 'abandoned within the stall deadline')
      await completeJob(e, job.id)
      assert.equal(sha256(await readFile(local)), sha256(body))
      assert.equal(done.files[0]!.bytesFromOrigin, body.length)
    } finally {
      await stop()
    }
  } finally {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

// Last: it quarantines the peer for the rest of this process.
test('peer caching: a corrupt peer block is detected, the peer quarantined, and the origin sends the rest', async () => {
  const [record] = await new CacheStore(a).find({url: origin.url('/shared.bin')})
  const dataFile = new CacheStore(a).dataFile(record!.id)
  const data = await readFile(dataFile)
  data[1024 * 1024 + 5] ^= 0xff
  await writeFile(dataFile, data)
  const c = await machineTrustingA('c')
  const result = await download(c, 'c-copy', 1)
  assert.equal(result.done.state, 'TRANSFERRED', JSON.stringify(result.done.error))
  assert.equal(sha256(result.data), sha256(body), 'the file is still right')
  assert.equal(result.done.files[0]!.bytesFromPeers[peerName], 1024 * 1024, 'only the first, good block came from the peer')
  assert.equal(result.done.files[0]!.bytesFromOrigin, body.length - 1024 * 1024)
  assert.equal(isQuarantined(peerName), true)
})
