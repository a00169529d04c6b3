import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {SecurityFlag} from '../../src/lib/jobs/job.js'
import {TestCa} from '../helpers/certificates.js'
import {FixtureServer} from '../helpers/fixture-server.js'
import {startProxy} from '../helpers/forward-proxy.js'
import {runJobToEnd} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

type Defect = 'good' | 'expired' | 'wrong-host' | 'wrong-usage'

describe('TLS security flags: each flag tolerates exactly its own class of certificate error', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let caFile: string
  const servers = new Map<Defect | 'unknown-ca', FixtureServer>()

  before(async () => {
    ;({dir, cleanup} = await makeTempDir())
    const ca = await TestCa.create()
    const stranger = await TestCa.create('someone else')
    caFile = path.join(dir, 'ca.pem')
    await writeFile(caFile, ca.cert)
    const issued = {
      good: await ca.issue(),
      expired: await ca.issue({expired: true}),
      'wrong-host': await ca.issue({hosts: [{dns: 'elsewhere.example'}]}),
      'wrong-usage': await ca.issue({usages: ['1.3.6.1.5.5.7.3.2']}),
      'unknown-ca': await stranger.issue(),
    }
    for (const [name, tls] of Object.entries(issued)) {
      const server = await new FixtureServer(tls).start()
      server.files.set('/f.bin', {body: randomBytes(5000), etag: '"f"'})
      servers.set(name as Defect, server)
    }
  })
  after(async () => {
    for (const server of servers.values()) await server.stop()
    await cleanup()
  })

  const attempt = (server: Defect | 'unknown-ca', securityFlags: number, trustCa = true) =>
    runJobToEnd(path.join(dir, `state-${server}-${securityFlags}-${trustCa}`), servers.get(server)!.url('/f.bin'), path.join(dir, `${server}-${securityFlags}-${trustCa}.bin`), {securityFlags, caFile: trustCa ? caFile : null})

  const cases: [Defect | 'unknown-ca', number, string][] = [
    ['expired', SecurityFlag.IGNORE_CERT_DATE_INVALID, '0x80072f05'],
    ['wrong-host', SecurityFlag.IGNORE_CERT_CN_INVALID, '0x80072f06'],
    ['wrong-usage', SecurityFlag.IGNORE_CERT_WRONG_USAGE, '0x80072f17'],
    ['unknown-ca', SecurityFlag.IGNORE_UNKNOWN_CA, '0x80072f0d'],
  ]
  const allIgnoreFlags = cases.map(([, flag]) => flag)

  test('a good certificate from the job\'s CA file passes with no flags; without the CA it is an unknown CA', async () => {
    assert.equal((await attempt('good', 0)).state, 'TRANSFERRED')
    const untrusted = await attempt('good', 0, false)
    assert.equal(untrusted.state, 'ERROR')
    assert.equal(untrusted.error?.code, '0x80072f0d')
  })

  for (const [defect, flag, code] of cases) {
    test(`${defect}: fatal ${code} without its flag, accepted with it, still fatal with every other flag`, async () => {
      const refused = await attempt(defect, 0)
      assert.equal(refused.state, 'ERROR')
      assert.equal(refused.error?.code, code)
      const accepted = await attempt(defect, flag)
      assert.equal(accepted.state, 'TRANSFERRED', JSON.stringify(accepted.error))
      const others = allIgnoreFlags.filter((other) => other !== flag).reduce((sum, other) => sum | other, 0)
      const wrongFlags = await attempt(defect, others)
      assert.equal(wrongFlags.state, 'ERROR', `flags 0x${others.toString(16)} must not excuse ${defect}: ${JSON.stringify(wrongFlags.error)}`)
      assert.equal(wrongFlags.error?.code, code)
    })
  }

  test('redirect policy: HTTPS to HTTP only with 0x800; a redirect loop stops after 10 hops', async () => {
    const plain = await new FixtureServer().start()
    try {
      const body = randomBytes(3000)
      plain.files.set('/plain.bin', {body, etag: '"plain"'})
      plain.files.set('/loop', {body: Buffer.alloc(0), headStatus: 405, fault: () => ({kind: 'redirect', status: 302, location: '/loop'})})
      const secure = servers.get('good')!
      secure.files.set('/down.bin', {body: Buffer.alloc(0), headStatus: 405, fault: () => ({kind: 'redirect', status: 301, location: plain.url('/plain.bin')})})
      const run = (name: string, url: string, securityFlags: number) => runJobToEnd(path.join(dir, `state-${name}`), url, path.join(dir, `${name}.bin`), {securityFlags, caFile})
      const refused = await run('downgrade', secure.url('/down.bin'), 0)
      assert.equal(refused.state, 'ERROR')
      assert.equal(refused.error?.code, '0x80072f7a')
      const allowed = await run('downgrade-ok', secure.url('/down.bin'), SecurityFlag.REDIRECT_POLICY_ALLOW_HTTPS_TO_HTTP)
      assert.equal(allowed.state, 'TRANSFERRED', JSON.stringify(allowed.error))
      const loop = await run('loop', plain.url('/loop'), 0)
      assert.equal(loop.state, 'ERROR')
      assert.equal(loop.error?.code, '0x80072f7a')
      assert.match(loop.error!.description, /More than 10 redirects/)
      assert.equal(plain.requests.filter((r) => r.path === '/loop' && r.method === 'GET').length, 11, 'the first request and 10 hops')
    } finally {
      await plain.stop()
    }
  })

  test('CRL check (0x1): a good certificate passes, a revoked one is fatal 0x80072f8a, an unreachable CRL is fatal 0x80072f19', async () => {
    const ca = await TestCa.create('CRL CA')
    const crlServer = createServer()
    let crl: Buffer = Buffer.alloc(0)
    crlServer.on('request', (_req, res) => res.writeHead(200, {'content-type': 'application/pkix-crl'}).end(crl))
    await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve))
    const crlUrl = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/ca.crl`
    const caPem = path.join(dir, 'crl-ca.pem')
    await writeFile(caPem, ca.cert)
    const good = await ca.issue({crlUrl})
    const revoked = await ca.issue({crlUrl})
    const offline = await ca.issue({crlUrl: 'http://127.0.0.1:9/none.crl'})
    crl = await ca.crl([revoked.serial])
    const started: FixtureServer[] = []
    try {
      const run = async (name: string, tls: {cert: string; key: string}) => {
        const server = await new FixtureServer(tls).start()
        started.push(server)
        server.files.set('/f.bin', {body: randomBytes(2000), etag: '"f"'})
        return runJobToEnd(path.join(dir, `state-crl-${name}`), server.url('/f.bin'), path.join(dir, `crl-${name}.bin`), {securityFlags: SecurityFlag.ENABLE_CRL_CHECK, caFile: caPem})
      }
      const ok = await run('good', good)
      assert.equal(ok.state, 'TRANSFERRED', JSON.stringify(ok.error))
      const bad = await run('revoked', revoked)
      assert.equal(bad.state, 'ERROR')
      assert.equal(bad.error?.code, '0x80072f8a')
      const unreachable = await run('offline', offline)
      assert.equal(unreachable.state, 'ERROR')
      assert.equal(unreachable.error?.code, '0x80072f19')
    } finally {
      for (const server of started) await server.stop()
      await new Promise<void>((resolve) => crlServer.close(() => resolve()))
    }
  })

  test('client certificate and key from the job are presented to a server that requires one; without them the handshake fails for good', async () => {
    const ca = await TestCa.create('client CA')
    const serverCert = await ca.issue()
    const client = await ca.issue({usages: ['1.3.6.1.5.5.7.3.2'], hosts: [{dns: 'client.example'}]})
    const server = await new FixtureServer({...serverCert, ca: ca.cert, requestCert: true, rejectUnauthorized: true, maxVersion: 'TLSv1.2'}).start()
    server.files.set('/f.bin', {body: randomBytes(2000), etag: '"f"'})
    const files = {ca: path.join(dir, 'client-ca.pem'), cert: path.join(dir, 'client.pem'), key: path.join(dir, 'client.key')}
    await writeFile(files.ca, ca.cert)
    await writeFile(files.cert, client.cert)
    await writeFile(files.key, client.key)
    try {
      const run = (name: string, withCert: boolean) =>
        runJobToEnd(path.join(dir, `state-client-${name}`), server.url('/f.bin'), path.join(dir, `client-${name}.bin`), {caFile: files.ca, ...(withCert ? {clientCert: files.cert, clientKey: files.key} : {})})
      const ok = await run('with', true)
      assert.equal(ok.state, 'TRANSFERRED', JSON.stringify(ok.error))
      const refused = await run('without', false)
      assert.equal(refused.state, 'ERROR', JSON.stringify(refused.error))
      assert.equal(refused.error?.code, '0x80072f8f')
      assert.match(refused.error!.description, /client certificate/)
    } finally {
      await server.stop()
    }
  })

  test('PRECONFIG: HTTPS_PROXY alone sends an https job through the proxy (CONNECT)', async () => {
    const proxy = await startProxy()
    try {
      const done = await runJobToEnd(path.join(dir, 'state-https-proxy'), servers.get('good')!.url('/f.bin'), path.join(dir, 'https-proxy.bin'), {caFile}, {HTTPS_PROXY: proxy.url})
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.ok(proxy.seen.includes(`CONNECT ${new URL(servers.get('good')!.url('/')).host}`), proxy.seen.join(', '))
    } finally {
      await proxy.stop()
    }
  })
})
