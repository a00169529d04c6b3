import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {mkdir, readFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode} from '../errors.js'
import {writeFileAtomic} from '../state/atomic-write.js'
import {withLock} from '../state/lock.js'
import {StateLayout} from '../state/state-dir.js'

/** The scope of a machine that knows no DNS domain. */
export const OFF_DOMAIN_SCOPE = 'http://openbits.local'

let dnsDomain: string | null | undefined

/**
 * This machine's DNS domain: from its host name, USERDNSDOMAIN (Windows) or the `domain`/`search`
 * line of /etc/resolv.conf; null when none is known.
 */
export function localDnsDomain(): string | null {
  if (dnsDomain !== undefined) return dnsDomain
  const name = hostname()
  let domain: string | undefined = name.includes('.') ? name.slice(name.indexOf('.') + 1) : process.env.USERDNSDOMAIN
  if (!domain) {
    try {
      domain = /^\s*(?:domain|search)\s+([^\s#]+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'))?.[1]
    } catch {
      domain = undefined
    }
  }
  domain = domain?.replace(/\.$/, '').toLowerCase()
  dnsDomain = domain && /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(domain) ? domain : null
  return dnsDomain
}

/** The default scope: the spec's domain form `http://<dns-domain>` ([MS-BPDP] §4), or OFF_DOMAIN_SCOPE. */
export function defaultScope(): string {
  const domain = localDnsDomain()
  return domain ? `http://${domain}` : OFF_DOMAIN_SCOPE
}

/** The name a peer server advertises in msbits:Fqdn: the host name, qualified by the DNS domain when known. */
export function localFqdn(): string {
  const name = hostname()
  const domain = localDnsDomain()
  return (name.includes('.') || !domain ? name : `${name}.${domain}`).slice(0, 255)
}

/** Shorter secrets are refused: the pairing proofs must not be open to guessing. */
export const MIN_SECRET_BYTES = 16
/** A secret file larger than this is surely the wrong file. */
const MAX_SECRET_BYTES = 4096

/** The peer group of a state directory: where discovery looks, and the secret pairing proves. */
export interface PeerGroup {
  scope: string
  /** Whether the scope was set (bits peers group --scope) rather than the default. */
  scopeSet: boolean
  /** The secret's bytes, or null: pairing is off. */
  secret: Buffer | null
}

/** What `setGroup` changes; nothing given only reads. */
export interface GroupChange {
  /** Discovery scope, an absolute URI. */
  scope?: string
  /** A file whose content (less its trailing newline) is the secret. */
  secretFile?: string
  /** Makes a new random secret and returns it once. */
  generateSecret?: boolean
  /** Removes the secret: pairing is refused both ways. */
  clearSecret?: boolean
}

/** The group as shown to users: never the secret, except a just-generated one, once. */
export interface GroupView {
  scope: string
  secretSet: boolean
  /** The new secret as text, to copy to the other machines of the group (shown this once). */
  generatedSecret?: string
}

interface GroupFile {
  /** null: the default scope, worked out on each read. */
  scope: string | null
  /** Base64 of the secret bytes. */
  secret: string | null
}

function groupFile(ctx: LibContext): string {
  return path.join(ctx.stateDir, StateLayout.peers, 'group.json')
}

function corrupt(ctx: LibContext, reason: string, cause?: unknown): BitsError {
  return new BitsError('STATE_CORRUPT', `Peer group file ${groupFile(ctx)} is unreadable: ${reason}`, {
    cause,
    hint: 'Delete it, then set the group again with bits peers group --scope URL --secret-file FILE',
  })
}

function checkScope(scope: string): string {
  let url: URL | undefined
  try {
    url = new URL(scope)
  } catch {
    url = undefined
  }
  if (!url || /\s/.test(scope)) throw new BitsError('USAGE_INVALID_ARG', `"${scope}" is not an absolute URI`, {hint: `A discovery scope looks like ${OFF_DOMAIN_SCOPE} or urn:example:peers`})
  return scope
}

/** The group of this state directory: the default scope and no secret until someone sets them. */
export async function readGroup(ctx: LibContext): Promise<PeerGroup> {
  let text: string
  try {
    text = await readFile(groupFile(ctx), 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return {scope: defaultScope(), scopeSet: false, secret: null}
    throw corrupt(ctx, (err as Error).message, err)
  }
  let stored: Partial<GroupFile>
  try {
    stored = JSON.parse(text) as Partial<GroupFile>
  } catch (err) {
    throw corrupt(ctx, (err as Error).message, err)
  }
  if (typeof stored !== 'object' || stored === null || (stored.scope !== null && typeof stored.scope !== 'string')) throw corrupt(ctx, 'the scope is not text')
  if (stored.secret !== null && (typeof stored.secret !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(stored.secret))) throw corrupt(ctx, 'the secret is not base64')
  const secret = stored.secret === null ? null : Buffer.from(stored.secret, 'base64')
  if (secret && secret.length < MIN_SECRET_BYTES) throw corrupt(ctx, `the secret is shorter than ${MIN_SECRET_BYTES} bytes`)
  return {scope: stored.scope ?? defaultScope(), secret, scopeSet: stored.scope !== null}
}

async function readSecretFile(ctx: LibContext, file: string): Promise<Buffer> {
  const bytes = await readFile(path.resolve(ctx.cwd, file)).catch((err: unknown) => {
    throw new BitsError('FILE_NOT_FOUND', `Cannot read the secret file ${file} (${errnoCode(err) ?? String(err)})`, {hint: 'Give a file holding the group secret, e.g. the text bits peers group --generate-secret printed'})
  })
  let end = bytes.length
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--
  const secret = bytes.subarray(0, end)
  if (secret.length > MAX_SECRET_BYTES) throw new BitsError('USAGE_INVALID_ARG', `The secret file ${file} holds ${secret.length} bytes; a group secret is at most ${MAX_SECRET_BYTES}`, {hint: 'Check that this is the secret file'})
  if (secret.length < MIN_SECRET_BYTES) {
    throw new BitsError('USAGE_INVALID_ARG', `The secret in ${file} is ${secret.length} bytes; a group secret needs at least ${MIN_SECRET_BYTES}`, {
      hint: 'Use a longer secret, or make one with bits peers group --generate-secret and copy it to the other machines',
    })
  }
  return Buffer.from(secret)
}

/**
 * Changes the group of this state directory (`peers/group.json`, 0600) and returns it as users
 * may see it. A generated secret is 32 random bytes written as base64url text; that text, not the
 * bytes it encodes, is the secret, so a file holding it (`--secret-file`) gives the other
 * machines the same secret. With no change, only reads.
 */
export async function setGroup(ctx: LibContext, change: GroupChange = {}): Promise<GroupView> {
  const secretChanges = [change.secretFile !== undefined, change.generateSecret === true, change.clearSecret === true].filter(Boolean).length
  if (secretChanges > 1) throw new BitsError('USAGE_INVALID_ARG', 'Give only one of a secret file, a generated secret or clearing the secret', {hint: 'bits peers group --secret-file FILE | --generate-secret | --clear-secret'})
  const scope = change.scope === undefined ? undefined : checkScope(change.scope)
  const fileSecret = change.secretFile === undefined ? undefined : await readSecretFile(ctx, change.secretFile)
  const generatedSecret = change.generateSecret ? randomBytes(32).toString('base64url') : undefined
  if (scope === undefined && secretChanges === 0) {
    const group = await readGroup(ctx)
    return {scope: group.scope, secretSet: group.secret !== null}
  }
  await mkdir(path.dirname(groupFile(ctx)), {recursive: true, mode: 0o700})
  return withLock(`${groupFile(ctx)}.lock`, async () => {
    const current = await readGroup(ctx)
    const secret = generatedSecret === undefined ? (change.clearSecret ? null : (fileSecret ?? current.secret)) : Buffer.from(generatedSecret)
    const stored: GroupFile = {scope: scope ?? (current.scopeSet ? current.scope : null), secret: secret === null ? null : secret.toString('base64')}
    // The secret is a credential: the file is 0600 in a 0700 directory, like the identity key.
    await writeFileAtomic(groupFile(ctx), JSON.stringify(stored, null, 2), {mode: 0o600})
    return {scope: stored.scope ?? current.scope, secretSet: secret !== null, ...(generatedSecret === undefined ? {} : {generatedSecret})}
  })
}
