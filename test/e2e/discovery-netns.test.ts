// Two machines on a LAN, made of two network namespaces joined by a veth pair that this test
// creates and deletes: real multicast WS-Discovery, pairing and a peer-served job, through the CLI.
// Addresses come from 198.18.0.0/15 (RFC 2544, for test networks); nothing leaves the namespaces.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import {sha256, sha256File} from '../helpers/engine.js'
import {bitsCommand, runCli, type CliResult} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const tag = String(process.pid % 100_000)
const NS_A = `obA${tag}`
const NS_B = `obB${tag}`
const ADDRESS_A = '198.18.0.1'
const ADDRESS_B = '198.18.0.2'
const ORIGIN_PORT = 8080
// A second link carries IPv6 only (documentation prefix), so that FF02::C is tested on its own.
const ADDRESS6_A = '2001:db8::1'
const ADDRESS6_B = '2001:db8::2'

function ip(...args: string[]): {ok: boolean; error: string} {
  const result = spawnSync('ip', args, {encoding: 'utf8', timeout: 10_000})
  return {ok: result.status === 0, error: (result.error?.message ?? result.stderr ?? '').trim()}
}

/** Why namespaces cannot be made here, or undefined when they were made. */
function makeNetwork(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root'
  const created = ip('netns', 'add', NS_A)
  if (!created.ok) return `ip netns add failed: ${created.error}`
  const steps = [
    ['netns', 'add', NS_B],
    ['link', 'add', `${NS_A}v`, 'type', 'veth', 'peer', 'name', `${NS_B}v`],
    ['link', 'set', `${NS_A}v`, 'netns', NS_A],
    ['link', 'set', `${NS_B}v`, 'netns', NS_B],
    ['-n', NS_A, 'addr', 'add', `${ADDRESS_A}/24`, 'dev', `${NS_A}v`],
    ['-n', NS_B, 'addr', 'add', `${ADDRESS_B}/24`, 'dev', `${NS_B}v`],
    ['-n', NS_A, 'link', 'set', 'lo', 'up'],
    ['-n', NS_B, 'link', 'set', 'lo', 'up'],
    ['-n', NS_A, 'link', 'set', `${NS_A}v`, 'up'],
    ['-n', NS_B, 'link', 'set', `${NS_B}v`, 'up'],
    ['link', 'add', `${NS_A}w`, 'type', 'veth', 'peer', 'name', `${NS_B}w`],
    ['link', 'set', `${NS_A}w`, 'netns', NS_A],
    ['link', 'set', `${NS_B}w`, 'netns', NS_B],
    ['-n', NS_A, 'addr', 'add', `${ADDRESS6_A}/64`, 'dev', `${NS_A}w`, 'nodad'],
    ['-n', NS_B, 'addr', 'add', `${ADDRESS6_B}/64`, 'dev', `${NS_B}w`, 'nodad'],
    ['-n', NS_A, 'link', 'set', `${NS_A}w`, 'up'],
    ['-n', NS_B, 'link', 'set', `${NS_B}w`, 'up'],
  ]
  for (const step of steps) {
    const result = ip(...step)
    if (!result.ok) throw new Error(`ip ${step.join(' ')}: ${result.error}`)
  }
  return undefined
}

let dir: string
let cleanup: () => Promise<void>
let unavailable: string | undefined
const children: ChildProcess[] = []
const env = {BITS_PEER_DISCOVERY: 'on', BITS_NO_DAEMON: '1'}

before(async () => {
  ;({dir, cleanup} = await makeTempDir())
  unavailable = makeNetwork()
})

after(async () => {
  for (const child of children) child.kill('SIGKILL')
  ip('netns', 'del', NS_A)
  ip('netns', 'del', NS_B)
  await cleanup()
})

