import {readFile} from 'node:fs/promises'
import path from 'node:path'
import type {LibContext} from '../context.js'
import {BitsError} from '../errors.js'
import type {DaemonService} from '../server/daemon.js'
import {UploadUsers} from './upload-users.js'
import {startUploadServer, type UploadMount, type UploadServerSettings} from './upload-server.js'

export interface UploadServiceOptions {
  /** `DIR[=URLPATH]` as given to `bits serve --upload`. */
  uploads: string[]
  listen: string
  tlsCert?: string
  tlsKey?: string
  maxUploadSize?: number
  allowOverwrite?: boolean
  notifyUrl?: string
  notifyType?: 'reference' | 'value'
  hostId?: string
  /** Users file (`bits upload-user`): uploads need Basic credentials. */
  usersFile?: string
}

/** Parses `DIR[=URLPATH]`; the URL path defaults to `/` + the directory's name. */
export function parseUploadMount(text: string, cwd: string): UploadMount {
  const [dir, urlPath] = text.split('=') as [string, string | undefined]
  if (!dir) throw new BitsError('USAGE_INVALID_ARG', `--upload ${text} names no directory`, {hint: 'e.g. --upload ./inbox=/uploads'})
  const full = path.resolve(cwd, dir)
  const prefix = urlPath ?? `/${path.basename(full)}`
  if (!prefix.startsWith('/')) throw new BitsError('USAGE_INVALID_ARG', `URL path ${prefix} must start with /`, {hint: 'e.g. --upload ./inbox=/uploads'})
  return {dir: full, urlPath: prefix.replace(/\/+$/, '') || '/'}
}

/** The upload endpoint as a service of `bits serve`. */
export async function startUploadService(ctx: LibContext, options: UploadServiceOptions): Promise<DaemonService & {address: {host: string; port: number}}> {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new BitsError('USAGE_INVALID_ARG', '--tls-cert and --tls-key go together', {hint: 'Give both, or neither for plain HTTP'})
  }
  const settings: UploadServerSettings = {
    mounts: options.uploads.map((text) => parseUploadMount(text, ctx.cwd)),
    maxUploadSize: options.maxUploadSize,
    allowOverwrite: options.allowOverwrite,
    hostId: options.hostId,
    ...(options.usersFile ? {users: await UploadUsers.load(path.resolve(ctx.cwd, options.usersFile))} : {}),
    ...(options.notifyUrl ? {notification: {url: options.notifyUrl, type: options.notifyType ?? 'reference'}} : {}),
  }
  const tls = options.tlsCert ? {cert: await readFile(path.resolve(ctx.cwd, options.tlsCert)), key: await readFile(path.resolve(ctx.cwd, options.tlsKey!))} : undefined
  const server = await startUploadServer(ctx, {...settings, listen: options.listen, tls})
  ctx.logger.info('upload', `accepting BITS uploads on ${tls ? 'https' : 'http'}://${options.listen} for ${settings.mounts.map((m) => `${m.urlPath} -> ${m.dir}`).join(', ')}`)
  return {name: 'upload', address: server.address, close: server.close, destroy: server.destroy}
}
