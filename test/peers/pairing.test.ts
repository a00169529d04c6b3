import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {createServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {connect} from 'node:tls'
import {createContext, type LibContext} from '../../src/lib/context.js'
import {BitsError} from '../../src/lib/errors.js'
import {searchPeers} from '../../src/lib/peers/peer-client.js'
import {defaultScope, readGroup, setGroup} from '../../src/lib/peers/peer-group.js'
import {ensureIdentity, listTrusted, MAX_TRUSTED, type PeerIdentity, type TrustedPeer} from '../../src/lib/peers/peer-identity.js'
import {pairWithPeer, pairWithPeers, PAIR_PATH} from '../../src/lib/peers/peer-pairing.js'
import {PeerServer} from '../../src/lib/peers/peer-server.js'
import {addPeer, listPeers} from '../../src/lib/peers/peer-table.js'
import {TestCa} from '../helpers/certificates.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
const servers: PeerServer[] = []
let counter = 0

/** A fresh state directory with its identity, and the group secret `secret` when given. */
async function machine(secret?: string): Promise<LibContext & {identity: PeerIdentity}> {
  const name = `m${++counter}`
  const ctx = createContext(path.join(dir, name))
  const identity = await ensureIdentity(ctx, {name})
  if (secret !== undefined) {
    const file = path.join(dir, `${name}.secret`)
    await writeFile(file, `${secret}\n`)
    await setGroup(ctx, {secretFile: file})
  }
  return {...ctx, identity}
}

/** A real peer server of `ctx` on 127.0.0.1, its own instance (so its own failure counter). */
async function serve(ctx: LibContext): Promise<number> {
  const server = new PeerServer(ctx, {port: 0})
  servers.push(server)
  return (await server.listen()).port
}

/** One raw pairing request with a chosen body, from `identity`. */
function rawPair(port: number, identity: PeerIdentity, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: '127.0.0.1', port, cert: identity.certPem, key: identity.keyPem, rejectUnauthorized: false}, () =>
      socket.write(`POST ${PAIR_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`),
    )
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => resolve(Number(text.split(' ')[1])))
  })
}

async function rejectsWith(promise: Promise<unknown>, code: string, hint?: RegExp): Promise<BitsError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (error: unknown) => error,
  )
  assert.ok(err instanceof BitsError, String(err))
  assert.equal(err.code, code, err.message)
  if (hint) assert.match(err.hint ?? '', hint)
  return err
}

const SECRET = 'correct horse battery staple 2026'

before(async () => {
  ;({dir, cleanup} = await makeTempDir())
})
after(async () => {
  for (const server of servers) await server.close()
  await cleanup()
})

test('pairWithPeer() - two machines with the same secret trust each other, and a search then passes mutual TLS', async () => {
  const client = await machine(SECRET)
  const peer = await machine(SECRET)
  const port = await serve(peer)
  const paired = await pairWithPeer(client, {host: '127.0.0.1', port})
  assert.deepEqual(paired, {peer: `127.0.0.1:${port}`, fingerprint: peer.identity.fingerprint, subject: peer.identity.subject.replace(/\n/g, ', '), alreadyTrusted: false})
  const clientTrusts = await listTrusted(client)
  const peerTrusts = await listTrusted(peer)
  assert.deepEqual(clientTrusts.map((entry) => [entry.fingerprint, entry.source]), [[peer.identity.fingerprint, 'paired']])
  assert.deepEqual(peerTrusts.map((entry) => [entry.fingerprint, entry.source]), [[client.identity.fingerprint, 'paired']])
  assert.ok(clientTrusts[0]!.certPem?.includes('BEGIN CERTIFICATE'), 'the certificate itself is kept')
  assert.deepEqual((await listPeers(client)).map((entry) => [entry.host, entry.port, entry.source]), [['127.0.0.1', port, 'paired']])
  const [answer] = await searchPeers(client, {originUrl: 'https://origin.example/none.bin'}, {attemptTimeoutMs: 5000, searchTimeoutMs: 5000})
  assert.equal(answer!.result, 'NOT_FOUND', `ContentNotFound, not CertificateNotFound: ${answer!.detail ?? ''}`)
  const again = await pairWithPeers(client, [`127.0.0.1:${port}`])
  assert.equal(again[0]!.result, 'already-trusted')
  assert.equal((await listTrusted(peer)).length, 1, 'pairing again changes nothing')
})

