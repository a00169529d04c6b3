import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {createServer, request as httpRequest, type IncomingMessage, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import {parseChallenges} from '../../src/lib/transfer/http-auth.js'
import {isBypassed, matchesNoProxy, parsePacAnswer, preconfiguredRoute} from '../../src/lib/transfer/proxy-selection.js'
import {proxyEnvironment, SETTING_DEFAULTS} from '../../src/lib/settings.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {startProxy} from '../helpers/forward-proxy.js'
import {runJobToEnd, sha256, sha256File} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** A server that wants Basic or Digest (MD5 or SHA-256, qop=auth) credentials for alice/secret. */
async function startAuthServer(scheme: 'Basic' | 'Digest', algorithm = 'MD5', redirectTo?: string) {
  const body = randomBytes(20_000)
  const seen: (string | undefined)[] = []
  const nonce = randomBytes(8).toString('hex')
  const hashName = algorithm === 'SHA-256' ? 'sha256' : 'md5'
  const hash = (text: string) => createHash(hashName).update(text).digest('hex')
  const valid = (req: IncomingMessage) => {
    const header = req.headers.authorization
    if (scheme === 'Basic') return header === `Basic ${Buffer.from('alice:secret').toString('base64')}`
    const [challenge] = parseChallenges(header ?? '')
    if (!challenge || challenge.scheme !== 'digest') return false
    const p = challenge.params
    const ha1 = hash(`alice:bits:secret`)
    const ha2 = hash(`${req.method}:${p.uri}`)
    return p.uri === req.url && p.nonce === nonce && p.response === hash(`${ha1}:${nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`)
  }
  const server: Server = createServer((req, res) => {
    seen.push(req.headers.authorization)
    if (!valid(req)) {
      const challenge = scheme === 'Basic' ? 'Basic realm="bits"' : `Digest realm="bits", qop="auth", algorithm=${algorithm}, nonce="${nonce}", opaque="xyz"`
      res.writeHead(401, {'www-authenticate': challenge}).end()
      return
    }
    if (redirectTo) {
      res.writeHead(302, {location: redirectTo}).end()
      return
    }
    const headers = {'accept-ranges': 'bytes', etag: '"auth"', 'content-length': body.length}
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/protected.bin`, body, seen, stop: () => new Promise<void>((resolve) => server.close(() => resolve()))}
}

describe('proxies and credentials on the wire', () => {
  let origin: FixtureServer
  let dir: string
  let cleanup: () => Promise<void>
  const body = randomBytes(100_000)

  before(async () => {
    origin = await new FixtureServer().start()
    origin.files.set('/p.bin', {body, etag: '"p"'})
    ;({dir, cleanup} = await makeTempDir())
  })
  after(async () => {
    await origin.stop()
    await cleanup()
  })

  /** Runs one job to an end state with its own engine (and environment). */
  async function runJob(name: string, url: string, settings: Parameters<typeof runJobToEnd>[3], env: NodeJS.ProcessEnv = {}) {
    const local = path.join(dir, `${name}.bin`)
    return {done: await runJobToEnd(path.join(dir, `state-${name}`), url, local, settings, env), local}
  }

  test('OVERRIDE sends every request through the proxy; a dead first proxy falls back to the next', async () => {
    const proxy = await startProxy()
    try {
      const {done, local} = await runJob('override', origin.url('/p.bin'), {proxy: {usage: 'OVERRIDE', list: ['127.0.0.1:9', proxy.url]}})
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.equal(await sha256File(local), sha256(body))
      assert.ok(proxy.seen.some((line) => line === `GET ${origin.url('/p.bin')}`), `proxy saw the body request: ${proxy.seen.join(', ')}`)
    } finally {
      await proxy.stop()
    }
  })

  test('OVERRIDE with bypass <local> goes direct to a loopback host', async () => {
    const proxy = await startProxy()
    try {
      const {done} = await runJob('bypass', origin.url('/p.bin'), {proxy: {usage: 'OVERRIDE', list: [proxy.url]}, proxyBypass: ['<local>']})
      assert.equal(done.state, 'TRANSFERRED')
      assert.deepEqual(proxy.seen, [])
    } finally {
      await proxy.stop()
    }
  })

  test('PRECONFIG uses HTTP_PROXY from the environment, and NO_PROXY exempts hosts', async () => {
    const proxy = await startProxy()
    try {
      const via = await runJob('preconfig', origin.url('/p.bin'), undefined, {HTTP_PROXY: proxy.url})
      assert.equal(via.done.state, 'TRANSFERRED')
      assert.ok(proxy.seen.length >= 2, 'HEAD and GET went through the proxy')
      const before = proxy.seen.length
      const direct = await runJob('noproxy', origin.url('/p.bin'), undefined, {http_proxy: proxy.url, no_proxy: 'localhost,127.0.0.1'})
      assert.equal(direct.done.state, 'TRANSFERRED')
      assert.equal(proxy.seen.length, before)
    } finally {
      await proxy.stop()
    }
  })

  test('AUTODETECT evaluates a PAC script in a sandbox: PROXY for one host, DIRECT for another', async () => {
    const proxy = await startProxy()
    try {
      const pac = path.join(dir, 'proxy.pac')
      await writeFile(pac, `function FindProxyForURL(url, host) { if (host === "localhost") return "PROXY ${proxy.url.slice(7)}"; return "DIRECT"; }`)
      const viaPac = await runJob('pac-proxy', `http://localhost:${origin.port}/p.bin`, {proxy: {usage: 'AUTODETECT', list: []}}, {BITS_PAC_URL: pac})
      assert.equal(viaPac.done.state, 'TRANSFERRED', JSON.stringify(viaPac.done.error))
      assert.ok(proxy.seen.some((line) => line.includes('localhost')))
      const count = proxy.seen.length
      const direct = await runJob('pac-direct', origin.url('/p.bin'), {proxy: {usage: 'AUTODETECT', list: []}}, {BITS_PAC_URL: pac})
      assert.equal(direct.done.state, 'TRANSFERRED')
      assert.equal(proxy.seen.length, count)
    } finally {
      await proxy.stop()
    }
  })

  test('proxy Basic credentials are sent; without them a 407 is fatal 0x80190197', async () => {
    const proxy = await startProxy({user: 'pat', password: 'pw'})
    try {
      const denied = await runJob('proxy-denied', origin.url('/p.bin'), {proxy: {usage: 'OVERRIDE', list: [proxy.url]}})
      assert.equal(denied.done.state, 'ERROR', JSON.stringify(denied.done.error))
      assert.equal(denied.done.error?.code, '0x80190197')
      const allowed = await runJob('proxy-auth', origin.url('/p.bin'), {proxy: {usage: 'OVERRIDE', list: [proxy.url]}, setCredentials: [{target: 'PROXY', scheme: 'BASIC', username: 'pat', password: 'pw'}]})
      assert.equal(allowed.done.state, 'TRANSFERRED', JSON.stringify(allowed.done.error))
    } finally {
      await proxy.stop()
    }
  })

  test('proxy Digest credentials answer a forward proxy\'s 407 challenge', async () => {
    const nonce = randomBytes(8).toString('hex')
    const md5 = (text: string) => createHash('md5').update(text).digest('hex')
    const seen: string[] = []
    const digestProxy = createServer((req, res) => {
      const [answer] = parseChallenges(req.headers['proxy-authorization'] ?? '')
      const p = answer?.params ?? {}
      const expected = md5(`${md5('pat:proxy:pw')}:${nonce}:${p.nc}:${p.cnonce}:auth:${md5(`${req.method}:${p.uri}`)}`)
      if (answer?.scheme !== 'digest' || p.response !== expected) {
        res.writeHead(407, {'proxy-authenticate': `Digest realm="proxy", qop="auth", nonce="${nonce}"`}).end()
        return
      }
      seen.push(`${req.method} ${req.url}`)
      const upstream = new URL(req.url!)
      const forwarded = httpRequest({host: upstream.hostname, port: upstream.port, path: upstream.pathname, method: req.method, headers: {...req.headers, 'proxy-authorization': ''}}, (reply) => {
        res.writeHead(reply.statusCode!, reply.headers)
        reply.pipe(res)
      })
      req.pipe(forwarded)
    })
    await new Promise<void>((resolve) => digestProxy.listen(0, '127.0.0.1', resolve))
    const proxyUrl = `http://127.0.0.1:${(digestProxy.address() as AddressInfo).port}`
    try {
      const denied = await runJob('digest-proxy-denied', origin.url('/p.bin'), {proxy: {usage: 'OVERRIDE', list: [proxyUrl]}})
      assert.equal(denied.done.error?.code, '0x80190197')
      const {done, local} = await runJob('digest-proxy', origin.url('/p.bin'), {proxy: {usage: 'OVERRIDE', list: [proxyUrl]}, setCredentials: [{target: 'PROXY', scheme: 'DIGEST', username: 'pat', password: 'pw'}]})
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.equal(await sha256File(local), sha256(body))
      assert.ok(seen.includes(`GET ${origin.url('/p.bin')}`))
    } finally {
      digestProxy.closeAllConnections()
      await new Promise<void>((resolve) => digestProxy.close(() => resolve()))
    }
  })

  for (const [scheme, algorithm] of [['Basic', 'MD5'], ['Digest', 'MD5'], ['Digest', 'SHA-256']] as const) {
    test(`server ${scheme}${scheme === 'Digest' ? ` ${algorithm}` : ''} credentials answer the challenge; without them 401 is fatal 0x80190191`, async () => {
      const server = await startAuthServer(scheme, algorithm)
      try {
        const denied = await runJob(`no-cred-${scheme}-${algorithm}`, server.url, undefined)
        assert.equal(denied.done.state, 'ERROR')
        assert.equal(denied.done.error?.code, '0x80190191')
        const ok = await runJob(`cred-${scheme}-${algorithm}`, server.url, {setCredentials: [{target: 'SERVER', scheme: scheme === 'Basic' ? 'BASIC' : 'DIGEST', username: 'alice', password: 'secret'}]})
        assert.equal(ok.done.state, 'TRANSFERRED', JSON.stringify(ok.done.error))
        assert.equal(await sha256File(ok.local), sha256(server.body))
        assert.ok(server.seen.some((header) => header?.startsWith(scheme)))
      } finally {
        await server.stop()
      }
    })
  }

  test('HTTP method override: the body request uses it, the job is FOREGROUND, and a 503 is fatal', async () => {
    origin.files.set('/report', {body: randomBytes(3000), etag: '"r"'})
    const {done} = await runJob('method', origin.url('/report'), {httpMethod: 'REPORT'})
    assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
    assert.equal(done.priority, 'FOREGROUND')
    assert.ok(origin.requests.some((r) => r.path === '/report' && r.method === 'REPORT'))
    origin.files.set('/busy', {body: randomBytes(10), etag: '"b"', fault: () => ({kind: 'status', status: 503})})
    const busy = await runJob('method-busy', origin.url('/busy'), {httpMethod: 'REPORT'})
    assert.equal(busy.done.state, 'ERROR', 'no TRANSIENT_ERROR for a custom method')
    assert.equal(busy.done.error?.code, '0x801901f7')
  })

  test('custom headers reach the server on every request; credentials never follow a redirect to another host', async () => {
    const redirecting = await startAuthServer('Basic', 'MD5', `http://localhost:${origin.port}/p.bin`)
    try {
      const {done} = await runJob('headers', redirecting.url, {customHeaders: ['X-Build: 42', 'Accept-Language: fr'], setCredentials: [{target: 'SERVER', scheme: 'BASIC', username: 'alice', password: 'secret'}]})
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.ok(redirecting.seen.some((header) => header?.startsWith('Basic')), 'the job host got the credentials')
    } finally {
      await redirecting.stop()
    }
    assert.ok(origin.requests.filter((r) => r.path === '/p.bin').length > 0)
    for (const request of origin.requests) assert.equal(request.headers.authorization, undefined, 'no credentials after a redirect to another host')
    const requests = origin.requests.filter((r) => r.path === '/p.bin').slice(-2)
    for (const request of requests) {
      assert.equal(request.headers['x-build'], '42')
      assert.equal(request.headers['accept-language'], 'fr')
    }
  })
})

