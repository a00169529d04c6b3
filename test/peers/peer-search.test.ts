import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import {Readable} from 'node:stream'
import {CacheStore} from '../../src/lib/cache/cache-store.js'
import {createContext, type LibContext} from '../../src/lib/context.js'
import {addTrusted, ensureIdentity} from '../../src/lib/peers/peer-identity.js'
import {searchPeers} from '../../src/lib/peers/peer-client.js'
import {PeerServer} from '../../src/lib/peers/peer-server.js'
import {addPeer, listPeers} from '../../src/lib/peers/peer-table.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
let client: LibContext
const servers: PeerServer[] = []
const ports: Record<string, number> = {}

/** A peer on its own 127.0.0.x address and state directory. */
async function startPeer(name: string, host: string, options: {trustsClient: boolean; trustedByClient: boolean; cached?: boolean}) {
  const ctx = createContext(path.join(dir, name))
  const identity = await ensureIdentity(ctx, {name})
  if (options.trustsClient) await addTrusted(ctx, (await ensureIdentity(client)).certPem)
  if (options.trustedByClient) await addTrusted(client, identity.certPem)
  if (options.cached) await new CacheStore(ctx).add({url: 'https://origin.example/f.bin', size: 1000, fileModifiedAt: null, etag: '"f"', data: Readable.from([randomBytes(1000)])})
  const server = new PeerServer(ctx, {host, port: 0})
  servers.push(server)
  ports[name] = (await server.listen()).port
  await addPeer(client, {host, port: ports[name], source: 'added'})
}

before(async () => {
  ;({dir, cleanup} = await makeTempDir())
  client = createContext(path.join(dir, 'client'))
  await startPeer('holder', '127.0.0.2', {trustsClient: true, trustedByClient: true, cached: true})
  await startPeer('empty', '127.0.0.3', {trustsClient: true, trustedByClient: true})
  await startPeer('stranger', '127.0.0.4', {trustsClient: true, trustedByClient: false, cached: true})
  await startPeer('picky', '127.0.0.5', {trustsClient: false, trustedByClient: true, cached: true})
  await addPeer(client, {host: '127.0.0.6', port: 9, source: 'added'})
})
after(async () => {
  for (const server of servers) await server.close()
  await cleanup()
})

test('searchPeers() - asks every peer and reports each answer by the spec\'s result names', async () => {
  const answers = await searchPeers(client, {originUrl: 'https://origin.example/f.bin', fileSize: 1000}, {attemptTimeoutMs: 3000, searchTimeoutMs: 5000})
  const byPeer = Object.fromEntries(answers.map((answer) => [answer.peer.split(':')[0], answer]))
  assert.equal(byPeer['127.0.0.2']!.result, 'FOUND')
  assert.equal(byPeer['127.0.0.2']!.records[0]!.fileSize, 1000)
  assert.deepEqual(byPeer['127.0.0.2']!.records[0]!.ranges, [{offset: 0, length: 1000}])
  assert.equal(byPeer['127.0.0.3']!.result, 'NOT_FOUND')
  assert.equal(byPeer['127.0.0.4']!.result, 'SERVER_CERT_UNKNOWN', 'a peer we do not trust is never asked')
  assert.equal(byPeer['127.0.0.5']!.result, 'CLIENT_CERT_UNKNOWN')
  assert.equal(byPeer['127.0.0.6']!.result, 'TRANSPORT_ERROR')
  const table = await listPeers(client)
  assert.equal(table.length, 5, 'none of these answers removes a peer')
  assert.deepEqual(table.filter((peer) => peer.authenticatedAt).map((peer) => peer.host).sort(), ['127.0.0.2', '127.0.0.3'], 'peers that completed mutual TLS are marked, to be asked first next time')
})

test('bits peers search prints each peer\'s answer', async () => {
  const result = await runCli(['peers', 'search', 'https://origin.example/f.bin', '--attempt-timeout', '3', '--timeout', '5', '--json'], {stateDir: path.join(dir, 'client')})
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.json.result.answers.filter((answer: {result: string}) => answer.result === 'FOUND').length, 1)
  const human = await runCli(['peers', 'search', 'https://origin.example/f.bin', '--attempt-timeout', '3', '--timeout', '5'], {stateDir: path.join(dir, 'client')})
  assert.match(human.stdout, /127\.0\.0\.2:\d+\s+FOUND/)
})

test('trust by CA bundle: a peer whose certificate the bundle CA issued is trusted in both directions', async () => {
  const {TestCa} = await import('../helpers/certificates.js')
  const {setTrustedCas} = await import('../../src/lib/peers/peer-identity.js')
  const {writeFile} = await import('node:fs/promises')
  const ca = await TestCa.create('peers CA')
  const caFile = path.join(dir, 'peers-ca.pem')
  await writeFile(caFile, ca.cert)
  const issuedPeer = createContext(path.join(dir, 'ca-peer'))
  const peerCert = await ca.issue({hosts: [{ip: '127.0.0.7'}], usages: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']})
  const {mkdir} = await import('node:fs/promises')
  await mkdir(path.join(issuedPeer.stateDir, 'peers'), {recursive: true})
  await writeFile(path.join(issuedPeer.stateDir, 'peers', 'identity.crt'), peerCert.cert.split(/(?<=-----END CERTIFICATE-----)/)[0]! + '\n')
  await writeFile(path.join(issuedPeer.stateDir, 'peers', 'identity.key'), peerCert.key)
  await setTrustedCas(issuedPeer, caFile)
  await new CacheStore(issuedPeer).add({url: 'https://origin.example/ca.bin', size: 10, fileModifiedAt: null, etag: null, data: Readable.from([randomBytes(10)])})
  await setTrustedCas(client, caFile)
  const caServer = new PeerServer(issuedPeer, {host: '127.0.0.7', port: 0})
  servers.push(caServer)
  const port = (await caServer.listen()).port
  const lonely = createContext(path.join(dir, 'lonely-client'))
  await addPeer(lonely, {host: '127.0.0.7', port, source: 'added'})
  const [refused] = await searchPeers(lonely, {originUrl: 'https://origin.example/ca.bin'}, {attemptTimeoutMs: 3000})
  assert.equal(refused!.result, 'SERVER_CERT_UNKNOWN', 'without the bundle the peer is not trusted')
  await addPeer(client, {host: '127.0.0.7', port, source: 'added'})
  const answers = await searchPeers(client, {originUrl: 'https://origin.example/ca.bin'}, {attemptTimeoutMs: 3000})
  const answer = answers.find((a) => a.peer.startsWith('127.0.0.7'))!
  assert.equal(answer.result, 'CLIENT_CERT_UNKNOWN', 'the client cert is self-signed, not from the bundle CA')
})
