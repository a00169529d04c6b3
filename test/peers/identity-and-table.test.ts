import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {X509Certificate} from 'node:crypto'
import {stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {createContext} from '../../src/lib/context.js'
import {BitsError} from '../../src/lib/errors.js'
import {addTrusted, ensureIdentity, isTrusted, listTrusted, MAX_TRUSTED, normalizeFingerprint, removeTrusted} from '../../src/lib/peers/peer-identity.js'
import {addPeer, clearPeers, listPeers, parsePeerAddress, removePeer} from '../../src/lib/peers/peer-table.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
before(async () => {
  ;({dir, cleanup} = await makeTempDir())
})
after(() => cleanup())

test('ensureIdentity() - creates a key (0600) and a self-signed serverAuth+clientAuth certificate once', async () => {
  const ctx = createContext(path.join(dir, 'a'))
  const first = await ensureIdentity(ctx, {name: 'peer-a'})
  assert.equal(first.created, true)
  const cert = new X509Certificate(first.certPem)
  assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
  assert.match(cert.subject, /CN=peer-a/)
  assert.equal(cert.subject, cert.issuer, 'self-signed')
  assert.equal(cert.verify(cert.publicKey), true)
  assert.equal((await stat(path.join(dir, 'a', 'peers', 'identity.key'))).mode & 0o777, 0o600)
  const second = await ensureIdentity(ctx)
  assert.equal(second.created, false)
  assert.equal(second.fingerprint, first.fingerprint)
})

test('trust table - by certificate file or fingerprint; at most 100, oldest dropped; remove', async () => {
  const ctx = createContext(path.join(dir, 'b'))
  const peer = await ensureIdentity(createContext(path.join(dir, 'peer')), {name: 'peer-b'})
  const certFile = path.join(dir, 'peer-b.crt')
  await writeFile(certFile, peer.certPem)
  const added = await addTrusted(ctx, certFile)
  assert.equal(added.added.fingerprint, peer.fingerprint)
  assert.equal(await isTrusted(ctx, new X509Certificate(peer.certPem)), true)
  assert.equal(normalizeFingerprint(peer.fingerprint.replaceAll(':', '').toLowerCase()), peer.fingerprint)
  for (let i = 0; i < MAX_TRUSTED; i++) await addTrusted(ctx, i.toString(16).padStart(64, '0'))
  const entries = await listTrusted(ctx)
  assert.equal(entries.length, MAX_TRUSTED)
  assert.equal(entries.some((entry) => entry.fingerprint === peer.fingerprint), false, 'the oldest entry was dropped')
  await removeTrusted(ctx, '0'.repeat(64))
  assert.equal((await listTrusted(ctx)).length, MAX_TRUSTED - 1)
  await assert.rejects(removeTrusted(ctx, '0'.repeat(64)), (err: unknown) => err instanceof BitsError && err.code === 'PEER_UNTRUSTED')
  await assert.rejects(addTrusted(ctx, 'not-a-cert'), (err: unknown) => err instanceof BitsError && err.code === 'USAGE_INVALID_ARG')
})

test('peer table - add (default port 2178), refresh, remove, clear; addresses are checked', async () => {
  const ctx = createContext(path.join(dir, 'c'))
  assert.deepEqual(parsePeerAddress('Peer7.Example'), {host: 'peer7.example', port: 2178})
  assert.deepEqual(parsePeerAddress('[::1]:9000'), {host: '::1', port: 9000})
  assert.throws(() => parsePeerAddress('http://x'), (err: unknown) => err instanceof BitsError && err.code === 'USAGE_INVALID_ARG')
  await addPeer(ctx, {host: '127.0.0.2', source: 'discovered'})
  await addPeer(ctx, {host: '127.0.0.2', source: 'added'})
  await addPeer(ctx, {host: '127.0.0.3', port: 2200, source: 'paired'})
  const peers = await listPeers(ctx)
  assert.equal(peers.length, 2)
  assert.equal(peers[0]!.source, 'added', 'a discovered peer added by hand counts as added')
  await removePeer(ctx, '127.0.0.3:2200')
  assert.deepEqual((await listPeers(ctx)).map((peer) => peer.host), ['127.0.0.2'])
  assert.deepEqual(await clearPeers(ctx), {removed: 1})
})

test('bits peers identity / trust / add / list', async () => {
  const stateDir = path.join(dir, 'cli')
  const identity = await runCli(['peers', 'identity', '--json'], {stateDir})
  assert.equal(identity.code, 0, identity.stderr)
  assert.equal(identity.json.result.created, true)
  const cert = await runCli(['peers', 'identity', '--cert'], {stateDir})
  assert.match(cert.stdout, /^-----BEGIN CERTIFICATE-----/)
  const trusted = await runCli(['peers', 'trust', 'add', identity.json.result.fingerprint, '--json'], {stateDir})
  assert.equal(trusted.code, 0, trusted.stderr)
  assert.equal((await runCli(['peers', 'trust', 'list', '--json'], {stateDir})).json.result.trusted.length, 1)
  assert.equal((await runCli(['peers', 'add', '127.0.0.5', '--json'], {stateDir})).json.result.port, 2178)
  const list = await runCli(['peers', 'list'], {stateDir})
  assert.match(list.stdout, /127\.0\.0\.5\s+2178\s+added/)
  assert.equal((await runCli(['peers', 'remove', 'nowhere.example', '--json'], {stateDir})).code, 9)
})
