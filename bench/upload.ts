/**
 * Upload benchmark (run by `npm run bench` when present, or alone): a BENCH_UPLOAD_MIB file
 * (default 1024) uploaded to `bits serve --upload` with `bits transfer --upload`, against
 * `curl -T` to nginx with WebDAV PUT on the same machine. Prints wall times and the ratio, then
 * the peak memory of uploading a BENCH_SPARSE_GIB (default 4) GiB sparse file.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdir, rm, writeFile, open} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const work = path.join(root, 'bench', '.work', 'upload')
const MIB = Number(process.env.BENCH_UPLOAD_MIB ?? 1024)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const SPARSE_GIB = Number(process.env.BENCH_SPARSE_GIB ?? 4)

function wall(command: string[]): number {
  const started = process.hrtime.bigint()
  const result = spawnSync(command[0]!, command.slice(1), {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, BITS_NO_DAEMON: '1'}})
  if (result.status !== 0) throw new Error(`${command.slice(0, 3).join(' ')} failed: ${String(result.stderr).slice(-500)}`)
  return Number(process.hrtime.bigint() - started) / 1e9
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

await rm(work, {recursive: true, force: true})
await mkdir(path.join(work, 'inbox'), {recursive: true})
// nginx workers run as an unprivileged user: they must be able to write the WebDAV directories.
for (const dir of ['dav', 'dav-tmp']) {
  await mkdir(path.join(work, dir), {recursive: true})
  spawnSync('chmod', ['0777', path.join(work, dir)])
}
spawnSync('chmod', ['a+rx', work])
const source = path.join(work, 'upload.bin')
const handle = await open(source, 'w')
const chunk = randomBytes(16 * 1024 * 1024)
for (let written = 0; written < MIB * 1024 * 1024; written += chunk.length) await handle.write(chunk, 0, Math.min(chunk.length, MIB * 1024 * 1024 - written))
await handle.close()

const bitsPort = 19_000 + Math.floor(Math.random() * 500)
const serve = spawn(process.execPath, [path.join(root, 'bin', 'run.js'), 'serve', '--state-dir', path.join(work, 'server'), '--upload', `${path.join(work, 'inbox')}=/uploads`, '--upload-overwrite', '--listen', `127.0.0.1:${bitsPort}`, '--log-level', 'error'], {stdio: 'ignore'})
let nginx: ReturnType<typeof spawn> | undefined
const davPort = bitsPort + 600
if (spawnSync('sh', ['-c', 'command -v nginx']).status === 0) {
  const conf = path.join(work, 'nginx.conf')
  await writeFile(conf, `daemon off; worker_processes 2; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${work}/dav-tmp; proxy_temp_path ${work}/p; fastcgi_temp_path ${work}/f; uwsgi_temp_path ${work}/u; scgi_temp_path ${work}/s;
  server { listen 127.0.0.1:${davPort}; root ${work}/dav; location / { dav_methods PUT; client_max_body_size 0; } } }\n`)
  nginx = spawn('nginx', ['-c', conf], {stdio: 'ignore'})
}
await new Promise((resolve) => setTimeout(resolve, 1500))
try {
  const ours: number[] = []
  const theirs: number[] = []
  const theirsDurable: number[] = []
  const davFile = path.join(work, 'dav', 'upload.bin')
  for (let i = 0; i < RUNS; i++) {
    await rm(path.join(work, 'client'), {recursive: true, force: true})
    ours.push(wall([process.execPath, path.join(root, 'bin', 'run.js'), 'transfer', '--upload', source, `http://127.0.0.1:${bitsPort}/uploads/upload.bin`, '--state-dir', path.join(work, 'client')]))
    if (!nginx) continue
    theirs.push(wall(['curl', '-fsS', '-T', source, `http://127.0.0.1:${davPort}/upload.bin`]))
    // The BITS server syncs each fragment before acknowledging it; nginx leaves the file in the page cache.
    theirsDurable.push(wall(['sh', '-c', `curl -fsS -T '${source}' 'http://127.0.0.1:${davPort}/upload.bin' && sync -d '${davFile}'`]))
  }
  const line = `upload ${MIB} MiB: bits ${median(ours).toFixed(3)}s`
  const ratio = (reference: number[]) => `${median(reference).toFixed(3)}s | wall ratio ${(median(ours) / median(reference)).toFixed(2)}x`
  console.log(nginx ? `${line} | curl -T to nginx WebDAV ${ratio(theirs)} | then sync -d ${ratio(theirsDurable)}` : `${line} (install nginx for the comparison)`)
  if (SPARSE_GIB > 0) {
    // Memory stays flat whatever the size: a sparse file costs no disk to read, only to land.
    const sparse = path.join(work, 'sparse.bin')
    const sparseHandle = await open(sparse, 'w')
    await sparseHandle.truncate(SPARSE_GIB * 1024 ** 3)
    await sparseHandle.close()
    await rm(path.join(work, 'client'), {recursive: true, force: true})
    const result = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, path.join(root, 'bin', 'run.js'), 'transfer', '--upload', sparse, `http://127.0.0.1:${bitsPort}/uploads/sparse.bin`, '--state-dir', path.join(work, 'client')], {encoding: 'utf8', env: {...process.env, BITS_NO_DAEMON: '1'}})
    const [seconds, rss] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
    console.log(`upload of a ${SPARSE_GIB} GiB sparse file: ${result.status === 0 ? 'ok' : `failed (${result.status})`} in ${seconds}s, peak RSS ${(rss! / 1024).toFixed(0)} MiB`)
    await rm(sparse, {force: true})
    await rm(path.join(work, 'inbox', 'sparse.bin'), {force: true})
  }
} finally {
  serve.kill('SIGINT')
  nginx?.kill('SIGQUIT')
  await rm(source, {force: true})
}
