import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {createSocket} from 'node:dgram'
import path from 'node:path'
import {createContext} from '../../src/lib/context.js'
import {DiscoveryResponder, discoverPeers, probePeers} from '../../src/lib/peers/discovery/discovery-service.js'
import {buildDiscovery} from '../../src/lib/peers/discovery/ws-discovery-messages.js'
import {listPeers} from '../../src/lib/peers/peer-table.js'
import {loopbackGroup} from '../helpers/loopback-group.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
before(async () => {
  ;({dir, cleanup} = await makeTempDir())
})
after(() => cleanup())

/** N responders and one prober, each on its own loopback port; the "group" is all of them. */
async function setUp(count: number) {
  const {transports, ports} = await loopbackGroup(count + 1)
  const responders = transports.slice(0, count).map((transport, index) => new DiscoveryResponder({transport, httpsPort: 21000 + index, addresses: [`127.0.0.${10 + index}`], fqdn: `peer${index}`, maxAnswerDelayMs: 100}))
  for (const responder of responders) await responder.start()
  return {responders, prober: transports[count]!, responderPort: ports[0]!}
}

for (const count of [2, 5]) {
  test(`Probe finds all ${count} peer servers once each; discoverPeers() adds them as discovered`, async () => {
    const {responders, prober} = await setUp(count)
    try {
      const found = await probePeers({transport: prober, waitMs: 800})
      assert.deepEqual(found.map((peer) => `${peer.host}:${peer.port}`).sort(), Array.from({length: count}, (_, i) => `127.0.0.${10 + i}:${21000 + i}`).sort())
      const ctx = createContext(path.join(dir, `state-${count}`))
      const added = await discoverPeers(ctx, {transport: prober, waitMs: 800})
      assert.equal(added.length, count)
      assert.ok((await listPeers(ctx)).every((peer) => peer.source === 'discovered'))
      assert.ok(responders.every((responder) => responder.answered >= 1))
    } finally {
      for (const responder of responders) await responder.close()
    }
  })
}

test('a Probe for another scope or type gets no answer; a malformed flood is dropped and the responder still answers', async () => {
  const {responders, prober, responderPort} = await setUp(1)
  const [responder] = responders
  try {
    assert.deepEqual(await probePeers({transport: prober, scopes: ['http://elsewhere.example'], waitMs: 400}), [])
    const flood = createSocket('udp4')
    await new Promise<void>((resolve) => flood.bind(0, '127.0.0.1', () => resolve()))
    for (let i = 0; i < 200; i++) flood.send(i % 2 ? Buffer.from('<not xml') : Buffer.alloc(40_000, 0x41), responderPort, '127.0.0.1')
    flood.send(buildDiscovery({kind: 'Hello', peers: [{address: 'uuid:x', fqdn: 'x', scopes: [], xaddrs: [], metadataVersion: 1}]}), responderPort, '127.0.0.1')
    await new Promise((resolve) => setTimeout(resolve, 300))
    flood.close()
    assert.ok(responder!.dropped > 0, 'malformed datagrams that reached the responder were counted (the kernel drops the rest of a flood)')
    const found = await probePeers({transport: prober, waitMs: 600})
    assert.equal(found.length, 1, 'still answering after the flood')
  } finally {
    await responder!.close()
  }
})
