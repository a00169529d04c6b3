import {createHmac, timingSafeEqual, X509Certificate} from 'node:crypto'
import type {IncomingMessage, ServerResponse} from 'node:http'
import {request as httpsRequest} from 'node:https'
import type {PeerCertificate, TLSSocket} from 'node:tls'
import type {LibContext} from '../context.js'
import {BitsError, toBitsError} from '../errors.js'
import {readBoundedBody} from './bounded-body.js'
import {readGroup} from './peer-group.js'
import {addTrusted, ensureIdentity, isTrusted, pairingRoomFor, type PeerIdentity} from './peer-identity.js'
import {addPeer, listPeers, parsePeerAddress, peerName} from './peer-table.js'

/*
 * Pairing: two peers that share the group secret trust each other's certificate, over the
 * [MS-BPCR] HTTPS port. The client proves the secret with
 *   HMAC-SHA256(secret, "openbits-pair-client\0" || clientCertDER || serverCertDER)
 * and the server answers with
 *   HMAC-SHA256(secret, "openbits-pair-server\0" || serverCertDER || clientCertDER).
 * Both certificates are those of the TLS session carrying the proofs: the client's was proven by
 * its private key in the handshake (CertificateVerify), the server's likewise. So a proof seen by
 * a rogue server cannot be replayed elsewhere: it names the rogue server's certificate, and sending
 * it from the client's certificate needs the client's private key. DER is self-delimiting, so the
 * concatenation is unambiguous; the labels keep the two directions apart.
 */

/** The pairing route of the peer server. */
export const PAIR_PATH = '/openbits/pair'
export const PAIR_VERSION = 1
/** Largest pairing request body the server reads. */
export const MAX_PAIR_BODY = 4096
/** Wrong proofs the whole server accepts in a minute; then 429 until the oldest is a minute old. */
export const MAX_FAILED_PAIRINGS = 5
const FAILURE_WINDOW_MS = 60_000
/** The [MS-BPAU] RPC timeout, for the whole exchange. */
const PAIR_TIMEOUT_MS = 15_000
/** Peers paired with at once by `pairWithPeers`. */
const PAIR_CONCURRENCY = 8

type Direction = 'client' | 'server'

function pairProof(secret: Buffer, direction: Direction, own: Buffer, other: Buffer): Buffer {
  return createHmac('sha256', secret).update(`openbits-pair-${direction}\0`).update(own).update(other).digest()
}

/** Compares a base64 proof with the expected one in constant time. */
function proofMatches(expected: Buffer, given: unknown): boolean {
  if (typeof given !== 'string') return false
  const bytes = Buffer.from(given, 'base64')
  return bytes.length === expected.length && timingSafeEqual(bytes, expected)
}

interface PairAnswer {
  status: number
  headers?: Record<string, string>
  body?: {version: number; proof: string; fingerprint: string}
}

/**
 * The server side of pairing, one per peer server: answers `POST /openbits/pair`. 404 while this
 * state directory has no group secret (pairing off), 429 with Retry-After after
 * MAX_FAILED_PAIRINGS wrong proofs within a minute (all clients together: the secret cannot be
 * guessed faster than that), 400 without a client certificate or for a body that is too large or
 * not the message, 403 for a wrong proof, 503 when the trust table is full of fresh entries, and
 * 200 with the server's proof once the client's certificate is trusted.
 */
export class PairingResponder {
  readonly #ctx: LibContext
  #failures: number[] = []

  constructor(ctx: LibContext) {
    this.#ctx = ctx
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const answer = await this.#answer(req)
    req.resume()
    const body = answer.body ? Buffer.from(JSON.stringify(answer.body)) : Buffer.alloc(0)
    const headers: Record<string, string> = {...answer.headers, 'Content-Length': String(body.length)}
    if (answer.body) headers['Content-Type'] = 'application/json'
    res.writeHead(answer.status, headers).end(body)
  }

