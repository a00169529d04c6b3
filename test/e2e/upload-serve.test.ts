import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, readdir, writeFile} from 'node:fs/promises'
import {connect, createServer, type AddressInfo, type Server, type Socket} from 'node:net'
import path from 'node:path'
import {createContext} from '../../src/lib/context.js'
import {addFiles, createJob, resumeJob} from '../../src/lib/jobs/job-service.js'
import {Scheduler} from '../../src/lib/scheduler/scheduler.js'
import {FAST_ENGINE, inState, sha256, waitForJob} from '../helpers/engine.js'
import {BIN, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

let dir: string
let cleanup: () => Promise<void>
const children: ChildProcess[] = []

before(async () => {
  ;({dir, cleanup} = await makeTempDir())
})
after(async () => {
  for (const child of children) child.kill('SIGKILL')
  await cleanup()
})

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** `bits serve --upload` as a real process on a fixed port; resolves when it accepts uploads. */
async function startServe(stateDir: string, inbox: string, port: number): Promise<{child: ChildProcess; exited: Promise<number | null>}> {
  const child = spawn(process.execPath, [BIN, 'serve', '--state-dir', stateDir, '--upload', `${inbox}=/uploads`, '--listen', `127.0.0.1:${port}`, '--log-level', 'info'], {stdio: ['ignore', 'ignore', 'pipe']})
  children.push(child)
  let log = ''
  child.stderr!.on('data', (chunk) => (log += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const deadline = Date.now() + 10_000
  while (!log.includes('accepting BITS uploads')) {
    if (Date.now() > deadline) throw new Error(`serve did not start: ${log}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return {child, exited}
}

/** A TCP relay that records where each fragment a client sends starts. */
async function startRelay(targetPort: number): Promise<{port: number; fragmentStarts: number[]; stop: () => Promise<void>}> {
  const fragmentStarts: number[] = []
  const sockets = new Set<Socket>()
  const relay: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.on('data', (chunk: Buffer) => {
      for (const match of chunk.toString('latin1').matchAll(/Content-Range: bytes (\d+)-/gi)) fragmentStarts.push(Number(match[1]))
    })
    client.pipe(upstream).pipe(client)
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  return {
    port: (relay.address() as AddressInfo).port,
    fragmentStarts,
    stop: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => relay.close(() => resolve()))
    },
  }
}

test('bits transfer --upload against bits serve --upload delivers an identical file, which download jobs can then fetch', async () => {
  const inbox = path.join(dir, 'inbox1')
  await mkdir(inbox)
  const port = await freePort()
  const serve = await startServe(path.join(dir, 'server1'), inbox, port)
  try {
    const data = randomBytes(3_000_000)
    const source = path.join(dir, 'report.bin')
    await writeFile(source, data)
    const up = await runCli(['transfer', '--upload', source, `http://127.0.0.1:${port}/uploads/report.bin`, '--json'], {stateDir: path.join(dir, 'client1')})
    assert.equal(up.code, 0, up.stderr)
    assert.equal(up.json.result.job.type, 'upload')
    assert.equal(sha256(await readFile(path.join(inbox, 'report.bin'))), sha256(data))
    const copy = path.join(dir, 'copy.bin')
    const down = await runCli(['transfer', `http://127.0.0.1:${port}/uploads/report.bin`, copy, '--json'], {stateDir: path.join(dir, 'client1')})
    assert.equal(down.code, 0, down.stderr)
    assert.equal(sha256(await readFile(copy)), sha256(data))
  } finally {
    serve.child.kill('SIGTERM')
    assert.equal(await serve.exited, 0)
  }
})

test('SIGKILL of the upload server mid-upload: after a restart the upload resumes from the acknowledged offset', async () => {
  const inbox = path.join(dir, 'inbox2')
  const serverState = path.join(dir, 'server2')
  await mkdir(inbox)
  const port = await freePort()
  const relay = await startRelay(port)
  const ctx = createContext(path.join(dir, 'client2'))
  const scheduler = new Scheduler(ctx, FAST_ENGINE)
  await scheduler.start()
  let serve = await startServe(serverState, inbox, port)
  try {
    const data = randomBytes(40 * 1024 * 1024)
    const source = path.join(dir, 'big-upload.bin')
    await writeFile(source, data)
    const job = await createJob(ctx, {displayName: 'crash-upload', type: 'upload'})
    await addFiles(ctx, job.id, [{remoteUrl: `http://127.0.0.1:${relay.port}/uploads/big-upload.bin`, localPath: source}])
    await resumeJob(ctx, job.id)
    const progressed = await waitForJob(ctx, job.id, (j) => j.bytesTransferred >= 8 * 1024 * 1024 || j.state !== 'QUEUED' && j.state !== 'CONNECTING' && j.state !== 'TRANSFERRING', 20_000)
    serve.child.kill('SIGKILL')
    await serve.exited
    const acked = progressed.bytesTransferred
    assert.ok(acked > 0 && acked < data.length, `killed mid-upload after ${acked} acknowledged bytes`)
    await waitForJob(ctx, job.id, inState('TRANSIENT_ERROR', 'ERROR', 'TRANSFERRED'), 20_000)
    const checkpoint = (await waitForJob(ctx, job.id, () => true)).bytesTransferred
    const sessions = await readdir(path.join(serverState, 'uploads', 'sessions'))
    assert.equal(sessions.length, 1, 'the session survived the crash on disk')
    serve = await startServe(serverState, inbox, port)
    const startsBefore = relay.fragmentStarts.length
    await resumeJob(ctx, job.id)
    const done = await waitForJob(ctx, job.id, inState('TRANSFERRED', 'ERROR'), 30_000)
    assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
    assert.equal(sha256(await readFile(path.join(inbox, 'big-upload.bin'))), sha256(data))
    const resumedFrom = relay.fragmentStarts[startsBefore]!
    assert.equal(resumedFrom, checkpoint, 'the first fragment after the restart starts at the acknowledged offset')
    assert.ok(relay.fragmentStarts.slice(startsBefore).every((start) => start >= checkpoint), 'no acknowledged byte was sent again')
  } finally {
    await scheduler.close()
    serve.child.kill('SIGTERM')
    await serve.exited
    await relay.stop()
  }
})

test('SIGKILL of the uploading daemon: after a restart it goes on from the acknowledged offset', async () => {
  const inbox = path.join(dir, 'inbox3')
  await mkdir(inbox)
  const port = await freePort()
  const relay = await startRelay(port)
  const server = await startServe(path.join(dir, 'server3'), inbox, port)
  const clientState = path.join(dir, 'client3')
  const startClient = () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--state-dir', clientState, '--log-level', 'error'], {stdio: 'ignore'})
    children.push(child)
    return {child, exited: new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))}
  }
  let client = startClient()
  try {
    const data = randomBytes(40 * 1024 * 1024)
    const source = path.join(dir, 'client-crash.bin')
    await writeFile(source, data)
    const id = (await runCli(['create', '--upload', 'client-crash', '--json'], {stateDir: clientState})).json.result.id
    await runCli(['addfile', id, `http://127.0.0.1:${relay.port}/uploads/client-crash.bin`, source], {stateDir: clientState})
    await runCli(['resume', id], {stateDir: clientState})
    const ctx = createContext(clientState)
    await waitForJob(ctx, id, (j) => j.bytesTransferred >= 8 * 1024 * 1024 || j.state === 'TRANSFERRED', 20_000)
    client.child.kill('SIGKILL')
    await client.exited
    const checkpoint = (await waitForJob(ctx, id, () => true)).bytesTransferred
    assert.ok(checkpoint > 0 && checkpoint < data.length, `killed mid-upload at ${checkpoint}`)
    const startsBefore = relay.fragmentStarts.length
    client = startClient()
    const done = await waitForJob(ctx, id, inState('TRANSFERRED', 'ERROR'), 30_000)
    assert.equal(done.state, 'TRANSFERRED', JSON.stringify(done.error))
    assert.equal(sha256(await readFile(path.join(inbox, 'client-crash.bin'))), sha256(data))
    assert.ok(relay.fragmentStarts.slice(startsBefore).every((start) => start >= checkpoint), `no acknowledged byte was sent again: ${relay.fragmentStarts.slice(startsBefore).join(',')} vs ${checkpoint}`)
  } finally {
    client.child.kill('SIGTERM')
    await client.exited
    server.child.kill('SIGTERM')
    await server.exited
    await relay.stop()
  }
})
