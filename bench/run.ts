/**
 * `npm run bench`: openbits against curl (and nginx as the origin when installed), run side by
 * side in one session, alternating, so that both see the same machine. Prints medians and
 * ratios; never part of `npm test`. Optional suites (peers, upload) run when their files exist.
 *
 * Environment: BENCH_BIG_MIB (default 1024), BENCH_RUNS (default 3), BENCH_SMALL_FILES (1000).
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, open, readFile, rm, writeFile, readdir} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const work = path.join(root, 'bench', '.work')
const BIN = path.join(root, 'bin', 'run.js')
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 1024)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 1000)

interface Sample {
  wall: number
  cpu: number
  rssKiB: number
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}

/** Runs a command under /usr/bin/time and returns wall seconds, CPU seconds and peak RSS. */
function measure(command: string[], options: {env?: NodeJS.ProcessEnv} = {}): Sample {
  const started = process.hrtime.bigint()
  const result = spawnSync('/usr/bin/time', ['-f', '%U %S %M', ...command], {encoding: 'utf8', env: {...process.env, ...options.env}, maxBuffer: 64 * 1024 * 1024})
  const wall = Number(process.hrtime.bigint() - started) / 1e9
  if (result.status !== 0) throw new Error(`${command.slice(0, 4).join(' ')} … failed (${result.status}): ${result.stderr.slice(-2000)}`)
  const [user, sys, rss] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
  return {wall, cpu: user! + sys!, rssKiB: rss!}
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

interface Row {
  name: string
  ours: Sample[]
  theirs: Sample[]
  against: string
}
const rows: Row[] = []

/** Alternates ours/theirs RUNS times, with a setup before each run of either. */
function compare(name: string, against: string, ours: () => Sample, theirs: () => Sample, runs = RUNS): void {
  const row: Row = {name, against, ours: [], theirs: []}
  for (let i = 0; i < runs; i++) {
    row.ours.push(ours())
    row.theirs.push(theirs())
  }
  rows.push(row)
  report(row)
}

function report(row: Row): void {
  const o = {wall: median(row.ours.map((s) => s.wall)), cpu: median(row.ours.map((s) => s.cpu)), rss: Math.max(...row.ours.map((s) => s.rssKiB))}
  const t = {wall: median(row.theirs.map((s) => s.wall)), cpu: median(row.theirs.map((s) => s.cpu)), rss: Math.max(...row.theirs.map((s) => s.rssKiB))}
  console.log(
    `${row.name.padEnd(44)} bits ${o.wall.toFixed(3)}s cpu ${o.cpu.toFixed(2)}s rss ${(o.rss / 1024).toFixed(0)}MiB | ${row.against} ${t.wall.toFixed(3)}s cpu ${t.cpu.toFixed(2)}s rss ${(t.rss / 1024).toFixed(0)}MiB | wall ratio ${(o.wall / t.wall).toFixed(2)}x`,
  )
}

async function startOrigin(dir: string): Promise<{base: string; stop: () => Promise<void>; kind: string}> {
  const port = 18_000 + Math.floor(Math.random() * 1000)
  if (has('nginx')) {
    const conf = path.join(work, 'nginx.conf')
    await writeFile(
      conf,
      `daemon off; worker_processes 2; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path ${work}/nginx-body; proxy_temp_path ${work}/nginx-proxy; fastcgi_temp_path ${work}/nginx-fcgi; uwsgi_temp_path ${work}/nginx-uwsgi; scgi_temp_path ${work}/nginx-scgi;
  server { listen 127.0.0.1:${port}; root ${dir}; location /dav/ { dav_methods PUT; create_full_put_path on; client_max_body_size 0; } } }\n`,
    )
    const child = spawn('nginx', ['-c', conf], {stdio: 'ignore'})
    await new Promise((resolve) => setTimeout(resolve, 500))
    return {base: `http://127.0.0.1:${port}`, kind: 'nginx', stop: async () => void child.kill('SIGQUIT')}
  }
  // A child process: the measurements block this process's event loop (spawnSync).
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'static-server.ts'), dir, String(port)], {stdio: 'ignore'})
  await new Promise((resolve) => setTimeout(resolve, 1500))
  return {base: `http://127.0.0.1:${port}`, kind: 'node static server', stop: async () => void child.kill()}
}