test('proxy selection helpers - bypass, NO_PROXY and PAC answers', () => {
  assert.equal(isBypassed('intranet', ['<local>']), true)
  assert.equal(isBypassed('127.0.0.1', ['<local>']), true)
  assert.equal(isBypassed('example.com', ['<local>']), false)
  assert.equal(isBypassed('build.corp.example', ['*.corp.example']), true)
  assert.equal(matchesNoProxy(new URL('http://a.example.com/'), 'example.com'), true)
  assert.equal(matchesNoProxy(new URL('http://example.org/'), '.example.com,localhost'), false)
  assert.equal(matchesNoProxy(new URL('http://127.0.0.1:8080/'), '127.0.0.1:9090'), false)
  assert.equal(matchesNoProxy(new URL('http://any/'), '*'), true)
  assert.deepEqual(parsePacAnswer('PROXY a:1; HTTPS b:2; DIRECT; PROXY c:3'), ['http://a:1', 'https://b:2'])
  assert.deepEqual(parsePacAnswer('DIRECT'), [])
})

test('proxyEnvironment() - the user\'s proxy settings fill in for PRECONFIG where the environment sets none', () => {
  const settings = {...SETTING_DEFAULTS, httpProxy: 'http://settings:1', httpsProxy: 'http://settings:2', noProxy: 'corp', pacUrl: '/etc/proxy.pac'}
  assert.deepEqual(proxyEnvironment(settings, {}), {HTTP_PROXY: 'http://settings:1', HTTPS_PROXY: 'http://settings:2', NO_PROXY: 'corp', BITS_PAC_URL: '/etc/proxy.pac'})
  const env = proxyEnvironment(settings, {http_proxy: 'http://env:1', BITS_PAC_URL: 'http://env/pac'})
  assert.equal(env.HTTP_PROXY, undefined, 'an environment variable in either case wins')
  assert.equal(env.http_proxy, 'http://env:1')
  assert.equal(env.BITS_PAC_URL, 'http://env/pac')
  assert.deepEqual(preconfiguredRoute(new URL('https://example.org/'), proxyEnvironment(settings, {})), ['http://settings:2'])
})
