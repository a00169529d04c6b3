import {mkdir, readFile, rm} from 'node:fs/promises'
import {isIP} from 'node:net'
import path from 'node:path'
import type {LibContext} from '../context.js'
import {BitsError, errnoCode} from '../errors.js'
import {writeFileAtomic} from '../state/atomic-write.js'
import {withLock} from '../state/lock.js'
import {StateLayout} from '../state/state-dir.js'

/** The [MS-BPCR] port. */
export const PEER_PORT = 2178

/** A peer server this machine may search ([MS-BPCR] §3.1.1.1 table of servers). */
export interface PeerEntry {
  host: string
  port: number
  /** How it got here: by hand, by WS-Discovery, or by pairing. */
  source: 'added' | 'discovered' | 'paired'
  addedAt: string
  lastSeenAt: string
  /** When a search last went through mutual TLS with this peer (authenticated peers are asked first). */
  authenticatedAt?: string | null
  /** Discovered peers: the server's name and WS-Discovery endpoint; one server may have several addresses. */
  fqdn?: string
  endpoint?: string
}

/** [MS-BPDP] §3.2.2.3: a discovered address not refreshed for 7 days is scavenged. */
export const DISCOVERED_ADDRESS_LIFETIME_MS = 7 * 24 * 3600_000

function tableFile(ctx: LibContext): string {
  return path.join(ctx.stateDir, StateLayout.peers, 'peers.json')
}

/** When discovery last probed (the suppression timer), kept beside the table it fills. */
export function discoveryStateFile(ctx: LibContext): string {
  return path.join(ctx.stateDir, StateLayout.peers, 'discovery.json')
}

/** Peers added by hand or paired stay; discovered ones age out unless a Hello, ProbeMatch or search refreshes them. */
function current(ctx: LibContext, peers: PeerEntry[]): PeerEntry[] {
  const oldest = ctx.now().getTime() - DISCOVERED_ADDRESS_LIFETIME_MS
  return peers.filter((peer) => peer.source !== 'discovered' || Date.parse(peer.lastSeenAt) >= oldest)
}

/** `host:port`, IPv6 in brackets: how peers are named in answers, logs and `bytesFromPeers`. */
export function peerName(peer: {host: string; port: number}): string {
  return `${peer.host.includes(':') ? `[${peer.host}]` : peer.host}:${peer.port}`
}

/** Parses `HOST[:PORT]` (IPv6 in brackets); the port defaults to 2178. */
export function parsePeerAddress(text: string): {host: string; port: number} {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:\s/]+))(?::(\d{1,5}))?$/i.exec(text.trim())
  const host = match?.[1] ?? match?.[2]
  const port = match?.[3] ? Number(match[3]) : PEER_PORT
  if (!host || port < 1 || port > 65_535 || (match?.[1] && isIP(match[1]) !== 6) || (!match?.[1] && !/^[a-z0-9.-]+$/i.test(host))) {
    throw new BitsError('USAGE_INVALID_ARG', `"${text}" is not HOST[:PORT]`, {hint: 'e.g. peer7.example or 127.0.0.2:2178 or [::1]:2178'})
  }
  return {host: host.toLowerCase(), port}
}

export async function listPeers(ctx: LibContext): Promise<PeerEntry[]> {
  try {
    return current(ctx, JSON.parse(await readFile(tableFile(ctx), 'utf8')) as PeerEntry[])
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw new BitsError('STATE_CORRUPT', `Peer table ${tableFile(ctx)} is unreadable: ${(err as Error).message}`, {hint: 'Delete it (bits peers clear) and add the peers again'})
  }
}

async function updatePeers<T>(ctx: LibContext, change: (peers: PeerEntry[]) => T): Promise<T> {
  await mkdir(path.dirname(tableFile(ctx)), {recursive: true, mode: 0o700})
  return withLock(`${tableFile(ctx)}.lock`, async () => {
    const peers = await listPeers(ctx).catch(() => [] as PeerEntry[])
    const result = change(peers)
    await writeFileAtomic(tableFile(ctx), JSON.stringify(peers, null, 2))
    return result
  })
}

/** Adds a peer, or refreshes it when known; a peer added by hand or paired keeps that source. */
export async function addPeer(ctx: LibContext, peer: {host: string; port?: number; source: PeerEntry['source']; fqdn?: string; endpoint?: string}): Promise<PeerEntry> {
  const now = ctx.now().toISOString()
  return updatePeers(ctx, (peers) => {
    const port = peer.port ?? PEER_PORT
    const existing = peers.find((entry) => entry.host === peer.host && entry.port === port)
    const named = {...(peer.fqdn ? {fqdn: peer.fqdn} : {}), ...(peer.endpoint ? {endpoint: peer.endpoint} : {})}
    if (existing) {
      existing.lastSeenAt = now
      if (existing.source === 'discovered') existing.source = peer.source
      Object.assign(existing, named)
      return existing
    }
    const entry: PeerEntry = {host: peer.host, port, source: peer.source, addedAt: now, lastSeenAt: now, ...named}
    peers.push(entry)
    return entry
  })
}

export async function removePeer(ctx: LibContext, address: string): Promise<PeerEntry> {
  const {host, port} = parsePeerAddress(address)
  return updatePeers(ctx, (peers) => {
    const index = peers.findIndex((entry) => entry.host === host && entry.port === port)
    if (index < 0) throw new BitsError('PEER_UNREACHABLE', `${peerName({host, port})} is not in the peer table`, {hint: 'List the peers with bits peers list'})
    return peers.splice(index, 1)[0]!
  })
}

/** Notes that these peers completed mutual TLS (they answered a search). */
export async function markAuthenticated(ctx: LibContext, names: string[]): Promise<void> {
  if (names.length === 0) return
  const now = ctx.now().toISOString()
  await updatePeers(ctx, (peers) => {
    for (const peer of peers) {
      if (!names.includes(peerName(peer))) continue
      // A successful [MS-BPCR] contact refreshes the address too (§3.2.6.7).
      peer.authenticatedAt = now
      peer.lastSeenAt = now
    }
  })
}

/** Empties the table and, as [MS-BPDP] §3.2.6.3 says, resets the discovery suppression timer. */
export async function clearPeers(ctx: LibContext): Promise<{removed: number}> {
  const result = await updatePeers(ctx, (peers) => ({removed: peers.splice(0).length}))
  await rm(discoveryStateFile(ctx), {force: true})
  return result
}
