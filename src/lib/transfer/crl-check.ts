import {X509Certificate as NodeCertificate} from 'node:crypto'
import {request} from 'undici'
import {HRESULT} from '../errors.js'
import {loadX509} from '../x509.js'
import {TransferError} from './transfer-error.js'

/** A parsed CRL kept until its nextUpdate (or 1 hour when it names none). */
interface CachedCrl {
  revokedSerials: Set<string>
  expiresAt: number
}

const cache = new Map<string, CachedCrl>()


function revocationFailed(message: string, cause?: unknown): TransferError {
  return new TransferError('TRANSFER_TLS', message, {
    hresult: HRESULT.WINHTTP_SECURE_CERT_REV_FAILED,
    context: 'GENERAL_TRANSPORT',
    transient: false,
    cause,
    hint: 'The CRL check (security flag 0x1) needs the CRL of the server certificate to be reachable; turn the flag off only if you accept the risk',
  })
}

async function loadCrl(url: string, issuer: NodeCertificate): Promise<CachedCrl> {
  const cached = cache.get(url)
  if (cached && cached.expiresAt > Date.now()) return cached
  const lib = await loadX509()
  let der: Buffer
  try {
    const response = await request(url, {headersTimeout: 15_000, bodyTimeout: 15_000})
    if (response.statusCode !== 200) {
      response.body.resume()
      throw new Error(`HTTP ${response.statusCode}`)
    }
    der = Buffer.from(await response.body.arrayBuffer())
  } catch (err) {
    throw revocationFailed(`Cannot fetch the CRL ${url}: ${err instanceof Error ? err.message : String(err)}`, err)
  }
  let crl: InstanceType<typeof lib.X509Crl>
  try {
    crl = new lib.X509Crl(der.toString('latin1').includes('-----BEGIN') ? der.toString() : der)
  } catch (err) {
    throw revocationFailed(`The CRL ${url} does not parse`, err)
  }
  const issuerKey = new lib.X509Certificate(issuer.raw)
  if (!(await crl.verify({publicKey: issuerKey.publicKey}))) throw revocationFailed(`The CRL ${url} is not signed by the certificate's issuer`)
  const entry: CachedCrl = {
    revokedSerials: new Set(crl.entries.map((item) => item.serialNumber.toLowerCase().replace(/^0+/, ''))),
    expiresAt: crl.nextUpdate ? crl.nextUpdate.getTime() : Date.now() + 3_600_000,
  }
  if (entry.expiresAt <= Date.now()) throw revocationFailed(`The CRL ${url} is out of date (next update ${crl.nextUpdate?.toISOString()})`)
  cache.set(url, entry)
  return entry
}

/**
 * BG_SSL_ENABLE_CRL_CHECK: fetches the CRL named by the server certificate's distribution point
 * (cached until its nextUpdate), checks it is signed by the issuer, and fails when the
 * certificate is revoked or no CRL can be had. Both failures are fatal, as in BITS.
 */
export async function checkRevocation(leaf: NodeCertificate, issuer: NodeCertificate | undefined): Promise<void> {
  const lib = await loadX509()
  const cert = new lib.X509Certificate(leaf.raw)
  const points = cert.getExtension(lib.CRLDistributionPointsExtension)
  const urls = (points?.distributionPoints ?? [])
    .flatMap((point) => point.distributionPoint?.fullName ?? [])
    .map((name) => name.uniformResourceIdentifier)
    .filter((uri): uri is string => Boolean(uri && /^https?:\/\//i.test(uri)))
  if (urls.length === 0) throw revocationFailed(`The certificate of ${leaf.subject.replace(/\n/g, ', ')} names no CRL distribution point`)
  if (!issuer) throw revocationFailed('The issuer of the server certificate is unknown, so its CRL cannot be checked')
  const crl = await loadCrl(urls[0]!, issuer)
  if (crl.revokedSerials.has(leaf.serialNumber.toLowerCase().replace(/^0+/, ''))) {
    throw new TransferError('TRANSFER_TLS', `The server certificate (serial ${leaf.serialNumber}) is revoked`, {
      hresult: HRESULT.WINHTTP_SECURE_CERT_REVOKED,
      context: 'GENERAL_TRANSPORT',
      transient: false,
      hint: 'The server must use a new certificate',
    })
  }
}
