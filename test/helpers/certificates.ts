import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import {webcrypto} from 'node:crypto'

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

const ALGORITHM = {name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256'} as const

export interface Issued {
  cert: string
  key: string
  /** Hexadecimal serial number. */
  serial: string
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`
}

/** A test certification authority that issues server certificates with chosen defects. */
export class TestCa {
  private constructor(
    readonly cert: string,
    private readonly caCert: x509.X509Certificate,
    private readonly keys: CryptoKeyPair,
  ) {}

  static async create(name = 'openbits test CA'): Promise<TestCa> {
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 10 * 86_400_000),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
    })
    return new TestCa(caCert.toString('pem'), caCert, keys)
  }

  /** A certificate; by default a server certificate for 127.0.0.1 and localhost, current. */
  async issue(options: {hosts?: {ip?: string; dns?: string}[]; expired?: boolean; usages?: string[]; crlUrl?: string} = {}): Promise<Issued> {
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
    const now = Date.now()
    const hosts = options.hosts ?? [{ip: '127.0.0.1'}, {dns: 'localhost'}]
    const serial = '1' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex')
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: 'CN=openbits test server',
      issuer: this.caCert.subject,
      notBefore: new Date(options.expired ? now - 10 * 86_400_000 : now - 3_600_000),
      notAfter: new Date(options.expired ? now - 86_400_000 : now + 5 * 86_400_000),
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.SubjectAlternativeNameExtension(hosts.map((h) => (h.ip ? {type: 'ip', value: h.ip} : {type: 'dns', value: h.dns!}))),
        new x509.ExtendedKeyUsageExtension(options.usages ?? [x509.ExtendedKeyUsage.serverAuth]),
        ...(options.crlUrl ? [new x509.CRLDistributionPointsExtension([options.crlUrl])] : []),
      ],
    })
    return {cert: `${cert.toString('pem')}\n${this.cert}`, key: await pemKey(keys.privateKey), serial}
  }

  /** A CRL of this CA (DER) revoking the given serials, valid for a day. */
  async crl(revoked: string[]): Promise<Buffer> {
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.caCert.subject,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries: revoked.map((serialNumber) => ({serialNumber, revocationDate: new Date(Date.now() - 60_000)})),
      signingKey: this.keys.privateKey,
      signingAlgorithm: ALGORITHM,
    })
    return Buffer.from(crl.rawData)
  }
}
