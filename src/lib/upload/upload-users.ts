import {randomBytes, scrypt, timingSafeEqual} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {promisify} from 'node:util'
import {BitsError, errnoCode} from '../errors.js'
import {writeFileAtomic} from '../state/atomic-write.js'

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, length: number, options: {N: number}) => Promise<Buffer>
const COST = 16_384

/** One line of a users file: `name:scrypt:N:salt:hash` (base64), never the password itself. */
export async function hashPassword(name: string, password: string): Promise<string> {
  if (!/^[^:\s]+$/.test(name)) throw new BitsError('USAGE_INVALID_ARG', `User name "${name}" may not contain ":" or spaces`, {hint: 'Pick another name'})
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, 32, {N: COST})
  return `${name}:scrypt:${COST}:${salt.toString('base64')}:${hash.toString('base64')}`
}

/** The users of an upload endpoint, read from a users file. */
export class UploadUsers {
  readonly #entries = new Map<string, {cost: number; salt: Buffer; hash: Buffer}>()

  static async load(file: string): Promise<UploadUsers> {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      throw new BitsError('FILE_NOT_FOUND', `Cannot read the users file ${file} (${errnoCode(err)})`, {hint: 'Create it with bits upload-user NAME --users-file FILE'})
    }
    const users = new UploadUsers()
    text.split(/\r?\n/).forEach((line, index) => {
      if (!line.trim() || line.startsWith('#')) return
      const [name, kind, cost, salt, hash] = line.split(':')
      if (kind !== 'scrypt' || !name || !cost || !salt || !hash) throw new BitsError('USAGE_INVALID_ARG', `${file}:${index + 1} is not name:scrypt:N:salt:hash`, {hint: 'Recreate the line with bits upload-user'})
      users.#entries.set(name, {cost: Number(cost), salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64')})
    })
    return users
  }

  /** Checks a Basic Authorization header; constant-time on the hash. */
  async verify(authorization: string | undefined): Promise<string | undefined> {
    const match = /^Basic\s+(\S+)$/i.exec(authorization ?? '')
    if (!match) return undefined
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    const name = decoded.slice(0, colon)
    const entry = colon > 0 ? this.#entries.get(name) : undefined
    if (!entry) return undefined
    const hash = await scryptAsync(decoded.slice(colon + 1), entry.salt, entry.hash.length, {N: entry.cost})
    return timingSafeEqual(hash, entry.hash) ? name : undefined
  }
}

/** Adds or replaces a user in a users file (mode 0600). */
export async function setUploadUser(file: string, name: string, password: string): Promise<{file: string; user: string; replaced: boolean}> {
  const existing = await readFile(file, 'utf8').catch(() => '')
  const lines = existing.split(/\r?\n/).filter((line) => line.trim() !== '')
  const kept = lines.filter((line) => !line.startsWith(`${name}:`))
  kept.push(await hashPassword(name, password))
  await writeFileAtomic(file, kept.join('\n') + '\n', {mode: 0o600})
  return {file, user: name, replaced: kept.length === lines.length}
}
