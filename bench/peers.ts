/**
 * Peer benchmark (run by `npm run bench`, or alone): 64 KiB range requests at 16 connections to
 * `bits peers serve` against nginx serving the same bytes over TLS with a client certificate, on
 * the same machine. Prints req/s, p99 and the ratio. Needs nginx (apt-get install nginx) for the
 * comparison.
 */
import {spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {fileURLToPath} from 'node:url'
import {CacheStore} from '../src/lib/cache/cache-store.js'
import {createContext} from '../src/lib/context.js'
import {addTrusted, ensureIdentity} from '../src/lib/peers/peer-identity.js'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const work = path.join(root, 'bench', '.work', 'peers')
const SECONDS = Number(process.env.BENCH_PEER_SECONDS ?? 5)
const SIZE = 64 * 1024 * 1024

await rm(work, {recursive: true, force: true})
await mkdir(work, {recursive: true})
const server = createContext(path.join(work, 'server'))
const client = createContext(path.join(work, 'client'))
const serverIdentity = await ensureIdentity(server, {name: 'bench-server'})
const clientIdentity = await ensureIdentity(client, {name: 'bench-client'})
await addTrusted(server, clientIdentity.certPem)
const record = await new CacheStore(server).add({url: 'https://bench.example/data.bin', size: SIZE, fileModifiedAt: null, etag: null, data: Readable.from([randomBytes(SIZE)])})
const files = {cert: path.join(work, 'client.crt'), key: path.join(work, 'client.key'), serverCert: path.join(work, 'server.crt'), serverKey: path.join(work, 'server.key')}
await writeFile(files.cert, clientIdentity.certPem)
await writeFile(files.key, clientIdentity.keyPem)
await writeFile(files.serverCert, serverIdentity.certPem)
await writeFile(files.serverKey, serverIdentity.keyPem)

const bitsPort = 20_000 + Math.floor(Math.random() * 500)
const nginxPort = bitsPort + 500
const bits = spawn(process.execPath, [path.join(root, 'bin', 'run.js'), 'peers', 'serve', '--host', '127.0.0.1', '--no-discovery', '--port', String(bitsPort), '--state-dir', server.stateDir, '--max-searches', '64', '--workers', '2'], {stdio: 'ignore'})
let nginx: ReturnType<typeof spawn> | undefined
if (spawnSync('sh', ['-c', 'command -v nginx']).status === 0) {
  await mkdir(path.join(work, 'www'), {recursive: true})
  // nginx workers run as nobody: give them a readable copy (the cache itself is 0600).
  spawnSync('cp', [new CacheStore(server).dataFile(record.id), path.join(work, 'www', 'data.bin')])
  spawnSync('chmod', ['-R', 'a+rX', path.join(work, 'www')])
  spawnSync('chmod', ['a+x', work])
  const conf = path.join(work, 'nginx.conf')
  await writeFile(conf, `daemon off; worker_processes 2; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log;
events { worker_connections 256; }
http { access_log off; sendfile on; client_body_temp_path ${work}/b; proxy_temp_path ${work}/p; fastcgi_temp_path ${work}/f; uwsgi_temp_path ${work}/u; scgi_temp_path ${work}/s;
  server { listen 127.0.0.1:${nginxPort} ssl; ssl_certificate ${files.serverCert}; ssl_certificate_key ${files.serverKey}; ssl_verify_client optional_no_ca; root ${work}/www; } }\n`)
  nginx = spawn('nginx', ['-c', conf], {stdio: 'ignore'})
}
await new Promise((resolve) => setTimeout(resolve, 2000))

function load(url: string): {rps: number; p99Ms: number; errors: number} {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'range-load.ts'), url, String(SIZE), String(SECONDS), '16', files.cert, files.key], {encoding: 'utf8'})
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!)
}

try {
  const ours = load(`https://127.0.0.1:${bitsPort}/BITS-peer-caching/%7B${record.id}%7D`)
  const line = `64 KiB ranges, 16 connections, ${SECONDS}s: peers serve ${ours.rps.toFixed(0)} req/s p99 ${ours.p99Ms.toFixed(1)} ms (${ours.errors} errors)`
  if (nginx) {
    const theirs = load(`https://127.0.0.1:${nginxPort}/data.bin`)
    console.log(`${line} | nginx ${theirs.rps.toFixed(0)} req/s p99 ${theirs.p99Ms.toFixed(1)} ms | ratio ${(ours.rps / theirs.rps).toFixed(2)}x`)
  } else {
    console.log(`${line} (install nginx for the comparison)`)
  }
} finally {
  bits.kill('SIGINT')
  nginx?.kill('SIGQUIT')
}