function start(netns: string, argv: [string, string[]], name: string): {child: ChildProcess; output: () => string} {
  const child = spawn(argv[0], argv[1], {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  child.on('exit', (code, signal) => (output += `\n[${name} in ${netns} exited: ${code ?? signal}]`))
  return {child, output: () => output}
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, log: () => string): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}\n${log()}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

function ok(result: CliResult, what: string): CliResult {
  assert.equal(result.code, 0, `${what} failed: ${result.stderr}${result.stdout}`)
  return result
}

/** The origin: serves one file and reports, per client address, the body bytes it sent. */
const ORIGIN = `
const http = require('node:http'), fs = require('node:fs')
const [file, host, port] = process.argv.slice(1)
const body = fs.readFileSync(file), sent = {}
http.createServer((req, res) => {
  if (req.url === '/sent') return res.end(JSON.stringify(sent))
  const who = req.socket.remoteAddress
  const headers = {'Content-Length': body.length, 'Last-Modified': 'Tue, 03 Mar 2026 10:00:00 GMT', ETag: '"shared-1"', 'Accept-Ranges': 'bytes'}
  const range = /bytes=(\\d+)-(\\d*)/.exec(req.headers.range || '')
  let chunk = body
  if (range) {
    const start = Number(range[1]), end = range[2] ? Number(range[2]) : body.length - 1
    chunk = body.subarray(start, end + 1)
    res.writeHead(206, {...headers, 'Content-Length': chunk.length, 'Content-Range': 'bytes ' + start + '-' + end + '/' + body.length})
  } else res.writeHead(200, headers)
  if (req.method === 'HEAD') return res.end()
  sent[who] = (sent[who] || 0) + chunk.length
  res.end(chunk)
}).listen(Number(port), host, () => console.log('listening'))
`

test('two bits serve --peers in two namespaces discover each other, pair, and B\'s job is served from A', {timeout: 110_000}, async (t) => {
  if (unavailable) return t.skip(`network namespaces cannot be created here: ${unavailable}`)
  const stateA = path.join(dir, 'a')
  const stateB = path.join(dir, 'b')
  const body = randomBytes(3 * 1024 * 1024)
  const source = path.join(dir, 'shared.bin')
  await writeFile(source, body)
  const secret = path.join(dir, 'group.secret')
  await writeFile(secret, 'a group secret both machines were given\n', {mode: 0o600})
  for (const stateDir of [stateA, stateB]) ok(await runCli(['peers', 'group', '--secret-file', secret], {stateDir}), 'peers group')

  const origin = start(NS_A, ['ip', ['netns', 'exec', NS_A, process.execPath, '-e', ORIGIN, source, ADDRESS_A, String(ORIGIN_PORT)]], 'origin')
  await until('the origin', async () => (origin.output().includes('listening') ? true : undefined), 10_000, origin.output)
  const url = `http://${ADDRESS_A}:${ORIGIN_PORT}/shared.bin`

  // Defaults only: the peer server listens on every interface (::) and advertises itself.
  const serve = (netns: string, stateDir: string) => start(netns, bitsCommand(['serve', '--state-dir', stateDir, '--peers', '--jsonl', '--log-level', 'info'], netns), 'bits serve')
  const serveA = serve(NS_A, stateA)
  await until('A to advertise itself', async () => (serveA.output().includes('advertising') ? true : undefined), 15_000, serveA.output)
  const startedB = Date.now()
  const serveB = serve(NS_B, stateB)
  t.after(() => {
    for (const {child} of [serveA, serveB]) child.kill('SIGINT')
  })
  const log = () => `--- A:\n${serveA.output()}\n--- B:\n${serveB.output()}`
  const peersOf = async (stateDir: string) => ok(await runCli(['peers', 'list', '--json'], {stateDir}), 'peers list').json.result.peers as {host: string; source: string}[]
  const aSeenByB = await until('B to discover A', async () => (await peersOf(stateB)).find((peer) => peer.host === ADDRESS_A), 15_000, log)
  const bSeenByA = await until('A to hear B\'s Hello', async () => (await peersOf(stateA)).find((peer) => peer.host === ADDRESS_B), 15_000, log)
  t.diagnostic(`discovered each other ${Date.now() - startedB} ms after B started`)
  assert.equal(aSeenByB.source, 'discovered')
  assert.equal(bSeenByA.source, 'discovered')
  // serve --jsonl reports each discovery as a peer event.
  const peerEvents = (output: string) => output.split('\n').filter((line) => line.startsWith('{"type":"peer"')).map((line) => JSON.parse(line) as {peer: {host: string; source: string}})
  assert.ok(peerEvents(serveB.output()).some((event) => event.peer.host === ADDRESS_A && event.peer.source === 'discovered'), serveB.output())
  assert.ok(peerEvents(serveA.output()).some((event) => event.peer.host === ADDRESS_B), serveA.output())

  // A downloads the file from the origin and keeps it in its cache for peers.
  const job = async (netns: string, stateDir: string, name: string, flags: string, local: string) => {
    ok(await runCli(['create', '--download', name], {stateDir}), 'create')
    ok(await runCli(['addfile', name, url, local], {stateDir}), 'addfile')
    ok(await runCli(['set', name, '--peer-caching', flags, '--min-retry-delay', '1'], {stateDir}), 'set')
    ok(await runCli(['resume', name, '--wait', '--json'], {stateDir, netns, timeoutMs: 60_000}), 'resume --wait')
    ok(await runCli(['complete', name], {stateDir}), 'complete')
  }
  await job(NS_A, stateA, 'warm', 'server', path.join(dir, 'a.bin'))
  assert.equal(await sha256File(path.join(dir, 'a.bin')), sha256(body))

  // Discovery alone trusts nothing: B pairs with the peers it discovered (A), over A's HTTPS port.
  // A is reachable at two addresses (IPv4 on one link, IPv6 on the other): both are A.
  const addressesOfA = [`${ADDRESS_A}:2178`, `[${ADDRESS6_A}]:2178`]
  const paired = ok(await runCli(['peers', 'pair', '--json'], {stateDir: stateB, netns: NS_B, env}), 'peers pair').json.result.results as {peer: string; result: string}[]
  assert.equal(paired.length, 1, `A is paired once, whatever its addresses: ${JSON.stringify(paired)}`)
  assert.ok(addressesOfA.includes(paired[0]!.peer) && paired[0]!.result === 'paired', JSON.stringify(paired))
  const listedA = (await peersOf(stateB)).filter((peer) => peer.host === ADDRESS_A || peer.host === ADDRESS6_A)
  assert.ok(listedA.length >= 1 && listedA.every((peer) => peer.source === 'paired'), JSON.stringify(listedA))

  await job(NS_B, stateB, 'via-peer', 'client', path.join(dir, 'b.bin'))
  assert.equal(await sha256File(path.join(dir, 'b.bin')), sha256(body))
  const info = ok(await runCli(['info', 'via-peer', '--verbose', '--json'], {stateDir: stateB}), 'info').json.result
  const fromPeers = info.files[0].bytesFromPeers as Record<string, number>
  assert.equal(Object.keys(fromPeers).length, 1, 'A was asked once, at one of its addresses')
  assert.ok(addressesOfA.includes(Object.keys(fromPeers)[0]!), JSON.stringify(fromPeers))
  assert.equal(Object.values(fromPeers)[0], body.length, 'every byte came from A')
  const sent = await fetchInNamespace(NS_A, `http://${ADDRESS_A}:${ORIGIN_PORT}/sent`)
  assert.equal(sent[ADDRESS_B] ?? 0, 0, 'the origin sent B no body bytes')
  assert.equal(sent[ADDRESS_A], body.length)
})

test('IPv6 alone: a peer server on a link without IPv4 is found through FF02::C', {timeout: 60_000}, async (t) => {
  if (unavailable) return t.skip(`network namespaces cannot be created here: ${unavailable}`)
  const stateA = path.join(dir, 'a6')
  const stateB = path.join(dir, 'b6')
  const server = start(NS_A, bitsCommand(['peers', 'serve', '--state-dir', stateA, '--host', ADDRESS6_A, '--port', '2179', '--log-level', 'info'], NS_A), 'bits peers serve')
  t.after(() => server.child.kill('SIGINT'))
  await until('A to advertise itself', async () => (server.output().includes('advertising') ? true : undefined), 15_000, server.output)
  const found = ok(await runCli(['peers', 'discover', '--interface', ADDRESS6_B, '--wait', '2', '--json'], {stateDir: stateB, netns: NS_B, env}), 'peers discover').json.result.peers as {host: string; port: number; source: string}[]
  assert.deepEqual(found.map((peer) => [peer.host, peer.port, peer.source]), [[ADDRESS6_A, 2179, 'discovered']], server.output())
})

/** GET from inside a namespace (the test process itself stays in the root namespace). */
async function fetchInNamespace(netns: string, url: string): Promise<Record<string, number>> {
  const result = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t))`], {encoding: 'utf8', timeout: 10_000})
  return JSON.parse(result.stdout) as Record<string, number>
}