  /** Seconds until another attempt is heard, 0 when it is now. */
  #lockedFor(now: number): number {
    this.#failures = this.#failures.filter((at) => now - at < FAILURE_WINDOW_MS)
    if (this.#failures.length < MAX_FAILED_PAIRINGS) return 0
    return Math.max(1, Math.ceil((this.#failures[0]! + FAILURE_WINDOW_MS - now) / 1000))
  }

  async #answer(req: IncomingMessage): Promise<PairAnswer> {
    const {secret} = await readGroup(this.#ctx)
    if (!secret) return {status: 404}
    const retryAfter = this.#lockedFor(this.#ctx.now().getTime())
    if (retryAfter > 0) return {status: 429, headers: {'Retry-After': String(retryAfter)}}
    const socket = req.socket as TLSSocket
    const clientDer = socket.getPeerCertificate?.()?.raw
    const serverDer = (socket.getCertificate?.() as PeerCertificate | null)?.raw
    const body = await readBoundedBody(req, MAX_PAIR_BODY)
    if (!clientDer || !serverDer || !body) return {status: 400}
    let message: {version?: unknown; proof?: unknown}
    try {
      message = JSON.parse(body.toString('utf8')) as typeof message
    } catch {
      return {status: 400}
    }
    if (typeof message !== 'object' || message === null || message.version !== PAIR_VERSION || typeof message.proof !== 'string') return {status: 400}
    const client = new X509Certificate(clientDer)
    if (!proofMatches(pairProof(secret, 'client', clientDer, serverDer), message.proof)) {
      this.#failures.push(this.#ctx.now().getTime())
      this.#ctx.logger.warn('peers', `refused pairing from ${socket.remoteAddress ?? '?'} (${client.fingerprint256}): wrong proof`)
      return {status: 403}
    }
    try {
      await addTrusted(this.#ctx, client.toString(), 'paired')
    } catch (err) {
      if (err instanceof BitsError && err.code === 'PEER_TRUST_FULL') {
        this.#ctx.logger.warn('peers', `refused pairing from ${socket.remoteAddress ?? '?'}: ${err.message}`)
        return {status: 503, headers: {'Retry-After': '60'}}
      }
      throw err
    }
    this.#ctx.logger.info('peers', `paired with ${client.subject.replace(/\n/g, ', ')} (${client.fingerprint256}) from ${socket.remoteAddress ?? '?'}`)
    const fingerprint = new X509Certificate(serverDer).fingerprint256
    return {status: 200, body: {version: PAIR_VERSION, proof: pairProof(secret, 'server', serverDer, clientDer).toString('base64'), fingerprint}}
  }
}

interface PairReply {
  status: number
  retryAfter: string | undefined
  body: Buffer
  serverDer: Buffer
}

/** One pairing request over its own TLS connection (no agent, no session reuse). */
function exchange(identity: PeerIdentity, secret: Buffer, address: {host: string; port: number}, canTrust: (server: X509Certificate) => Promise<BitsError | undefined>): Promise<PairReply> {
  const clientDer = new X509Certificate(identity.certPem).raw
  // The proof is always 32 bytes, so the length is known before the server certificate is.
  const length = Buffer.byteLength(JSON.stringify({version: PAIR_VERSION, proof: Buffer.alloc(32).toString('base64')}))
  return new Promise((resolve, reject) => {
    let serverDer: Buffer | undefined
    const req = httpsRequest({
      host: address.host,
      port: address.port,
      method: 'POST',
      path: PAIR_PATH,
      cert: identity.certPem,
      key: identity.keyPem,
      // Peers have self-signed certificates: the server is authenticated by its proof instead.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      agent: false,
      headers: {'Content-Type': 'application/json', 'Content-Length': String(length), 'User-Agent': 'openbits'},
    })
    const timer = setTimeout(() => req.destroy(new BitsError('PEER_UNREACHABLE', `${peerName(address)} did not answer the pairing request within ${PAIR_TIMEOUT_MS / 1000} s`, {hint: 'Check that bits peers serve runs there'})), PAIR_TIMEOUT_MS)
    const fail = (err: Error) => {
      clearTimeout(timer)
      reject(err)
    }
    req.on('error', fail)
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        const raw = (socket as TLSSocket).getPeerCertificate()?.raw
        if (!raw) return void req.destroy(new BitsError('PEER_PROTOCOL', `${peerName(address)} presented no certificate`))
        const server = new X509Certificate(raw)
        if (server.fingerprint256 === identity.fingerprint) {
          return void req.destroy(new BitsError('USAGE_INVALID_ARG', `${peerName(address)} is this machine's own peer server`, {hint: 'Pair with another machine of the group'}))
        }
        // Checked before the proof goes out, so that the peer never trusts a machine that cannot trust it back.
        void canTrust(server).then(
          (refusal) => {
            if (refusal) return void req.destroy(refusal)
            serverDer = raw
            req.end(JSON.stringify({version: PAIR_VERSION, proof: pairProof(secret, 'client', clientDer, raw).toString('base64')}))
          },
          (err: unknown) => req.destroy(err as Error),
        )
      })
    })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_PAIR_BODY) return void req.destroy(new BitsError('PEER_PROTOCOL', `${peerName(address)} sent an oversized pairing answer`))
        chunks.push(chunk)
      })
      res.on('error', fail)
      res.on('end', () => {
        clearTimeout(timer)
        resolve({status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: Buffer.concat(chunks), serverDer: serverDer!})
      })
    })
  })
}

