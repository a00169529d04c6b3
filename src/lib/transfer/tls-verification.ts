import {X509Certificate} from 'node:crypto'
import {rootCertificates, type PeerCertificate, type TLSSocket} from 'node:tls'
import {HRESULT} from '../errors.js'
import {SecurityFlag} from '../jobs/job.js'
import {TransferError} from './transfer-error.js'

/** The classes of certificate error BITS lets a job ignore, one flag each. */
export type CertificateProblem = 'CN_INVALID' | 'DATE_INVALID' | 'UNKNOWN_CA' | 'WRONG_USAGE'

const IGNORE_FLAG: Record<CertificateProblem, number> = {
  CN_INVALID: SecurityFlag.IGNORE_CERT_CN_INVALID,
  DATE_INVALID: SecurityFlag.IGNORE_CERT_DATE_INVALID,
  UNKNOWN_CA: SecurityFlag.IGNORE_UNKNOWN_CA,
  WRONG_USAGE: SecurityFlag.IGNORE_CERT_WRONG_USAGE,
}

const PROBLEM_ERRORS: Record<CertificateProblem, {hresult: number; what: string}> = {
  CN_INVALID: {hresult: HRESULT.WINHTTP_SECURE_CERT_CN_INVALID, what: 'is for another host name'},
  DATE_INVALID: {hresult: HRESULT.WINHTTP_SECURE_CERT_DATE_INVALID, what: 'is expired or not yet valid'},
  UNKNOWN_CA: {hresult: HRESULT.WINHTTP_SECURE_INVALID_CA, what: 'is issued by an unknown certification authority'},
  WRONG_USAGE: {hresult: HRESULT.WINHTTP_SECURE_CERT_WRONG_USAGE, what: 'is not meant for server authentication'},
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0'

/** Flags that need openbits to verify certificates itself instead of Node's all-or-nothing check. */
export const IGNORE_FLAGS_MASK = SecurityFlag.IGNORE_CERT_CN_INVALID | SecurityFlag.IGNORE_CERT_DATE_INVALID | SecurityFlag.IGNORE_UNKNOWN_CA | SecurityFlag.IGNORE_CERT_WRONG_USAGE

let systemRoots: X509Certificate[] | undefined

/** Node's bundled roots, parsed once. */
function bundledRoots(): X509Certificate[] {
  systemRoots ??= rootCertificates.map((pem) => new X509Certificate(pem))
  return systemRoots
}

/** Splits a PEM bundle into certificates. */
export function parsePemBundle(pem: string | Buffer): X509Certificate[] {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  return blocks.map((block) => new X509Certificate(block))
}

/** The certificates the server presented, leaf first. */
export function presentedChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = []
  const seen = new Set<string>()
  for (let cert: PeerCertificate | undefined = socket.getPeerCertificate(true); cert?.raw && !seen.has(cert.fingerprint256); cert = (cert as {issuerCertificate?: PeerCertificate}).issuerCertificate) {
    seen.add(cert.fingerprint256)
    chain.push(new X509Certificate(cert.raw))
  }
  return chain
}

/** The certificate that issued `cert`, from the presented chain or the trusted roots. */
export function findIssuer(cert: X509Certificate, chain: X509Certificate[], extraTrust: X509Certificate[]): X509Certificate | undefined {
  return [...chain, ...extraTrust, ...bundledRoots()].find((candidate) => candidate.fingerprint256 !== cert.fingerprint256 && cert.checkIssued(candidate) && cert.verify(candidate.publicKey))
}

/**
 * Every class of problem with the server's certificate, each checked on its own so that a flag
 * ignores exactly its class: the chain to a trusted root (signatures, not dates), the validity
 * dates of the chain, the host name, and the serverAuth extended key usage of the leaf.
 */
export function certificateProblems(chain: X509Certificate[], hostname: string, extraTrust: X509Certificate[], now = new Date()): CertificateProblem[] {
  const problems: CertificateProblem[] = []
  const leaf = chain[0]
  if (!leaf) return ['UNKNOWN_CA']
  const trusted = [...bundledRoots(), ...extraTrust]
  const isTrusted = (cert: X509Certificate) => trusted.some((root) => root.fingerprint256 === cert.fingerprint256)
  const issuerOf = (cert: X509Certificate) => [...chain, ...trusted].find((candidate) => candidate !== cert && cert.checkIssued(candidate) && cert.verify(candidate.publicKey))
  const path: X509Certificate[] = [leaf]
  let anchored = isTrusted(leaf)
  for (let current = leaf; !anchored && path.length < 10; ) {
    const issuer = issuerOf(current)
    if (!issuer || path.includes(issuer)) break
    path.push(issuer)
    anchored = isTrusted(issuer)
    current = issuer
  }
  if (!anchored) problems.push('UNKNOWN_CA')
  if (path.some((cert) => now < new Date(cert.validFrom) || now > new Date(cert.validTo))) problems.push('DATE_INVALID')
  const host = hostname.replace(/^\[|\]$/g, '')
  if (!(leaf.checkHost(host) ?? leaf.checkIP(host))) problems.push('CN_INVALID')
  const usages = leaf.keyUsage
  if (usages && !usages.includes(SERVER_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) problems.push('WRONG_USAGE')
  return problems
}

/**
 * Checks a TLS connection made with Node's verification off (because the job ignores some class
 * of error): fails with the BITS/WinHTTP code of the first problem the job's flags do not cover.
 */
export function verifyServerCertificate(socket: TLSSocket, hostname: string, securityFlags: number, extraTrust: X509Certificate[]): void {
  const problems = certificateProblems(presentedChain(socket), hostname, extraTrust)
  const fatal = problems.find((problem) => !(securityFlags & IGNORE_FLAG[problem]))
  if (!fatal) return
  const {hresult, what} = PROBLEM_ERRORS[fatal]
  throw new TransferError('TRANSFER_TLS', `The certificate of ${hostname} ${what}`, {
    hresult,
    context: 'GENERAL_TRANSPORT',
    transient: false,
    hint: `Fix the server's certificate, trust its CA with bits set --ca-file, or (knowingly) ignore this class with --security-flags`,
  })
}
