import {createHash, webcrypto, X509Certificate} from 'node:crypto'
import {mkdir, readFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode} from '../errors.js'
import {writeFileAtomic} from '../state/atomic-write.js'
import {withLock} from '../state/lock.js'
import {StateLayout} from '../state/state-dir.js'
import {loadX509} from '../x509.js'

/**
 * A peer's identity: a key pair and a self-signed certificate usable for both TLS server and
 * client authentication, since peers authenticate each other in both directions (the portable
 * stand-in for [MS-BPAU]).
 */
export interface PeerIdentity {
  certPem: string
  keyPem: string
  /** SHA-256 of the certificate's DER, as `AA:BB:…`, the form `peers trust add` accepts. */
  fingerprint: string
  subject: string
  validTo: string
}

/** A certificate this peer trusts, as stored in `peers/trusted.json`. */
export interface TrustedPeer {
  fingerprint: string
  subject: string | null
  addedAt: string
  source: 'added' | 'paired'
  /** The certificate itself when it was given (a fingerprint alone trusts without it). */
  certPem: string | null
}

/** The trust table holds at most this many entries; the oldest go first ([MS-BPAU] does the same). */
export const MAX_TRUSTED = 100

const ALGORITHM = {name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256'} as const

function peersDir(ctx: LibContext): string {
  return path.join(ctx.stateDir, StateLayout.peers)
}

/** `AA:BB:…` upper case, from a certificate or from what the user typed. */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.replace(/^sha256[:/=]/i, '').replace(/[:\s]/g, '').toUpperCase()
  return /^[0-9A-F]{64}$/.test(hex) ? hex.match(/.{2}/g)!.join(':') : undefined
}

export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256
}


function pem(label: string, der: ArrayBuffer): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`
}

async function readIdentity(ctx: LibContext): Promise<PeerIdentity | undefined> {
  try {
    const certPem = await readFile(path.join(peersDir(ctx), 'identity.crt'), 'utf8')
    const keyPem = await readFile(path.join(peersDir(ctx), 'identity.key'), 'utf8')
    const cert = new X509Certificate(certPem)
    return {certPem, keyPem, fingerprint: cert.fingerprint256, subject: cert.subject, validTo: new Date(cert.validTo).toISOString()}
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw new BitsError('STATE_CORRUPT', `The peer identity in ${peersDir(ctx)} is unreadable: ${(err as Error).message}`, {hint: 'Move identity.crt and identity.key aside; bits peers identity makes a new one'})
  }
}

/**
 * The peer identity of this state directory, created once: an ECDSA P-256 key (0600) and a
 * self-signed certificate for ten years with the serverAuth and clientAuth extended key usages.
 */
export async function ensureIdentity(ctx: LibContext, options: {name?: string} = {}): Promise<PeerIdentity & {created: boolean}> {
  await mkdir(peersDir(ctx), {recursive: true, mode: 0o700})
  return withLock(path.join(peersDir(ctx), 'identity.lock'), async () => {
    const existing = await readIdentity(ctx)
    if (existing) return {...existing, created: false}
    const lib = await loadX509()
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
    const now = ctx.now()
    const name = options.name ?? hostname()
    const cert = await lib.X509CertificateGenerator.createSelfSigned({
      serialNumber: createHash('sha256').update(`${name}${now.toISOString()}${Math.random()}`).digest('hex').slice(0, 16),
      name: `CN=${name.replace(/[,=+<>#;\\"]/g, '_')}, O=openbits peer`,
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter: new Date(now.getTime() + 10 * 365 * 86_400_000),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature | lib.KeyUsageFlags.keyAgreement, true),
        new lib.ExtendedKeyUsageExtension([lib.ExtendedKeyUsage.serverAuth, lib.ExtendedKeyUsage.clientAuth]),
        new lib.SubjectAlternativeNameExtension([{type: 'dns', value: name}]),
      ],
    })
    const certPem = cert.toString('pem') + '\n'
    const keyPem = pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
    await writeFileAtomic(path.join(peersDir(ctx), 'identity.key'), keyPem, {mode: 0o600})
    await writeFileAtomic(path.join(peersDir(ctx), 'identity.crt'), certPem, {mode: 0o644})
    const created = (await readIdentity(ctx))!
    return {...created, created: true}
  })
}

function trustFile(ctx: LibContext): string {
  return path.join(peersDir(ctx), 'trusted.json')
}

export async function listTrusted(ctx: LibContext): Promise<TrustedPeer[]> {
  try {
    return JSON.parse(await readFile(trustFile(ctx), 'utf8')) as TrustedPeer[]
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw new BitsError('STATE_CORRUPT', `Trust table ${trustFile(ctx)} is unreadable: ${(err as Error).message}`, {hint: 'Fix or delete the file, then add the trusted peers again'})
  }
}

async function updateTrusted<T>(ctx: LibContext, change: (entries: TrustedPeer[]) => T): Promise<T> {
  await mkdir(peersDir(ctx), {recursive: true, mode: 0o700})
  return withLock(`${trustFile(ctx)}.lock`, async () => {
    const entries = await listTrusted(ctx)
    const result = change(entries)
    await writeFileAtomic(trustFile(ctx), JSON.stringify(entries, null, 2))
    return result
  })
}

/** A paired entry may push out the oldest only when that one is older than this ([MS-BPAU]'s guard). */
export const PAIRED_EVICTION_MIN_AGE_MS = 60_000

