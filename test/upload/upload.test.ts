import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, readdir, stat, writeFile} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {connect, type AddressInfo} from 'node:net'
import path from 'node:path'
import {createContext, type LibContext} from '../../src/lib/context.js'
import {addFiles, cancelJob, completeJob, createJob, resumeJob, setJobProperties} from '../../src/lib/jobs/job-service.js'
import {bitsCapableListener} from '../../src/lib/upload/bits-method-adapter.js'
import {UploadHandler} from '../../src/lib/upload/upload-server.js'
import {setUploadUser, UploadUsers} from '../../src/lib/upload/upload-users.js'
import {applyHostFallback} from '../../src/lib/upload/upload-client.js'
import {inState, sha256, startEngine, waitForJob} from '../helpers/engine.js'
import {makeTempDir} from '../helpers/temp-dir.js'

interface FragmentLog {
  range: string
  status: number
}

/** An upload endpoint (our UploadHandler) that logs fragments and can drop a connection on cue. */
async function startEndpoint(ctx: LibContext, dir: string, settings: Partial<ConstructorParameters<typeof UploadHandler>[1]> = {}) {
  const handler = new UploadHandler(ctx, {mounts: [{dir, urlPath: '/uploads'}], ...settings})
  const fragments: FragmentLog[] = []
  let dropFragment: number | undefined
  let fragmentCount = 0
  const httpServer: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (String(req.headers['bits-packet-type']).toLowerCase() === 'fragment') {
      fragmentCount++
      if (fragmentCount === dropFragment) {
        req.socket.destroy()
        return
      }
      const entry = {range: String(req.headers['content-range']), status: 0}
      fragments.push(entry)
      res.on('finish', () => (entry.status = res.statusCode))
    }
    if (!handler.handle(req, res)) res.writeHead(404).end()
  })
  const server = bitsCapableListener(httpServer)
  const sockets = new Set<import('node:net').Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: (name: string) => `http://127.0.0.1:${port}/uploads/${name}`,
    port,
    fragments,
    dropOnFragment: (n: number) => (dropFragment = n),
    stop: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Sends one raw request and returns the status line and headers of the answer. */
function raw(port: number, text: string): Promise<{status: number; headers: Record<string, string>}> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let data = ''
    socket.on('data', (chunk) => {
      data += chunk
      if (data.includes('\r\n\r\n')) {
        const [head] = data.split('\r\n\r\n')
        const [statusLine, ...lines] = head!.split('\r\n')
        const headers: Record<string, string> = {}
        for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
        socket.end()
        resolve({status: Number(statusLine!.split(' ')[1]), headers})
      }
    })
    socket.on('error', reject)
  })
}