/** What the peer's status means for the user; undefined for 200. */
function statusError(name: string, reply: PairReply): BitsError | undefined {
  switch (reply.status) {
    case 200:
      return undefined
    case 403:
      return new BitsError('PEER_UNTRUSTED', `${name} refused the pairing proof`, {hint: 'secrets differ: run bits peers group --secret-file on both machines'})
    case 404:
      return new BitsError('PEER_UNTRUSTED', `${name} does not accept pairing`, {hint: 'The peer has no group secret set: run bits peers group --secret-file FILE there'})
    case 429:
      return new BitsError('PEER_UNREACHABLE', `${name} refuses pairing for ${reply.retryAfter ?? 'a few'} s after too many wrong proofs`, {retryable: true, hint: 'Try again later; if it keeps happening someone may be guessing the group secret', details: {retryAfterSeconds: Number(reply.retryAfter) || null}})
    case 503:
      return new BitsError('PEER_TRUST_FULL', `${name} cannot trust one more peer now: its trust table is full of peers paired in the last minute`, {hint: 'Try again in a minute, or remove peers with bits peers trust remove there'})
    default:
      return new BitsError('PEER_PROTOCOL', `${name} answered the pairing request with HTTP ${reply.status}`, {hint: 'Is it an openbits peer server (bits peers serve)?'})
  }
}

async function pairUsing(ctx: LibContext, identity: PeerIdentity, secret: Buffer, address: {host: string; port: number}): Promise<PairedPeer> {
  const name = peerName(address)
  let reply: PairReply
  try {
    reply = await exchange(identity, secret, address, (server) => pairingRoomFor(ctx, server.fingerprint256))
  } catch (err) {
    if (err instanceof BitsError) throw err
    throw new BitsError('PEER_UNREACHABLE', `Cannot pair with ${name}: ${(err as Error).message}`, {cause: err, hint: 'Check that bits peers serve runs there and listens on an address this machine reaches'})
  }
  const refused = statusError(name, reply)
  if (refused) throw refused
  let answer: {version?: unknown; proof?: unknown; fingerprint?: unknown}
  try {
    answer = JSON.parse(reply.body.toString('utf8')) as typeof answer
  } catch (err) {
    throw new BitsError('PEER_PROTOCOL', `${name} sent a pairing answer that is not JSON`, {cause: err})
  }
  const clientDer = new X509Certificate(identity.certPem).raw
  if (typeof answer !== 'object' || answer === null || !proofMatches(pairProof(secret, 'server', reply.serverDer, clientDer), answer.proof)) {
    throw new BitsError('PEER_UNTRUSTED', `${name} did not prove the group secret: its certificate is not trusted`, {hint: 'the peer does not share this group secret'})
  }
  const server = new X509Certificate(reply.serverDer)
  const alreadyTrusted = await isTrusted(ctx, server)
  // A certificate trusted before keeps its entry (and how it got there).
  if (!alreadyTrusted) await addTrusted(ctx, server.toString(), 'paired')
  await addPeer(ctx, {host: address.host, port: address.port, source: 'paired'})
  ctx.logger.info('peers', `paired with ${name} (${server.fingerprint256})`)
  return {peer: name, fingerprint: server.fingerprint256, subject: server.subject.replace(/\n/g, ', '), alreadyTrusted}
}

async function groupSecret(ctx: LibContext): Promise<Buffer> {
  const {secret} = await readGroup(ctx)
  if (!secret) {
    throw new BitsError('USAGE_INVALID_ARG', 'No group secret is set: pairing proves a secret both machines share', {
      hint: 'bits peers group --generate-secret here, then bits peers group --secret-file FILE on the other machines',
    })
  }
  return secret
}

