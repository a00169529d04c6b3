/** Wire constants of the BITS upload protocol [MC-BUP], shared by the client and the server. */

/** The only protocol defined: "BITS 1.5 Upload Protocol". */
export const BITS_UPLOAD_PROTOCOL = '{7df0354d-249b-430f-820d-3d2a9bef4931}'

export const PACKET_TYPES = ['ping', 'create-session', 'fragment', 'close-session', 'cancel-session'] as const
export type PacketType = (typeof PACKET_TYPES)[number]

/** HRESULTs of the protocol's Acks. */
export const UploadHresult = {
  E_INVALIDARG: 0x80070057,
  E_ACCESSDENIED: 0x80070005,
  ERROR_DISK_FULL: 0x80070070,
  BACKEND_TIMEOUT: 0x80070112,
  BG_E_SESSION_NOT_FOUND: 0x8020001f,
  BG_E_TOO_LARGE: 0x80200020,
  BG_E_CLIENT_SERVER_PROTOCOL_MISMATCH: 0x80200022,
} as const

/** BITS-Error-Context values. */
export const UploadErrorContext = {SERVER: 0x5, SERVER_APPLICATION: 0x7} as const

/** Packet types compare without regard to case (Windows sends `Create-Session`, the spec `CREATE-SESSION`). */
export function parsePacketType(value: string | undefined): PacketType | undefined {
  const lower = value?.trim().toLowerCase()
  return PACKET_TYPES.find((type) => type === lower)
}

/** `bytes a-b/total` → numbers; undefined when malformed or impossible. */
export function parseFragmentRange(value: string | undefined): {first: number; last: number; total: number} | undefined {
  const match = value && /^bytes\s+(\d+)-(\d+)\/(\d+)$/i.exec(value.trim())
  if (!match) return undefined
  const [first, last, total] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (!Number.isSafeInteger(total) || first > last || last >= total) return undefined
  return {first, last, total}
}

/** Parses an HRESULT as servers send it: `0x8020001F`, `x8020001F`, `8020001f`. */
export function parseHresultHeader(value: string | undefined): number | undefined {
  const match = value && /^(?:0x|x)?([0-9a-f]{1,8})$/i.exec(value.trim())
  return match ? Number.parseInt(match[1]!, 16) >>> 0 : undefined
}

export function formatHresultHeader(value: number): string {
  return '0x' + (value >>> 0).toString(16).toUpperCase().padStart(8, '0')
}
