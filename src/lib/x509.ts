import {webcrypto} from 'node:crypto'

/**
 * Loads @peculiar/x509 ready to use: it needs the reflect-metadata polyfill first and Node's
 * WebCrypto as its provider. Loaded only by the features that build or parse certificates and CRLs.
 */
export async function loadX509() {
  await import('reflect-metadata')
  const lib = await import('@peculiar/x509')
  lib.cryptoProvider.set(webcrypto as unknown as Parameters<typeof lib.cryptoProvider.set>[0])
  return lib
}