/**
 * Trusts a peer by its certificate file or its SHA-256 fingerprint. The table keeps at most
 * MAX_TRUSTED entries; adding one more drops the oldest. Pairing (source 'paired') is guarded as
 * [MS-BPAU] guards its table: when the table is full it drops the oldest entry only if that entry
 * is over a minute old, and otherwise refuses with PEER_TRUST_FULL, so that a flood of pairings
 * cannot flush out the peers trusted before.
 */
export async function addTrusted(ctx: LibContext, certOrFingerprint: string, source: TrustedPeer['source'] = 'added'): Promise<{added: TrustedPeer; evicted: TrustedPeer[]}> {
  let entry: TrustedPeer
  const fingerprint = normalizeFingerprint(certOrFingerprint)
  if (fingerprint) {
    entry = {fingerprint, subject: null, addedAt: ctx.now().toISOString(), source, certPem: null}
  } else {
    let certPem: string
    try {
      certPem = certOrFingerprint.includes('-----BEGIN CERTIFICATE-----') ? certOrFingerprint : await readFile(path.resolve(ctx.cwd, certOrFingerprint), 'utf8')
      const cert = new X509Certificate(certPem)
      entry = {fingerprint: cert.fingerprint256, subject: cert.subject, addedAt: ctx.now().toISOString(), source, certPem}
    } catch (err) {
      throw new BitsError('USAGE_INVALID_ARG', `"${certOrFingerprint}" is neither a readable PEM certificate nor a SHA-256 fingerprint`, {cause: err, hint: 'Give the peer certificate file (bits peers identity on that machine shows it) or its fingerprint AA:BB:…'})
    }
  }
  return updateTrusted(ctx, (entries) => {
    const index = entries.findIndex((existing) => existing.fingerprint === entry.fingerprint)
    if (index >= 0) entries.splice(index, 1)
    // Throwing here leaves the file as it was: updateTrusted writes only after the change returns.
    if (source === 'paired') {
      const full = trustTableFull(ctx, entries)
      if (full) throw full
    }
    entries.push(entry)
    const evicted = entries.length > MAX_TRUSTED ? entries.splice(0, entries.length - MAX_TRUSTED) : []
    return {added: entry, evicted}
  })
}

/** PEER_TRUST_FULL when one more paired entry cannot push out the oldest (full, and the oldest under a minute old). */
function trustTableFull(ctx: LibContext, entries: TrustedPeer[]): BitsError | undefined {
  const oldest = entries[0]
  if (entries.length < MAX_TRUSTED || !oldest || ctx.now().getTime() - Date.parse(oldest.addedAt) >= PAIRED_EVICTION_MIN_AGE_MS) return undefined
  return new BitsError('PEER_TRUST_FULL', `The trust table holds ${MAX_TRUSTED} peers and its oldest was added less than a minute ago`, {hint: 'Try again in a minute, or remove peers with bits peers trust remove'})
}

/** Whether pairing could trust this certificate now: it is trusted already, or the table has room. */
export async function pairingRoomFor(ctx: LibContext, fingerprint: string): Promise<BitsError | undefined> {
  const entries = await listTrusted(ctx)
  return entries.some((entry) => entry.fingerprint === fingerprint) ? undefined : trustTableFull(ctx, entries)
}

export async function removeTrusted(ctx: LibContext, fingerprintText: string): Promise<TrustedPeer> {
  const fingerprint = normalizeFingerprint(fingerprintText)
  if (!fingerprint) throw new BitsError('USAGE_INVALID_ARG', `"${fingerprintText}" is not a SHA-256 fingerprint`, {hint: 'Copy it from bits peers trust list'})
  return updateTrusted(ctx, (entries) => {
    const index = entries.findIndex((entry) => entry.fingerprint === fingerprint)
    if (index < 0) throw new BitsError('PEER_UNTRUSTED', `No trusted peer has the fingerprint ${fingerprint}`, {hint: 'List them with bits peers trust list'})
    return entries.splice(index, 1)[0]!
  })
}

function caFile(ctx: LibContext): string {
  return path.join(peersDir(ctx), 'trust-ca.pem')
}

/** The optional CA bundle: peers whose certificate one of these CAs issued are trusted too. */
export async function trustedCas(ctx: LibContext): Promise<X509Certificate[]> {
  const text = await readFile(caFile(ctx), 'utf8').catch(() => '')
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block))
}

/** Sets (a PEM file) or clears (null) the CA bundle of the trust store. */
export async function setTrustedCas(ctx: LibContext, file: string | null): Promise<{cas: string[]}> {
  await mkdir(peersDir(ctx), {recursive: true, mode: 0o700})
  if (file === null) {
    await writeFileAtomic(caFile(ctx), '')
    return {cas: []}
  }
  const text = await readFile(path.resolve(ctx.cwd, file), 'utf8').catch((err: unknown) => {
    throw new BitsError('FILE_NOT_FOUND', `Cannot read the CA bundle ${file} (${errnoCode(err)})`, {hint: 'Give a PEM file of CA certificates'})
  })
  const cas = (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block))
  if (cas.length === 0) throw new BitsError('USAGE_INVALID_ARG', `${file} holds no PEM certificate`, {hint: 'Give a PEM file of CA certificates'})
  await writeFileAtomic(caFile(ctx), text)
  return {cas: cas.map((ca) => ca.subject.replace(/\n/g, ', '))}
}

/** True when a presented certificate is trusted: its fingerprint is in the table, or a bundle CA issued it. */
export async function isTrusted(ctx: LibContext, cert: X509Certificate): Promise<boolean> {
  if ((await listTrusted(ctx)).some((entry) => entry.fingerprint === cert.fingerprint256)) return true
  return (await trustedCas(ctx)).some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))
}
