import {readFile} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode} from '../errors.js'
import type {JobView} from './job.js'
import {addFiles, parseFileSet} from './job-service.js'

/** `addfileset`: reads the list (a file, or `-` for `stdin`) whole, then adds all pairs or none. */
export async function addFileSet(ctx: LibContext, ref: string, listFile: string, stdin: Readable): Promise<JobView> {
  let text: string
  if (listFile === '-') {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer))
    text = Buffer.concat(chunks).toString('utf8')
  } else {
    const file = path.resolve(ctx.cwd, listFile)
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      throw new BitsError('FILE_NOT_FOUND', `Cannot read list file ${file} (${errnoCode(err) ?? String(err)})`, {cause: err, hint: 'Check the path of the list file'})
    }
  }
  return addFiles(ctx, ref, parseFileSet(text, listFile === '-' ? 'stdin' : listFile))
}
