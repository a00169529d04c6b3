import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {createServer} from 'node:http'
import path from 'node:path'

/**
 * A small static file server with HEAD, byte ranges and validators: the origin of the
 * benchmarks when nginx is not installed. Usage: tsx bench/static-server.ts ROOT PORT
 */
export function startStaticServer(root: string, port: number, host = '127.0.0.1') {
  const server = createServer(async (req, res) => {
    const file = path.join(root, path.normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^(\.\.[/\\])+/, ''))
    const info = await stat(file).catch(() => undefined)
    if (!info?.isFile()) return void res.writeHead(404).end()
    const headers: Record<string, string | number> = {'accept-ranges': 'bytes', 'last-modified': info.mtime.toUTCString(), etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`}
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    let start = 0
    let end = info.size - 1
    let status = 200
    if (range) {
      start = Number(range[1])
      end = range[2] ? Math.min(Number(range[2]), end) : end
      if (start > end) return void res.writeHead(416, {'content-range': `bytes */${info.size}`}).end()
      status = 206
      headers['content-range'] = `bytes ${start}-${end}/${info.size}`
    }
    headers['content-length'] = end - start + 1
    res.writeHead(status, headers)
    if (req.method === 'HEAD') return void res.end()
    createReadStream(file, {start, end, highWaterMark: 256 * 1024}).pipe(res)
  })
  return new Promise<typeof server>((resolve) => server.listen(port, host, () => resolve(server)))
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  await startStaticServer(process.argv[2] ?? '.', Number(process.argv[3] ?? 8080))
}
