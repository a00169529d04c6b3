import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import {randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {CacheStore} from '../../src/lib/cache/cache-store.js'
import {createContext, type LibContext} from '../../src/lib/context.js'
import {startDiscoveryAgent} from '../../src/lib/peers/discovery/discovery-agent.js'
import {DiscoveryResponder, requestDiscovery} from '../../src/lib/peers/discovery/discovery-service.js'
import type {DiscoveryTransport} from '../../src/lib/peers/discovery/discovery-transport.js'
import {buildDiscovery} from '../../src/lib/peers/discovery/ws-discovery-messages.js'
import {defaultScope} from '../../src/lib/peers/peer-group.js'
import {searchPeers} from '../../src/lib/peers/peer-client.js'
import {addTrusted, ensureIdentity} from '../../src/lib/peers/peer-identity.js'
import {PeerServer} from '../../src/lib/peers/peer-server.js'
import {addPeer, clearPeers, listPeers} from '../../src/lib/peers/peer-table.js'
import {loopbackGroup} from '../helpers/loopback-group.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** One transport per member of a loopback stand-in for the group. */
async function group(count: number): Promise<DiscoveryTransport[]> {
  return (await loopbackGroup(count)).transports
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

let dir: string
let cleanup: () => Promise<void>
before(async () => {
  ;({dir, cleanup} = await makeTempDir())
})
after(() => cleanup())

const context = (name: string, now?: () => Date) => createContext(path.join(dir, name), now ? {now} : {})

for (const count of [2, 5]) {
  test(`${count} peer servers started one after another all find each other: later Hellos reach the earlier ones, start-up Probes find them; Bye changes nothing`, async () => {
    const transports = await group(count)
    const contexts = transports.map((_, index) => context(`agents-${count}-${index}`))
    const agents = []
    try {
      for (const [index, transport] of transports.entries()) {
        const agent = await startDiscoveryAgent(contexts[index]!, {httpsHost: '127.0.0.1', httpsPort: 21000 + index, transport})
        assert.ok(agent)
        agents.push(agent)
      }
      for (const [index, ctx] of contexts.entries()) {
        const others = Array.from({length: count}, (_, other) => 21000 + other).filter((port) => port !== 21000 + index)
        const table = await until(`server ${index} to know the ${count - 1} others`, async () => {
          const peers = await listPeers(ctx)
          return peers.length >= count - 1 ? peers : undefined
        })
        assert.deepEqual(table.map((peer) => peer.port).sort(), others, 'each other server once, never itself')
        assert.ok(table.every((peer) => peer.source === 'discovered' && peer.host === '127.0.0.1'))
      }
    } finally {
      for (const agent of agents.reverse()) await agent.close()
    }
    assert.equal((await listPeers(contexts[0]!)).length, count - 1, 'Bye is ignored, as Windows clients do')
  })
}

test('Hello: repeats (same MessageID) and stale AppSequence numbers are dropped; out-of-scope Hellos ignored', async () => {
  const [listener, sender] = await group(2)
  const heard: number[] = []
  const responder = new DiscoveryResponder({transport: listener!, httpsPort: 2178, addresses: ['127.0.0.1'], fqdn: 'me', onHello: (peers) => heard.push(peers[0]!.port)})
  await responder.start()
  const channel = await sender!.open('prober', () => undefined)
  try {
    const hello = (messageNumber: number, port: number, messageId?: string, scopes = [defaultScope()]) =>
      buildDiscovery({kind: 'Hello', messageId, peers: [{address: 'uuid:00000000-0000-4000-8000-000000000001', fqdn: 'other', scopes, xaddrs: ['https://127.0.0.1'], port, metadataVersion: 1}], appSequence: {instanceId: 100, messageNumber}})
    await channel.toGroup(hello(5, 30005, 'urn:uuid:00000000-0000-4000-8000-0000000000aa'))
    await channel.toGroup(hello(5, 30005, 'urn:uuid:00000000-0000-4000-8000-0000000000aa'))
    await channel.toGroup(hello(3, 30003))
    await channel.toGroup(hello(7, 30007, undefined, ['http://another-group.example']))
    await channel.toGroup(hello(8, 30008))
    await until('the last Hello', async () => (heard.includes(30008) ? true : undefined))
    assert.deepEqual(heard, [30005, 30008])
  } finally {
    channel.close()
    await responder.close()
  }
})

test('discovery requests: suppressed for 10 minutes after a Probe, forced ones go out, clearing the table resets the timer', async () => {
  let now = Date.parse('2026-11-30T10:00:00Z')
  const ctx = context('suppression', () => new Date(now))
  const [server, prober] = await group(2)
  const responder = new DiscoveryResponder({transport: server!, httpsPort: 22000, addresses: ['127.0.0.1'], fqdn: 'srv', maxAnswerDelayMs: 50})
  await responder.start()
  try {
    const first = await requestDiscovery(ctx, {transport: prober!, waitMs: 600})
    assert.deepEqual([first.suppressed, first.peers.map((peer) => peer.port)], [false, [22000]])
    now += 9 * 60_000
    assert.equal((await requestDiscovery(ctx, {transport: prober!, waitMs: 600})).suppressed, true)
    assert.equal((await requestDiscovery(ctx, {transport: prober!, waitMs: 600, force: true})).suppressed, false)
    now += 9 * 60_000
    assert.equal((await requestDiscovery(ctx, {transport: prober!, waitMs: 600})).suppressed, true, 'the forced probe restarted the timer')
    await clearPeers(ctx)
    const afterClear = await requestDiscovery(ctx, {transport: prober!, waitMs: 600})
    assert.equal(afterClear.suppressed, false)
    now += 11 * 60_000
    assert.equal((await requestDiscovery(ctx, {transport: prober!, waitMs: 600})).suppressed, false)
  } finally {
    await responder.close()
  }
})

test('discovered addresses age out after 7 days unless refreshed; added ones stay', async () => {
  let now = Date.parse('2026-11-01T00:00:00Z')
  const ctx = context('aging', () => new Date(now))
  await addPeer(ctx, {host: '127.0.0.7', source: 'discovered'})
  await addPeer(ctx, {host: '127.0.0.8', source: 'discovered'})
  await addPeer(ctx, {host: '127.0.0.9', source: 'added'})
  now += 6 * 24 * 3600_000
  await addPeer(ctx, {host: '127.0.0.8', source: 'discovered'})
  now += 2 * 24 * 3600_000
  assert.deepEqual((await listPeers(ctx)).map((peer) => peer.host), ['127.0.0.8', '127.0.0.9'])
  now += 6 * 24 * 3600_000
  assert.deepEqual((await listPeers(ctx)).map((peer) => peer.host), ['127.0.0.9'])
})

test('a search with too few peers triggers discovery and asks what answers; discovery never trusts by itself', async () => {
  const client = context('search-client')
  const trusted = context('search-trusted')
  const stranger = context('search-stranger')
  await addTrusted(trusted, (await ensureIdentity(client)).certPem)
  await addTrusted(client, (await ensureIdentity(trusted)).certPem)
  await addTrusted(stranger, (await ensureIdentity(client)).certPem)
  const [trustedUdp, strangerUdp, proberUdp] = await group(3)
  const servers = [new PeerServer(trusted, {host: '127.0.0.1', port: 0}), new PeerServer(stranger, {host: '127.0.0.1', port: 0})]
  const [trustedPort, strangerPort] = [(await servers[0]!.listen()).port, (await servers[1]!.listen()).port]
  const responders = [
    new DiscoveryResponder({transport: trustedUdp!, httpsPort: trustedPort, addresses: ['127.0.0.1'], fqdn: 'trusted', maxAnswerDelayMs: 50}),
    new DiscoveryResponder({transport: strangerUdp!, httpsPort: strangerPort, addresses: ['127.0.0.1'], fqdn: 'stranger', maxAnswerDelayMs: 50}),
  ]
  for (const responder of responders) await responder.start()
  try {
    assert.deepEqual(await listPeers(client), [])
    const answers = await searchPeers(client, {originUrl: 'https://origin.example/nothing.bin', fileSize: 10}, {discovery: {transport: proberUdp!}, discoveryWaitMs: 2000, attemptTimeoutMs: 3000})
    const byPort = Object.fromEntries(answers.map((answer) => [Number(answer.peer.split(':').pop()), answer.result]))
    assert.deepEqual(byPort, {[trustedPort]: 'NOT_FOUND', [strangerPort]: 'SERVER_CERT_UNKNOWN'})
    const table = await listPeers(client)
    assert.deepEqual(table.map((peer) => [peer.port, peer.source, Boolean(peer.authenticatedAt)]).sort(), [[trustedPort, 'discovered', true], [strangerPort, 'discovered', false]].sort())
    // Within the suppression time a second search sends no Probe: it asks the table only.
    const before = responders.map((responder) => responder.answered)
    await searchPeers(client, {originUrl: 'https://origin.example/nothing.bin', fileSize: 10}, {discovery: {transport: proberUdp!}, discoveryWaitMs: 500, attemptTimeoutMs: 3000})
    assert.deepEqual(responders.map((responder) => responder.answered), before)
  } finally {
    for (const responder of responders) await responder.close()
    for (const server of servers) await server.close()
  }
})

test('a search stops waiting for discovery as soon as a peer has the file', {timeout: 30_000}, async () => {
  const client = context('early-client')
  const holder = context('early-holder')
  await addTrusted(holder, (await ensureIdentity(client)).certPem)
  await addTrusted(client, (await ensureIdentity(holder)).certPem)
  await new CacheStore(holder).add({url: 'https://origin.example/early.bin', size: 100, fileModifiedAt: null, etag: '"e"', data: Readable.from([randomBytes(100)])})
  const server = new PeerServer(holder, {host: '127.0.0.1', port: 0})
  const {port} = await server.listen()
  try {
    await addPeer(client, {host: '127.0.0.1', port, source: 'added'})
    // Nobody answers the Probe; without the early end this search would wait ten minutes (and time out).
    const [prober] = await group(1)
    const answers = await searchPeers(client, {originUrl: 'https://origin.example/early.bin', fileSize: 100}, {discovery: {transport: prober!}, discoveryWaitMs: 600_000, attemptTimeoutMs: 3000})
    assert.deepEqual(answers.map((answer) => answer.result), ['FOUND'])
  } finally {
    await server.close()
  }
})

test('a server discovered at two addresses is searched once', async () => {
  const client = context('two-addresses')
  for (const host of ['127.0.0.21', '127.0.0.22']) await addPeer(client, {host, port: 9, source: 'discovered', fqdn: 'twice.example', endpoint: 'uuid:00000000-0000-4000-8000-000000000022'})
  await addPeer(client, {host: '127.0.0.23', port: 9, source: 'added'})
  const answers = await searchPeers(client, {originUrl: 'https://origin.example/x', fileSize: 1}, {discovery: null, attemptTimeoutMs: 2000})
  assert.equal(answers.length, 2)
  assert.equal(answers.filter((answer) => answer.peer.startsWith('127.0.0.2') && answer.peer !== '127.0.0.23:9').length, 1)
})

test('a peer server on loopback only is not advertised', async () => {
  const ctx: LibContext = {...context('loopback-only'), env: {BITS_PEER_DISCOVERY: 'on'}}
  assert.equal(await startDiscoveryAgent(ctx, {httpsHost: '127.0.0.1', httpsPort: 2178}), undefined)
})