test('pairWithPeer() - different secrets: 403, PEER_UNTRUSTED, and nobody trusts anybody', async () => {
  const client = await machine(SECRET)
  const peer = await machine('a different secret of some length')
  const port = await serve(peer)
  await rejectsWith(pairWithPeer(client, {host: '127.0.0.1', port}), 'PEER_UNTRUSTED', /secrets differ: run bits peers group --secret-file on both machines/)
  assert.deepEqual(await listTrusted(client), [])
  assert.deepEqual(await listTrusted(peer), [])
  assert.deepEqual(await listPeers(client), [])
})

test('pairWithPeer() - a peer without a group secret has pairing off (404); a client without one is told how to set it', async () => {
  const client = await machine(SECRET)
  const port = await serve(await machine())
  await rejectsWith(pairWithPeer(client, {host: '127.0.0.1', port}), 'PEER_UNTRUSTED', /no group secret/)
  await rejectsWith(pairWithPeer(await machine(), {host: '127.0.0.1', port}), 'USAGE_INVALID_ARG', /bits peers group --generate-secret/)
  await rejectsWith(pairWithPeer(client, {host: '127.0.0.1', port: 1}), 'PEER_UNREACHABLE')
})

test('pairing - after 5 wrong proofs in a minute the server answers 429 with Retry-After, even to the right secret', async () => {
  const peer = await machine(SECRET)
  const port = await serve(peer)
  const guesser = await machine('not the secret, just a guess')
  for (let attempt = 1; attempt <= 5; attempt++) await rejectsWith(pairWithPeer(guesser, {host: '127.0.0.1', port}), 'PEER_UNTRUSTED')
  const limited = await rejectsWith(pairWithPeer(guesser, {host: '127.0.0.1', port}), 'PEER_UNREACHABLE')
  assert.equal(limited.retryable, true)
  const retryAfter = limited.details?.['retryAfterSeconds'] as number
  assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter))
  await rejectsWith(pairWithPeer(await machine(SECRET), {host: '127.0.0.1', port}), 'PEER_UNREACHABLE')
  assert.deepEqual(await listTrusted(peer), [])
})

test('pairing - malformed requests get 400 without counting as guesses', async () => {
  const peer = await machine(SECRET)
  const port = await serve(peer)
  const client = await machine(SECRET)
  assert.equal(await rawPair(port, client.identity, 'not json'), 400)
  assert.equal(await rawPair(port, client.identity, JSON.stringify({version: 2, proof: 'AAAA'})), 400)
  assert.equal(await rawPair(port, client.identity, JSON.stringify({version: 1, proof: 'x'.repeat(5000)})), 400)
  for (let attempt = 0; attempt < 6; attempt++) assert.equal(await rawPair(port, client.identity, '{}'), 400)
  await pairWithPeer(client, {host: '127.0.0.1', port})
})

test('pairWithPeer() - a server whose proof is wrong is not trusted, and the proof it saw is worthless elsewhere', async () => {
  const ca = await TestCa.create('fake peer CA')
  const issued = await ca.issue()
  let captured = ''
  const fake = createServer({cert: issued.cert, key: issued.key, requestCert: true, rejectUnauthorized: false}, (req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      captured = body
      const answer = JSON.stringify({version: 1, proof: randomBytes(32).toString('base64'), fingerprint: 'AA'})
      res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': String(answer.length)}).end(answer)
    })
  })
  fake.listen(0, '127.0.0.1')
  await once(fake, 'listening')
  try {
    const client = await machine(SECRET)
    const fakePort = (fake.address() as AddressInfo).port
    await rejectsWith(pairWithPeer(client, {host: '127.0.0.1', port: fakePort}), 'PEER_UNTRUSTED', /^the peer does not share this group secret$/)
    assert.deepEqual(await listTrusted(client), [])
    assert.deepEqual(await listPeers(client), [])
    assert.match(captured, /^\{"version":1,"proof":"[A-Za-z0-9+/]{43}="\}$/)
    // The same client, the same secret, a real peer: the captured proof names the fake's certificate.
    const peer = await machine(SECRET)
    assert.equal(await rawPair(await serve(peer), client.identity, captured), 403)
    assert.deepEqual(await listTrusted(peer), [])
  } finally {
    fake.close()
  }
})