async function makeFiles(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'small'), {recursive: true})
  const big = path.join(dir, 'big.bin')
  if (!existsSync(big) || (await readFile(big).catch(() => Buffer.alloc(0))).length !== BIG_MIB * 1024 * 1024) {
    const handle = await open(big, 'w')
    const chunk = randomBytes(16 * 1024 * 1024)
    for (let written = 0; written < BIG_MIB * 1024 * 1024; written += chunk.length) await handle.write(chunk, 0, Math.min(chunk.length, BIG_MIB * 1024 * 1024 - written))
    await handle.close()
  }
  const existing = await readdir(path.join(dir, 'small'))
  if (existing.length !== SMALL_FILES) {
    for (let i = 0; i < SMALL_FILES; i++) await writeFile(path.join(dir, 'small', `f${i}.bin`), randomBytes(4096))
  }
}

function bits(args: string[], stateDir: string): string[] {
  return [process.execPath, BIN, ...args, '--state-dir', stateDir]
}

/** Runs a setup step with bits and returns its `--json` result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- setup reads a few known fields of --json output
function bitsJson(args: string[], stateDir: string): any {
  const [command, ...rest] = bits([...args, '--json'], stateDir)
  return JSON.parse(execFileSync(command!, rest, {encoding: 'utf8', env: {...process.env, BITS_NO_DAEMON: '1'}})).result
}

/** resume --wait against a daemon started for this run: the background path users take. */
function resumeAndServe(id: string, stateDir: string): Sample {
  const serve = bits(['serve', '--log-level', 'error'], stateDir).join(' ')
  const resume = bits(['resume', id, '--wait', '--no-daemon'], stateDir).join(' ')
  return measure(['sh', '-c', `${serve} >/dev/null & S=$!; ${resume} >/dev/null; kill -INT $S; wait $S`])
}