describe('BITS uploads: our client against our server', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let serverCtx: LibContext
  let inbox: string

  before(async () => {
    ;({dir, cleanup} = await makeTempDir())
    serverCtx = createContext(path.join(dir, 'server-state'))
    inbox = path.join(dir, 'inbox')
    await mkdir(inbox)
  })
  after(() => cleanup())

  async function uploadJob(ctx: LibContext, url: string, file: string, type: 'upload' | 'upload-reply' = 'upload') {
    const job = await createJob(ctx, {displayName: 'up', type})
    await addFiles(ctx, job.id, [{remoteUrl: url, localPath: file}])
    await setJobProperties(ctx, job.id, {minRetryDelay: 5})
    return resumeJob(ctx, job.id)
  }

  test('an upload job delivers an identical file; an interruption resumes without resending acknowledged bytes', async () => {
    const endpoint = await startEndpoint(serverCtx, inbox)
    const {ctx: clientCtx, stop: stopEngine} = await startEngine(path.join(dir, 'client1'))
    try {
      const data = randomBytes(20 * 1024 * 1024 + 123)
      const source = path.join(dir, 'big.bin')
      await writeFile(source, data)
      endpoint.dropOnFragment(2)
      const job = await uploadJob(clientCtx, endpoint.url('big.bin'), source)
      const failed = await waitForJob(clientCtx, job.id, inState('TRANSIENT_ERROR', 'ERROR', 'TRANSFERRED'))
      assert.equal(failed.state, 'TRANSIENT_ERROR', JSON.stringify(failed.error))
      assert.equal(failed.bytesTransferred, 8 * 1024 * 1024, 'the first fragment was acknowledged and recorded')
      await resumeJob(clientCtx, job.id)
      const done = await waitForJob(clientCtx, job.id, inState('TRANSFERRED', 'ERROR'))
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.equal(sha256(await readFile(path.join(inbox, 'big.bin'))), sha256(data))
      const acked = endpoint.fragments.filter((f) => f.status === 200).map((f) => /bytes (\d+)-(\d+)/.exec(f.range)!.slice(1).map(Number) as [number, number])
      const sum = acked.reduce((total, [first, last]) => total + last - first + 1, 0)
      assert.equal(sum, data.length, `acknowledged fragments cover the file exactly once: ${JSON.stringify(acked)}`)
      assert.equal(acked[1]![0], 8 * 1024 * 1024, 'after the drop the client went on from the acknowledged offset')
      assert.deepEqual((await readdir(inbox)).filter((name) => name.endsWith('.bitsupload')), [], 'no temporary data left')
      await completeJob(clientCtx, job.id)
    } finally {
      await stopEngine()
      await endpoint.stop()
    }
  })

  test('upload-reply: the back-end gets the upload by value and its answer lands in the reply file', async () => {
    const backend = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk) => chunks.push(chunk))
      req.on('end', () => res.writeHead(200).end(`reply to ${Buffer.concat(chunks).length} bytes from ${req.headers['bits-original-request-url']}`))
    })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    const endpoint = await startEndpoint(serverCtx, inbox, {notification: {url: `http://127.0.0.1:${(backend.address() as AddressInfo).port}/app`, type: 'value'}})
    const {ctx: clientCtx, stop: stopEngine} = await startEngine(path.join(dir, 'client2'))
    try {
      const source = path.join(dir, 'question.txt')
      await writeFile(source, 'x'.repeat(1000))
      const job = await uploadJob(clientCtx, endpoint.url('question.txt'), source, 'upload-reply')
      const done = await waitForJob(clientCtx, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'))
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      const expected = `reply to 1000 bytes from http://127.0.0.1:${endpoint.port}/uploads/question.txt`
      assert.equal(await readFile(`${source}.reply`, 'utf8'), expected)
      assert.equal(done.reply?.file, `${source}.reply`)
      assert.equal(done.reply?.bytesTransferred, expected.length)
      assert.match(done.reply?.url ?? '', /\/uploads\/\.replies\//)
    } finally {
      await stopEngine()
      await endpoint.stop()
      await new Promise<void>((resolve) => backend.close(() => resolve()))
    }
  })

  test('upload-reply by reference: the back-end reads the upload and writes the reply at the names it is given', async () => {
    const seen: Record<string, string | undefined> = {}
    const backend = createServer(async (req, res) => {
      seen.request = req.headers['bits-request-datafile-name'] as string
      seen.response = req.headers['bits-response-datafile-name'] as string
      const upload = await readFile(seen.request)
      await writeFile(seen.response, `got ${upload.length} bytes by reference`)
      res.writeHead(200, {'content-length': '0'}).end()
    })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    const endpoint = await startEndpoint(serverCtx, inbox, {notification: {url: `http://127.0.0.1:${(backend.address() as AddressInfo).port}/app`, type: 'reference'}})
    const {ctx: clientCtx, stop: stopEngine} = await startEngine(path.join(dir, 'client6'))
    try {
      const source = path.join(dir, 'by-reference.txt')
      await writeFile(source, 'y'.repeat(777))
      const job = await uploadJob(clientCtx, endpoint.url('by-reference.txt'), source, 'upload-reply')
      const done = await waitForJob(clientCtx, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'))
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.equal(await readFile(`${source}.reply`, 'utf8'), 'got 777 bytes by reference')
      assert.ok(seen.request?.startsWith(inbox) && seen.response?.startsWith(inbox), 'the back-end got paths inside the upload directory')
      await assert.rejects(stat(seen.response!), 'the reply file is removed when the session closes')
    } finally {
      await stopEngine()
      await endpoint.stop()
      await new Promise<void>((resolve) => backend.close(() => resolve()))
    }
  })

  test('the server follows the Windows trace: mixed-case packets, Acks by offset, 416 for a gap, re-sent bytes not rewritten', async () => {
    const endpoint = await startEndpoint(serverCtx, inbox)
    try {
      const create = await raw(
        endpoint.port,
        'BITS_POST /uploads/rfc2119.txt HTTP/1.1\r\nAccept: */*\r\nBITS-Packet-Type: CreatE-SEssION\r\nBITS-Supported-Protocols: {7df0354d-249b-430f-820d-3d2a9bef4931}\r\nContent-Name: rfc2119.txt\r\nUser-Agent: Microsoft BITS/6.7\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n',
      )
      assert.equal(create.status, 200)
      assert.equal(create.headers['bits-packet-type'], 'Ack')
      assert.equal(create.headers['bits-protocol'], '{7df0354d-249b-430f-820d-3d2a9bef4931}')
      const id = create.headers['bits-session-id']!
      assert.match(id, /^\{[0-9A-F-]{36}\}$/)
      const fragment = (first: number, body: string, total = 10) =>
        raw(endpoint.port, `BITS_POST /uploads/rfc2119.txt HTTP/1.1\r\nBITS-Packet-Type: Fragment\r\nBITS-Session-Id: ${id}\r\nContent-Name: rfc2119.txt\r\nContent-Range: bytes ${first}-${first + body.length - 1}/${total}\r\nContent-Length: ${body.length}\r\nHost: 127.0.0.1\r\n\r\n${body}`)
      assert.equal((await fragment(0, 'abcd')).headers['bits-received-content-range'], '4')
      const gap = await fragment(6, 'gh')
      assert.equal(gap.status, 416)
      assert.equal(gap.headers['bits-received-content-range'], '4')
      const overlap = await fragment(2, 'XXef')
      assert.equal(overlap.status, 200)
      assert.equal(overlap.headers['bits-received-content-range'], '6')
      assert.equal((await fragment(6, 'ghij')).headers['bits-received-content-range'], '10')
      const close = await raw(endpoint.port, `BITS_POST /uploads/rfc2119.txt HTTP/1.1\r\nBITS-Packet-Type: Close-Session\r\nBITS-Session-Id: ${id}\r\nContent-Length: 0\r\nHost: 127.0.0.1\r\n\r\n`)
      assert.equal(close.status, 200)
      assert.equal(await readFile(path.join(inbox, 'rfc2119.txt'), 'utf8'), 'abcdefghij', 're-sent bytes were not written over')
      const get = await raw(endpoint.port, 'GET /uploads/rfc2119.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=2-5\r\n\r\n')
      assert.equal(get.status, 206)
      assert.equal(get.headers['content-range'], 'bytes 2-5/10')
    } finally {
      await endpoint.stop()
    }
  })

  test('the server refuses bad packets with the documented statuses and codes', async () => {
    const endpoint = await startEndpoint(serverCtx, inbox, {maxUploadSize: 100})
    try {
      const post = (headers: string, body = '') => raw(endpoint.port, `BITS_POST /uploads/x.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Length: ${body.length}\r\n\r\n${body}`)
      const unknown = await post('BITS-Packet-Type: Nonsense\r\n')
      assert.equal(unknown.status, 400)
      assert.equal(unknown.headers['bits-error-code'], '0x80070057')
      assert.equal((await post('')).status, 400, 'missing packet type')
      assert.equal((await post('BITS-Packet-Type: Create-Session\r\nBITS-Supported-Protocols: {00000000-0000-0000-0000-000000000000}\r\n')).status, 400, 'unsupported protocol')
      const withBody = await post('BITS-Packet-Type: Create-Session\r\nBITS-Supported-Protocols: {7df0354d-249b-430f-820d-3d2a9bef4931}\r\n', 'body')
      assert.equal(withBody.status, 400)
      assert.equal(withBody.headers['bits-error-code'], '0x80070057')
      const lost = await post('BITS-Packet-Type: Fragment\r\nBITS-Session-Id: {11111111-2222-3333-4444-555555555555}\r\nContent-Range: bytes 0-0/1\r\n', 'a')
      assert.equal(lost.status, 500)
      assert.equal(lost.headers['bits-error-code'], '0x8020001F')
      const create = await post('BITS-Packet-Type: Create-Session\r\nBITS-Supported-Protocols: {7df0354d-249b-430f-820d-3d2a9bef4931}\r\n')
      const big = await post(`BITS-Packet-Type: Fragment\r\nBITS-Session-Id: ${create.headers['bits-session-id']}\r\nContent-Range: bytes 0-0/1000\r\n`, 'a')
      assert.equal(big.status, 413)
      assert.equal(big.headers['bits-error-code'], '0x80200020')
      for (const evil of ['/uploads/../escape.bin', '/uploads/%2e%2e/escape.bin', '/uploads/a%5cb.bin', '/uploads/%00.bin', '/uploads/missing-dir/f.bin']) {
        const answer = await raw(endpoint.port, `BITS_POST ${evil} HTTP/1.1\r\nHost: 127.0.0.1\r\nBITS-Packet-Type: Create-Session\r\nBITS-Supported-Protocols: {7df0354d-249b-430f-820d-3d2a9bef4931}\r\nContent-Length: 0\r\n\r\n`)
        assert.ok(answer.status === 403 || answer.status === 404 || answer.status === 400, `${evil} -> ${answer.status}`)
      }
      await assert.rejects(stat(path.join(dir, 'escape.bin')))
      await writeFile(path.join(inbox, 'taken.bin'), 'old')
      const taken = await raw(endpoint.port, 'BITS_POST /uploads/taken.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nBITS-Packet-Type: Create-Session\r\nBITS-Supported-Protocols: {7df0354d-249b-430f-820d-3d2a9bef4931}\r\nContent-Length: 0\r\n\r\n')
      assert.equal(taken.status, 403, 'no overwrite unless allowed')
    } finally {
      await endpoint.stop()
    }
  })

  test('cancel of an upload job sends Cancel-Session; the server drops the partial data', async () => {
    const endpoint = await startEndpoint(serverCtx, inbox)
    const {ctx: clientCtx, stop: stopEngine} = await startEngine(path.join(dir, 'client3'))
    try {
      const source = path.join(dir, 'cancel.bin')
      await writeFile(source, randomBytes(9 * 1024 * 1024))
      endpoint.dropOnFragment(2)
      const job = await uploadJob(clientCtx, endpoint.url('cancel.bin'), source)
      await waitForJob(clientCtx, job.id, inState('TRANSIENT_ERROR', 'ERROR'))
      assert.ok((await readdir(inbox)).some((name) => name.startsWith('.cancel.bin')), 'partial data exists on the server')
      await cancelJob(clientCtx, job.id)
      assert.deepEqual((await readdir(inbox)).filter((name) => name.startsWith('.cancel.bin')), [])
      await stat(source)
    } finally {
      await stopEngine()
      await endpoint.stop()
    }
  })

  test('an endpoint with a users file wants Basic credentials: without them 0x80190191, with them the upload lands', async () => {
    const usersFile = path.join(dir, 'uploaders')
    await setUploadUser(usersFile, 'alice', 'pa55')
    assert.equal((await stat(usersFile)).mode & 0o777, 0o600)
    assert.doesNotMatch(await readFile(usersFile, 'utf8'), /pa55/)
    const endpoint = await startEndpoint(serverCtx, inbox, {users: await UploadUsers.load(usersFile)})
    const {ctx: clientCtx, stop: stopEngine} = await startEngine(path.join(dir, 'client4'))
    try {
      const source = path.join(dir, 'auth.bin')
      await writeFile(source, randomBytes(10_000))
      const anonymous = await uploadJob(clientCtx, endpoint.url('auth.bin'), source)
      const refused = await waitForJob(clientCtx, anonymous.id, inState('ERROR', 'TRANSIENT_ERROR', 'TRANSFERRED'))
      assert.equal(refused.state, 'ERROR')
      assert.equal(refused.error?.code, '0x80190191')
      const job = await createJob(clientCtx, {displayName: 'auth', type: 'upload'})
      await addFiles(clientCtx, job.id, [{remoteUrl: endpoint.url('auth.bin'), localPath: source}])
      await setJobProperties(clientCtx, job.id, {setCredentials: [{target: 'SERVER', scheme: 'BASIC', username: 'alice', password: 'pa55'}]})
      await resumeJob(clientCtx, job.id)
      const done = await waitForJob(clientCtx, job.id, inState('TRANSFERRED', 'ERROR', 'TRANSIENT_ERROR'))
      assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
      assert.equal(sha256(await readFile(path.join(inbox, 'auth.bin'))), sha256(await readFile(source)))
    } finally {
      await stopEngine()
      await endpoint.stop()
    }
  })

  test('an upload over the server limit fails at once with 0x80200020; a local file that changed is fatal 0x8020001D', async () => {
    const endpoint = await startEndpoint(serverCtx, inbox, {maxUploadSize: 1000})
    const {ctx: clientCtx, stop: stopEngine} = await startEngine(path.join(dir, 'client5'))
    try {
      const source = path.join(dir, 'too-big.bin')
      await writeFile(source, randomBytes(50_000))
      const job = await uploadJob(clientCtx, endpoint.url('too-big.bin'), source)
      const failed = await waitForJob(clientCtx, job.id, inState('ERROR', 'TRANSIENT_ERROR', 'TRANSFERRED'))
      assert.equal(failed.state, 'ERROR')
      assert.equal(failed.error?.code, '0x80200020')
      assert.equal(endpoint.fragments.length, 1, 'no shrinking retries for an upload that is simply too large')
      const unlimited = await startEndpoint(serverCtx, inbox)
      const changing = path.join(dir, 'changing.bin')
      await writeFile(changing, randomBytes(9 * 1024 * 1024))
      unlimited.dropOnFragment(2)
      const second = await uploadJob(clientCtx, unlimited.url('changing.bin'), changing)
      const interrupted = await waitForJob(clientCtx, second.id, inState('TRANSIENT_ERROR', 'ERROR'))
      assert.equal(interrupted.state, 'TRANSIENT_ERROR', 'the first fragment went through, the second was cut')
      await unlimited.stop()
      await writeFile(changing, randomBytes(9 * 1024 * 1024 + 1))
      await resumeJob(clientCtx, second.id)
      const changed = await waitForJob(clientCtx, second.id, inState('ERROR', 'TRANSFERRED'))
      assert.equal(changed.error?.code, '0x8020001d')
      assert.equal(changed.error?.context, 'LOCAL_FILE')
    } finally {
      await stopEngine()
      await endpoint.stop()
    }
  })
})

test('applyHostFallback() - the farm host is dropped after its fallback timeout without progress, kept otherwise', () => {
  const base = {sessionId: '{S}', hostId: 'node7', fileSize: 1, fileMtimeMs: 1, replyUrl: null, replyBytes: 0, hostIdFallbackMs: 110_000, lastAckAt: new Date(1_000_000).toISOString()}
  assert.equal(applyHostFallback(base, 1_000_000 + 100_000).hostId, 'node7')
  assert.equal(applyHostFallback(base, 1_000_000 + 120_000).hostId, null)
  assert.equal(applyHostFallback({...base, hostIdFallbackMs: null}, 9e12).hostId, 'node7', 'no timeout: never fall back')
})