function fullTable(ageMs: number): TrustedPeer[] {
  const at = new Date(Date.now() - ageMs)
  return Array.from({length: MAX_TRUSTED}, (_, index) => ({
    fingerprint: randomBytes(32).toString('hex').toUpperCase().match(/.{2}/g)!.join(':'),
    subject: `CN=filler${index}`,
    addedAt: new Date(at.getTime() + index).toISOString(),
    source: 'paired' as const,
    certPem: null,
  }))
}

test('pairing - a trust table full of entries under a minute old refuses (503, PEER_TRUST_FULL); older ones are dropped', async () => {
  const client = await machine(SECRET)
  const peer = await machine(SECRET)
  const port = await serve(peer)
  const trustFile = path.join(peer.stateDir, 'peers', 'trusted.json')
  const fresh = fullTable(0)
  await writeFile(trustFile, JSON.stringify(fresh))
  const refused = await rejectsWith(pairWithPeer(client, {host: '127.0.0.1', port}), 'PEER_TRUST_FULL', /Try again in a minute/)
  assert.equal(refused.retryable, true)
  assert.deepEqual(await listTrusted(client), [])
  assert.deepEqual(await listTrusted(peer), fresh, 'the table is untouched')
  const old = fullTable(120_000)
  await writeFile(trustFile, JSON.stringify(old))
  await pairWithPeer(client, {host: '127.0.0.1', port})
  const now = await listTrusted(peer)
  assert.equal(now.length, MAX_TRUSTED)
  assert.equal(now.at(-1)!.fingerprint, client.identity.fingerprint)
  assert.ok(!now.some((entry) => entry.fingerprint === old[0]!.fingerprint), 'the oldest went')
})

test('pairing - a client whose own trust table is full of fresh entries stops before the proof: the peer trusts nothing', async () => {
  const client = await machine(SECRET)
  const peer = await machine(SECRET)
  const port = await serve(peer)
  const fresh = fullTable(0)
  await writeFile(path.join(client.stateDir, 'peers', 'trusted.json'), JSON.stringify(fresh))
  await rejectsWith(pairWithPeer(client, {host: '127.0.0.1', port}), 'PEER_TRUST_FULL')
  assert.deepEqual(await listTrusted(peer), [], 'the peer was never sent a proof')
  assert.deepEqual(await listTrusted(client), fresh)
})

test('pairWithPeers() - a server discovered at two addresses is paired once, through the address that answers', async () => {
  const client = await machine(SECRET)
  const good = await serve(await machine(SECRET))
  const endpoint = 'uuid:00000000-0000-4000-8000-0000000000ab'
  await addPeer(client, {host: '127.0.0.1', port: 9, source: 'discovered', endpoint})
  await addPeer(client, {host: '127.0.0.1', port: good, source: 'discovered', endpoint})
  const outcomes = await pairWithPeers(client)
  assert.deepEqual(outcomes.map((outcome) => [outcome.peer, outcome.result]), [[`127.0.0.1:${good}`, 'paired']])
  assert.deepEqual((await listPeers(client)).map((entry) => [entry.port, entry.source]), [[9, 'paired'], [good, 'paired']])
})

test('pairWithPeers() - without addresses pairs with every peer of the table not paired yet, and reports each', async () => {
  const client = await machine(SECRET)
  const good = await serve(await machine(SECRET))
  const wrong = await serve(await machine('another group entirely, long enough'))
  await addPeer(client, {host: '127.0.0.1', port: good, source: 'discovered'})
  await addPeer(client, {host: '127.0.0.1', port: wrong, source: 'discovered'})
  await addPeer(client, {host: '127.0.0.1', port: 1, source: 'paired'})
  const outcomes = await pairWithPeers(client)
  assert.deepEqual(outcomes.map((outcome) => [outcome.peer, outcome.result, outcome.error?.code]), [
    [`127.0.0.1:${good}`, 'paired', undefined],
    [`127.0.0.1:${wrong}`, 'failed', 'PEER_UNTRUSTED'],
  ])
  assert.equal((await listPeers(client)).find((entry) => entry.port === good)!.source, 'paired', 'a discovered peer becomes paired')
  await rejectsWith(pairWithPeers(client, ['not a host!']), 'USAGE_INVALID_ARG')
})

