import {test} from 'node:test'
import assert from 'node:assert/strict'
import {buildDiscovery, MalformedDiscovery, MAX_DATAGRAM, NS, parseDiscovery, scopeMatches} from '../../src/lib/peers/discovery/ws-discovery-messages.js'

/** The Hello skeleton of the reference (§1.5, condensed from [MS-BPDP] §4.1/4.2), as a Windows peer sends it. */
const WINDOWS_HELLO = `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"
  xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery"
  xmlns:msbits="http://schemas.microsoft.com/windows/2005/05/BITS/cache">
 <soap:Header>
  <wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>
  <wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</wsa:Action>
  <wsa:MessageID>urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</wsa:MessageID>
  <wsd:AppSequence InstanceId="1169067015" MessageNumber="2"/>
 </soap:Header>
 <soap:Body>
  <wsd:Hello>
   <wsa:EndpointReference>
    <wsa:Address>uuid:A99558EB-1111-2222-3333-444455556666</wsa:Address>
    <msbits:Fqdn>peer1.mydomain.com</msbits:Fqdn>
    <msbits:version>1</msbits:version>
   </wsa:EndpointReference>
   <wsd:Types>msbits:PeerServer</wsd:Types>
   <wsd:Scopes>http://mydomain.com</wsd:Scopes>
   <wsd:XAddrs>https://[2001:db8::1] https://198.51.100.20</wsd:XAddrs>
   <wsd:MetadataVersion>1</wsd:MetadataVersion>
  </wsd:Hello>
 </soap:Body>
</soap:Envelope>`

test('parseDiscovery() - reads the reference Hello, prefixes resolved by namespace', () => {
  const hello = parseDiscovery(Buffer.from(WINDOWS_HELLO))
  assert.equal(hello.kind, 'Hello')
  assert.equal(hello.messageId, 'urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0')
  assert.deepEqual(hello.appSequence, {instanceId: 1169067015, messageNumber: 2})
  assert.deepEqual(hello.peers[0], {address: 'uuid:A99558EB-1111-2222-3333-444455556666', fqdn: 'peer1.mydomain.com', scopes: ['http://mydomain.com'], xaddrs: ['https://[2001:db8::1]', 'https://198.51.100.20'], metadataVersion: 1})
  const renamed = WINDOWS_HELLO.replaceAll('soap:', 's12:').replaceAll('xmlns:soap', 'xmlns:s12').replaceAll('msbits:', 'b:').replaceAll('xmlns:msbits', 'xmlns:b')
  assert.equal(parseDiscovery(Buffer.from(renamed)).peers[0]!.fqdn, 'peer1.mydomain.com')
  const wrongType = WINDOWS_HELLO.replace('<wsd:Types>msbits:PeerServer', '<wsd:Types>wsd:PeerServer')
  assert.throws(() => parseDiscovery(Buffer.from(wrongType)), MalformedDiscovery, 'a PeerServer in another namespace is not ours')
})

test('buildDiscovery() - Hello, Probe, ProbeMatches and Bye round-trip; ProbeMatches relate to the Probe', () => {
  const peer = {address: 'uuid:11111111-2222-3333-4444-555555555555', fqdn: 'bits-a', scopes: ['http://openbits.local'], xaddrs: ['https://127.0.0.1'], port: 21780, metadataVersion: 1}
  const hello = parseDiscovery(buildDiscovery({kind: 'Hello', peers: [peer], appSequence: {instanceId: 7, messageNumber: 1}}))
  assert.deepEqual(hello.peers[0], peer)
  const probe = buildDiscovery({kind: 'Probe', peers: [], probe: {types: ['msbits:PeerServer'], scopes: ['http://openbits.local']}})
  const parsedProbe = parseDiscovery(probe)
  assert.deepEqual(parsedProbe.probe, {types: [`{${NS.msbits}}PeerServer`], scopes: ['http://openbits.local']})
  assert.match(probe.toString(), /MatchBy="http:\/\/schemas\.xmlsoap\.org\/ws\/2005\/04\/discovery\/rfc2396"/)
  const matches = parseDiscovery(buildDiscovery({kind: 'ProbeMatches', relatesTo: parsedProbe.messageId, peers: [peer, {...peer, address: 'uuid:b', port: undefined}], appSequence: {instanceId: 7, messageNumber: 2}}))
  assert.equal(matches.relatesTo, parsedProbe.messageId)
  assert.equal(matches.peers.length, 2)
  assert.equal(matches.peers[1]!.port, undefined, 'port 2178 is implied, not written')
  assert.match(buildDiscovery({kind: 'ProbeMatches', peers: [peer]}).toString(), /role\/anonymous/)
  assert.equal(parseDiscovery(buildDiscovery({kind: 'Bye', peers: [peer]})).peers[0]!.address, peer.address)
})

test('parseDiscovery() - malformed and oversized datagrams are refused', () => {
  for (const bad of ['', 'not xml', '<a/>', WINDOWS_HELLO.replace('/Hello</wsa:Action>', '/Resolve</wsa:Action>'), WINDOWS_HELLO.replace(/<wsa:MessageID>.*<\/wsa:MessageID>/, '')]) {
    assert.throws(() => parseDiscovery(Buffer.from(bad)), MalformedDiscovery)
  }
  assert.throws(() => parseDiscovery(Buffer.alloc(MAX_DATAGRAM + 1, 0x20)), MalformedDiscovery)
})

test('scopeMatches() - RFC 2396: scheme and authority equal, path a segment prefix', () => {
  assert.equal(scopeMatches('http://mydomain.com', 'http://MyDomain.com'), true)
  assert.equal(scopeMatches('http://mydomain.com/a', 'http://mydomain.com/a/b'), true)
  assert.equal(scopeMatches('http://mydomain.com/a/b', 'http://mydomain.com/a'), false)
  assert.equal(scopeMatches('https://mydomain.com', 'http://mydomain.com'), false)
})
