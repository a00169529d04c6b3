import type {IncomingMessage} from 'node:http'

/**
 * A request body of at most `limit` bytes, or undefined when it is (or says it is) larger; the
 * excess is drained, never kept.
 */
export async function readBoundedBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) return undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size <= limit) chunks.push(chunk as Buffer)
  }
  return size <= limit ? Buffer.concat(chunks) : undefined
}