async function main(): Promise<void> {
  if (!existsSync(path.join(root, 'dist', 'commands'))) throw new Error('Build first: npm run build')
  if (!has('curl')) throw new Error('curl is needed for the comparison (apt-get install curl)')
  await mkdir(work, {recursive: true})
  const www = path.join(work, 'www')
  const out = path.join(work, 'out')
  await mkdir(www, {recursive: true})
  console.log(`Preparing ${BIG_MIB} MiB and ${SMALL_FILES} x 4 KiB files in ${www} ...`)
  await makeFiles(www)
  const origin = await startOrigin(www)
  console.log(`Origin: ${origin.kind} at ${origin.base}; ${RUNS} alternating runs each; medians.\n`)
  const fresh = async () => {
    await rm(out, {recursive: true, force: true})
    await mkdir(out, {recursive: true})
  }
  const state = path.join(work, 'state')
  const downloadWithBits = () => {
    execFileSync('rm', ['-rf', out, state])
    execFileSync('mkdir', ['-p', out])
    return measure(bits(['transfer', `${origin.base}/big.bin`, path.join(out, 'big.bin')], state), {env: {BITS_NO_DAEMON: '1'}})
  }
  try {
    compare(
      `download ${BIG_MIB} MiB`,
      'curl',
      downloadWithBits,
      () => {
        execFileSync('rm', ['-rf', out])
        execFileSync('mkdir', ['-p', out])
        return measure(['curl', '-sS', '-o', path.join(out, 'big.bin'), `${origin.base}/big.bin`])
      },
    )
    // bits makes the file durable (fdatasync) before it reports it transferred, as a checkpoint
    // must never claim bytes a crash could lose; curl leaves it in the page cache. Same work:
    compare(
      `download ${BIG_MIB} MiB, durable`,
      'curl; sync -d',
      downloadWithBits,
      () => {
        execFileSync('rm', ['-rf', out])
        execFileSync('mkdir', ['-p', out])
        return measure(['sh', '-c', `curl -sS -o '${path.join(out, 'big.bin')}' '${origin.base}/big.bin' && sync -d '${path.join(out, 'big.bin')}'`])
      },
    )

    const half = Math.floor((BIG_MIB * 1024 * 1024) / 2)
    compare(
      `resume ${BIG_MIB} MiB from half`,
      'curl -C -',
      () => {
        execFileSync('rm', ['-rf', out, state])
        execFileSync('mkdir', ['-p', out])
        const id = bitsJson(['create', 'resume-bench'], state).id as string
        const job = bitsJson(['addfile', id, `${origin.base}/big.bin`, path.join(out, 'big.bin')], state)
        // Synced, as a checkpoint leaves it: else the resume would pay for flushing the setup's half too.
        spawnSync('sh', ['-c', `head -c ${half} '${path.join(www, 'big.bin')}' > '${job.files[0].temporaryName}' && sync -d '${job.files[0].temporaryName}'`])
        // Record the half as checkpointed, as an interrupted transfer would have.
        const jobFile = path.join(state, 'jobs', `${id}.json`)
        const record = JSON.parse(execFileSync('cat', [jobFile], {encoding: 'utf8'}))
        record.files[0].bytesTransferred = half
        execFileSync('sh', ['-c', `cat > '${jobFile}'`], {input: JSON.stringify(record)})
        return resumeAndServe(id, state)
      },
      () => {
        execFileSync('rm', ['-rf', out])
        execFileSync('mkdir', ['-p', out])
        spawnSync('sh', ['-c', `head -c ${half} '${path.join(www, 'big.bin')}' > '${path.join(out, 'big.bin')}' && sync -d '${path.join(out, 'big.bin')}'`])
        return measure(['curl', '-sS', '-C', '-', '-o', path.join(out, 'big.bin'), `${origin.base}/big.bin`])
      },
    )

    // BITS allows 200 files a job by default (MaxFilesPerJob); the benchmark's job needs more.
    bitsJson(['settings', 'maxFilesPerJob', String(Math.max(200, SMALL_FILES))], state)
    const pairArgs = Array.from({length: SMALL_FILES}, (_, i) => [`${origin.base}/small/f${i}.bin`, path.join(out, `f${i}.bin`)]).flat()
    const curlArgs = Array.from({length: SMALL_FILES}, (_, i) => [`${origin.base}/small/f${i}.bin`, '-o', path.join(out, `f${i}.bin`)]).flat()
    for (const parallel of [1, 8]) {
      compare(
        `${SMALL_FILES} x 4 KiB in one job, parallel ${parallel}`,
        parallel === 1 ? 'curl sequential' : 'curl -Z --parallel-max 8',
        () => {
          execFileSync('rm', ['-rf', out, path.join(state, 'jobs')])
          execFileSync('mkdir', ['-p', out])
          return measure(bits(['transfer', '--parallel', String(parallel), '--name', 'many', ...pairArgs], state), {env: {BITS_NO_DAEMON: '1'}})
        },
        () => {
          execFileSync('rm', ['-rf', out])
          execFileSync('mkdir', ['-p', out])
          return measure(['curl', '-sS', ...(parallel > 1 ? ['-Z', '--parallel-max', String(parallel)] : []), ...curlArgs])
        },
      )
    }

    await fresh()
    const startupRuns = Math.max(RUNS, 10)
    compare('start-up: bits list', 'node -e 0', () => measure(bits(['list'], state)), () => measure([process.execPath, '-e', '0']), startupRuns)
    compare('start-up: bits --help', 'node -e 0', () => measure([process.execPath, BIN, '--help']), () => measure([process.execPath, '-e', '0']), startupRuns)

    for (const suite of ['peers.ts', 'upload.ts']) {
      const file = path.join(root, 'bench', suite)
      if (!existsSync(file)) continue
      console.log(`\n# ${suite}`)
      const result = spawnSync(process.execPath, ['--import', 'tsx', file], {stdio: 'inherit', env: {...process.env, BENCH_ORIGIN: origin.base, BENCH_WWW: www}})
      if (result.status !== 0) console.log(`${suite} failed with status ${result.status}`)
    }
  } finally {
    await origin.stop()
    await rm(out, {recursive: true, force: true})
    await rm(state, {recursive: true, force: true})
  }
  await writeFile(path.join(work, 'results.json'), JSON.stringify(rows, null, 2))
  console.log(`\nRaw samples: ${path.join(work, 'results.json')}`)
}

await main()