/** A peer this machine paired with. */
export interface PairedPeer {
  /** `HOST:PORT`. */
  peer: string
  fingerprint: string
  subject: string
  /** Its certificate was trusted before (the exchange still ran, so the peer now trusts this one). */
  alreadyTrusted: boolean
}

/**
 * Pairs with one peer server: proves the group secret, checks the peer's proof, and only then
 * trusts its certificate (source 'paired') and records it in the peer table. The peer trusts this
 * machine's certificate in turn. Throws PEER_UNTRUSTED when the secrets differ or the peer has
 * none, PEER_UNREACHABLE when it cannot be reached or refuses for a while, PEER_TRUST_FULL.
 */
export async function pairWithPeer(ctx: LibContext, address: {host: string; port: number}): Promise<PairedPeer> {
  const secret = await groupSecret(ctx)
  return pairUsing(ctx, await ensureIdentity(ctx), secret, address)
}

/** How pairing with one peer went. */
export interface PairOutcome {
  peer: string
  result: 'paired' | 'already-trusted' | 'failed'
  fingerprint?: string
  subject?: string
  error?: {code: string; message: string; hint?: string; retryable: boolean}
}

/**
 * Pairs with the given peers (`HOST[:PORT]`), or with no addresses with every peer of the peer
 * table not paired yet (in practice the discovered ones: their certificates are unknown until
 * the connection is made). Never throws for one peer: each outcome says what happened.
 */
export async function pairWithPeers(ctx: LibContext, addresses: string[] = []): Promise<PairOutcome[]> {
  const given = addresses.map((address) => parsePeerAddress(address))
  const secret = await groupSecret(ctx)
  const candidates: {host: string; port: number; endpoint?: string}[] = given.length > 0 ? given : (await listPeers(ctx)).filter((peer) => peer.source !== 'paired')
  // One server discovered at several addresses is paired once; its other addresses are tried only
  // when the first cannot be reached, and all of them become paired with it.
  const servers = new Map<string, {host: string; port: number}[]>()
  for (const candidate of candidates) {
    const key = candidate.endpoint ?? peerName(candidate)
    const addresses = servers.get(key) ?? []
    if (!addresses.some((known) => peerName(known) === peerName(candidate))) addresses.push({host: candidate.host, port: candidate.port})
    servers.set(key, addresses)
  }
  const targets = [...servers.values()]
  if (targets.length === 0) return []
  const identity = await ensureIdentity(ctx)
  const outcomes: PairOutcome[] = new Array<PairOutcome>(targets.length)
  let next = 0
  const worker = async () => {
    for (let index = next++; index < targets.length; index = next++) {
      const addresses = targets[index]!
      for (const [tried, target] of addresses.entries()) {
        try {
          const paired = await pairUsing(ctx, identity, secret, target)
          for (const other of addresses) if (other !== target) await addPeer(ctx, {...other, source: 'paired'})
          outcomes[index] = {peer: paired.peer, result: paired.alreadyTrusted ? 'already-trusted' : 'paired', fingerprint: paired.fingerprint, subject: paired.subject}
          break
        } catch (err) {
          const error = toBitsError(err)
          outcomes[index] = {peer: peerName(target), result: 'failed', error: {code: error.code, message: error.message, ...(error.hint === undefined ? {} : {hint: error.hint}), retryable: error.retryable}}
          // Another address helps only when this one could not be reached.
          if (error.code !== 'PEER_UNREACHABLE' || tried === addresses.length - 1) break
        }
      }
    }
  }
  await Promise.all(Array.from({length: Math.min(PAIR_CONCURRENCY, targets.length)}, worker))
  return outcomes
}

/** The error to exit with when every pairing failed: the failure itself when there was one peer. */
export function pairingFailure(outcomes: PairOutcome[]): BitsError | undefined {
  const failed = outcomes.filter((outcome) => outcome.result === 'failed')
  if (outcomes.length === 0 || failed.length < outcomes.length) return undefined
  const first = failed[0]!.error!
  const message = failed.length === 1 ? first.message : `Pairing failed with all ${failed.length} peers (${failed.map((outcome) => `${outcome.peer}: ${outcome.error!.code}`).join(', ')}); first: ${first.message}`
  return new BitsError(first.code as BitsError['code'], message, {hint: first.hint, retryable: failed.some((outcome) => outcome.error!.retryable), details: {results: outcomes}})
}