test('group - group.json is 0600, secrets are trimmed and checked, a corrupt file is STATE_CORRUPT', async () => {
  const ctx = createContext(path.join(dir, 'group'))
  assert.deepEqual(await readGroup(ctx), {scope: defaultScope(), scopeSet: false, secret: null})
  assert.deepEqual(await setGroup(ctx), {scope: defaultScope(), secretSet: false})
  const generated = await setGroup(ctx, {generateSecret: true, scope: 'urn:example:branch7'})
  assert.match(generated.generatedSecret!, /^[A-Za-z0-9_-]{43}$/)
  assert.deepEqual(await setGroup(ctx), {scope: 'urn:example:branch7', secretSet: true}, 'the secret is never shown again')
  const file = path.join(dir, 'group', 'peers', 'group.json')
  if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600)
  assert.ok(!(await readFile(file, 'utf8')).includes(generated.generatedSecret!), 'stored as base64 of the bytes')
  // The generated text, in a file with a newline, is the same secret on another machine.
  const copy = path.join(dir, 'copied.secret')
  await writeFile(copy, `${generated.generatedSecret!}\r\n`)
  const other = createContext(path.join(dir, 'group-other'))
  await setGroup(other, {secretFile: copy})
  assert.deepEqual((await readGroup(other)).secret, (await readGroup(ctx)).secret)
  assert.equal(JSON.parse(await readFile(path.join(other.stateDir, 'peers', 'group.json'), 'utf8')).scope, null, 'setting a secret does not freeze the default scope')
  assert.deepEqual([(await readGroup(other)).scope, (await readGroup(other)).scopeSet], [defaultScope(), false])
  await writeFile(copy, 'too short\n')
  await rejectsWith(setGroup(ctx, {secretFile: copy}), 'USAGE_INVALID_ARG', /generate-secret/)
  await rejectsWith(setGroup(ctx, {secretFile: path.join(dir, 'missing')}), 'FILE_NOT_FOUND')
  await rejectsWith(setGroup(ctx, {scope: 'openbits.local'}), 'USAGE_INVALID_ARG')
  await rejectsWith(setGroup(ctx, {generateSecret: true, clearSecret: true}), 'USAGE_INVALID_ARG')
  assert.deepEqual(await setGroup(ctx, {clearSecret: true}), {scope: 'urn:example:branch7', secretSet: false})
  await writeFile(file, '{"scope": ')
  const corrupt = await rejectsWith(readGroup(ctx), 'STATE_CORRUPT')
  assert.ok(corrupt.message.includes(file), corrupt.message)
  assert.ok(corrupt.hint)
})

test('bits peers group --generate-secret and bits peers pair print JSON and exit by outcome', async () => {
  const stateDir = path.join(dir, 'cli')
  const generated = await runCli(['peers', 'group', '--generate-secret', '--json'], {stateDir})
  assert.equal(generated.code, 0, generated.stderr)
  assert.equal(generated.json.result.secretSet, true)
  assert.equal(generated.json.result.scope, defaultScope())
  const secret = generated.json.result.generatedSecret as string
  const shown = await runCli(['peers', 'group', '--json'], {stateDir})
  assert.deepEqual(shown.json.result, {scope: defaultScope(), secretSet: true})
  const human = await runCli(['peers', 'group'], {stateDir})
  assert.ok(!human.stdout.includes(secret))
  const peer = createContext(path.join(dir, 'cli-peer'))
  await mkdir(peer.stateDir, {recursive: true})
  await writeFile(path.join(dir, 'cli.secret'), `${secret}\n`)
  await setGroup(peer, {secretFile: path.join(dir, 'cli.secret')})
  const port = await serve(peer)
  const paired = await runCli(['peers', 'pair', `127.0.0.1:${port}`, '--json'], {stateDir})
  assert.equal(paired.code, 0, paired.stderr)
  assert.equal(paired.json.result.results[0].result, 'paired')
  assert.equal(paired.json.result.results[0].fingerprint, (await ensureIdentity(peer)).fingerprint)
  const failed = await runCli(['peers', 'pair', '127.0.0.1:1', '--json'], {stateDir})
  assert.equal(failed.code, 9)
  assert.equal(failed.json.error.code, 'PEER_UNREACHABLE')
  const mixed = await runCli(['peers', 'pair', `127.0.0.1:${port}`, '127.0.0.1:1'], {stateDir})
  assert.equal(mixed.code, 0, mixed.stderr)
  assert.match(mixed.stdout, /already-trusted/)
  assert.match(mixed.stderr, /Warning: Pairing failed with 1 of 2 peers/)
})
