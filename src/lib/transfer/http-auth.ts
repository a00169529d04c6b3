import {createHash, randomBytes} from 'node:crypto'
import type {Credential} from '../jobs/job.js'

/** One challenge of a WWW-Authenticate or Proxy-Authenticate header. */
export interface AuthChallenge {
  scheme: string
  params: Record<string, string>
}

/**
 * Parses challenge headers (RFC 9110 §11.6.1): several challenges may share one header, and
 * parameters may be tokens or quoted strings containing commas.
 */
export function parseChallenges(values: string | string[] | undefined): AuthChallenge[] {
  const challenges: AuthChallenge[] = []
  for (const value of Array.isArray(values) ? values : values ? [values] : []) {
    const pattern = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*,?/gy
    let current: AuthChallenge | undefined
    for (let match = pattern.exec(value); match && match[0] !== ''; match = pattern.exec(value)) {
      const [, name, raw] = match
      if (raw === undefined) {
        current = {scheme: name!.toLowerCase(), params: {}}
        challenges.push(current)
      } else if (current) {
        current.params[name!.toLowerCase()] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw
      }
    }
  }
  return challenges
}

export function basicAuthorization(credential: Pick<Credential, 'username' | 'password'>): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
}

const DIGEST_HASHES: Record<string, string> = {md5: 'md5', 'md5-sess': 'md5', 'sha-256': 'sha256', 'sha-256-sess': 'sha256'}

/** True when openbits can answer this Digest challenge (MD5 or SHA-256, qop auth or none). */
export function isSupportedDigest(challenge: AuthChallenge): boolean {
  const algorithm = (challenge.params.algorithm ?? 'MD5').toLowerCase()
  const qops = challenge.params.qop?.split(',').map((q) => q.trim().toLowerCase())
  return challenge.scheme === 'digest' && Boolean(challenge.params.nonce) && algorithm in DIGEST_HASHES && (!qops || qops.includes('auth'))
}

/**
 * Answers Digest challenges (RFC 7616): MD5 and SHA-256 (and their -sess forms), qop=auth,
 * counting each use of a nonce so that the server can reuse it without a new challenge.
 */
export class DigestAuthenticator {
  readonly #credential: Pick<Credential, 'username' | 'password'>
  readonly #challenge: AuthChallenge
  #count = 0
  readonly #cnonce = randomBytes(8).toString('hex')

  constructor(credential: Pick<Credential, 'username' | 'password'>, challenge: AuthChallenge) {
    this.#credential = credential
    this.#challenge = challenge
  }

  /** The Authorization value for `method` on `uri` (path and query). */
  authorization(method: string, uri: string): string {
    const {realm = '', nonce = '', opaque, qop} = this.#challenge.params
    const algorithmName = this.#challenge.params.algorithm ?? 'MD5'
    const hashName = DIGEST_HASHES[algorithmName.toLowerCase()]!
    const hash = (text: string) => createHash(hashName).update(text).digest('hex')
    this.#count += 1
    const nc = this.#count.toString(16).padStart(8, '0')
    let ha1 = hash(`${this.#credential.username}:${realm}:${this.#credential.password}`)
    if (algorithmName.toLowerCase().endsWith('-sess')) ha1 = hash(`${ha1}:${nonce}:${this.#cnonce}`)
    const ha2 = hash(`${method}:${uri}`)
    const useQop = qop !== undefined
    const response = useQop ? hash(`${ha1}:${nonce}:${nc}:${this.#cnonce}:auth:${ha2}`) : hash(`${ha1}:${nonce}:${ha2}`)
    const quote = (text: string) => `"${text.replace(/["\\]/g, '\\$&')}"`
    const parts = [`username=${quote(this.#credential.username)}`, `realm=${quote(realm)}`, `nonce=${quote(nonce)}`, `uri=${quote(uri)}`, `algorithm=${algorithmName}`, `response=${quote(response)}`]
    if (useQop) parts.push('qop=auth', `nc=${nc}`, `cnonce=${quote(this.#cnonce)}`)
    if (opaque !== undefined) parts.push(`opaque=${quote(opaque)}`)
    return `Digest ${parts.join(', ')}`
  }
}

/**
 * Picks how to answer a 401/407 with the job's credentials for that target: Digest when offered
 * and a DIGEST credential exists, else Basic. Undefined when nothing usable is configured.
 */
export function chooseAnswer(challenges: AuthChallenge[], credentials: Credential[], target: Credential['target']): {header: (method: string, uri: string) => string} | undefined {
  const ofTarget = credentials.filter((credential) => credential.target === target)
  const digestCredential = ofTarget.find((credential) => credential.scheme === 'DIGEST')
  const digest = challenges.find(isSupportedDigest)
  if (digestCredential && digest) {
    const authenticator = new DigestAuthenticator(digestCredential, digest)
    return {header: (method, uri) => authenticator.authorization(method, uri)}
  }
  const basicCredential = ofTarget.find((credential) => credential.scheme === 'BASIC')
  if (basicCredential && challenges.some((challenge) => challenge.scheme === 'basic')) {
    const value = basicAuthorization(basicCredential)
    return {header: () => value}
  }
  return undefined
}
