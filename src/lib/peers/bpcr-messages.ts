import {XMLParser} from 'fast-xml-parser'

/**
 * The XML bodies of [MS-BPCR]: DISCOVERY-REQUEST (SearchRequest) and DISCOVERY-RESPONSE
 * (SearchResults). Windows writes them in UTF-16LE without a byte order mark, values wrapped in
 * double quotes, CRLF line ends and 4-space indentation; what we write matches the spec's section
 * 4.1 traffic byte for byte, what we read may be either byte order, with or without BOM, UTF-8,
 * quoted or not, with unknown elements and comments.
 */

export const SEARCH_STATUSES = ['Success', 'CertificateNotFound', 'ContentNotFound', 'AccessDenied', 'OutOfResources', 'InvalidSearch', 'Unknown'] as const
export type SearchStatus = (typeof SEARCH_STATUSES)[number]

export interface SearchRequest {
  originUrl: string
  fileModificationTime?: string
  fileSize?: number
  fileEtag?: string
  maxRecords?: number
}

export interface WireRecord {
  /** Braced, upper case on the wire. */
  id: string
  creationTime: string
  modificationTime: string
  lastAccessTime: string
  originUrl: string
  localUrl: string
  fileModificationTime: string
  fileSize: number
  fileEtag?: string
  ranges: {offset: number; length: number}[]
  /**
   * openbits extension (an element Windows ignores): SHA-256 of each block of the record's data,
   * so a client can check every block it gets from the peer.
   */
  blockSize?: number
  blockHashes?: string[]
}

export interface SearchResponse {
  status: SearchStatus | string
  records: WireRecord[]
}

/** A body that does not parse as the message it should be. */
export class MalformedMessage extends Error {}

/** Decodes an XML body: UTF-16 of either byte order (BOM optional) or UTF-8. */
export function decodeXmlBody(body: Buffer): string {
  if (body.length >= 2 && body[0] === 0xff && body[1] === 0xfe) return body.subarray(2).toString('utf16le')
  if (body.length >= 2 && body[0] === 0xfe && body[1] === 0xff) return swap16(body.subarray(2)).toString('utf16le')
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return body.subarray(3).toString('utf8')
  if (body.length >= 2 && body[0] !== 0 && body[1] === 0) return body.toString('utf16le')
  if (body.length >= 2 && body[0] === 0 && body[1] !== 0) return swap16(body).toString('utf16le')
  return body.toString('utf8')
}

function swap16(buffer: Buffer): Buffer {
  const copy = Buffer.from(buffer.subarray(0, buffer.length - (buffer.length % 2)))
  return copy.swap16()
}

const parser = new XMLParser({ignoreAttributes: true, removeNSPrefix: true, parseTagValue: false, trimValues: true, ignoreDeclaration: true, isArray: (name) => name === 'CacheRecord' || name === 'ContentRange'})

function unquote(value: unknown): string | undefined {
  if (value === undefined || value === null || typeof value === 'object') return undefined
  const text = String(value).trim()
  return text.length >= 2 && text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1) : text
}

function parseXml(body: Buffer, root: string): Record<string, unknown> {
  let document: Record<string, unknown>
  try {
    document = parser.parse(decodeXmlBody(body), true) as Record<string, unknown>
  } catch (err) {
    throw new MalformedMessage(`body is not XML: ${(err as Error).message}`)
  }
  const element = document[root]
  if (!element || typeof element !== 'object') throw new MalformedMessage(`no ${root} element`)
  return element as Record<string, unknown>
}

function unsigned(value: unknown, what: string): number | undefined {
  const text = unquote(value)
  if (text === undefined || text === '') return undefined
  if (!/^\d+$/.test(text)) throw new MalformedMessage(`${what} "${text}" is not a whole number`)
  return Number(text)
}

/** Parses a DISCOVERY-REQUEST body; MalformedMessage for anything the server answers InvalidSearch. */
export function parseSearchRequest(body: Buffer): SearchRequest {
  const element = parseXml(body, 'SearchRequest')
  const originUrl = unquote(element.OriginUrl)
  if (!originUrl || originUrl.length > 2200) throw new MalformedMessage('OriginUrl is missing or longer than 2200 characters')
  const fileModificationTime = unquote(element.FileModificationTime)
  if (fileModificationTime && Number.isNaN(Date.parse(fileModificationTime))) throw new MalformedMessage(`FileModificationTime "${fileModificationTime}" is not a time`)
  return {
    originUrl,
    ...(fileModificationTime ? {fileModificationTime} : {}),
    ...(unsigned(element.FileSize, 'FileSize') !== undefined ? {fileSize: unsigned(element.FileSize, 'FileSize')} : {}),
    ...(unquote(element.FileEtag) ? {fileEtag: unquote(element.FileEtag)} : {}),
    ...(unsigned(element.MaxRecords, 'MaxRecords') !== undefined ? {maxRecords: unsigned(element.MaxRecords, 'MaxRecords')} : {}),
  }
}

const XML_HEADER = '<?xml version="1.0" encoding="utf-16"?>\r\n'

function escapeXml(text: string): string {
  return text.replace(/[&<>]/g, (ch) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'})[ch]!)
}

const line = (indent: number, name: string, value: string | number) => `${' '.repeat(indent)}<${name}>"${escapeXml(String(value))}"</${name}>\r\n`

/** A DISCOVERY-REQUEST body, exactly as Windows writes it (UTF-16LE, no BOM). */
export function buildSearchRequest(request: SearchRequest): Buffer {
  let xml = `${XML_HEADER}<SearchRequest>\r\n${line(4, 'OriginUrl', request.originUrl)}`
  if (request.fileModificationTime) xml += line(4, 'FileModificationTime', request.fileModificationTime)
  if (request.fileSize !== undefined) xml += line(4, 'FileSize', request.fileSize)
  if (request.fileEtag) xml += line(4, 'FileEtag', request.fileEtag)
  if (request.maxRecords !== undefined) xml += line(4, 'MaxRecords', request.maxRecords)
  xml += '</SearchRequest>\r\n'
  return Buffer.from(xml, 'utf16le')
}

/** A DISCOVERY-RESPONSE body, exactly as Windows writes it (UTF-16LE, no BOM). */
export function buildSearchResponse(response: SearchResponse): Buffer {
  let xml = `${XML_HEADER}<SearchResults>\r\n${line(4, 'Status', response.status)}`
  for (const record of response.records) {
    xml += '    <CacheRecord>\r\n'
    xml += line(8, 'Id', record.id) + line(8, 'CreationTime', record.creationTime) + line(8, 'ModificationTime', record.modificationTime) + line(8, 'LastAccessTime', record.lastAccessTime)
    xml += line(8, 'OriginUrl', record.originUrl) + line(8, 'LocalUrl', record.localUrl) + line(8, 'FileModificationTime', record.fileModificationTime) + line(8, 'FileSize', record.fileSize)
    if (record.fileEtag) xml += line(8, 'FileEtag', record.fileEtag)
    for (const range of record.ranges) xml += `        <ContentRange>\r\n${line(12, 'Offset', range.offset)}${line(12, 'Length', range.length)}        </ContentRange>\r\n`
    if (record.blockHashes && record.blockSize) xml += line(8, 'BlockSize', record.blockSize) + line(8, 'BlockHashes', record.blockHashes.join(' '))
    xml += '    </CacheRecord>\r\n'
  }
  xml += '</SearchResults>\r\n'
  return Buffer.from(xml, 'utf16le')
}

/** Parses a DISCOVERY-RESPONSE body (client side), at most `maxRecords` records. */
export function parseSearchResponse(body: Buffer, maxRecords = Infinity): SearchResponse {
  const element = parseXml(body, 'SearchResults')
  const status = unquote(element.Status)
  if (!status) throw new MalformedMessage('Status is missing')
  const records = ((element.CacheRecord as Record<string, unknown>[] | undefined) ?? []).slice(0, maxRecords).map((record): WireRecord => {
    const ranges = ((record.ContentRange as Record<string, unknown>[] | undefined) ?? []).map((range) => ({offset: unsigned(range.Offset, 'Offset') ?? 0, length: unsigned(range.Length, 'Length') ?? 0}))
    const id = unquote(record.Id)
    const originUrl = unquote(record.OriginUrl)
    if (!id || !originUrl) throw new MalformedMessage('a CacheRecord lacks Id or OriginUrl')
    return {
      id,
      creationTime: unquote(record.CreationTime) ?? '',
      modificationTime: unquote(record.ModificationTime) ?? '',
      lastAccessTime: unquote(record.LastAccessTime) ?? '',
      originUrl,
      localUrl: unquote(record.LocalUrl) ?? '',
      fileModificationTime: unquote(record.FileModificationTime) ?? '',
      fileSize: unsigned(record.FileSize, 'FileSize') ?? 0,
      ...(unquote(record.FileEtag) ? {fileEtag: unquote(record.FileEtag)} : {}),
      ranges,
      ...(unquote(record.BlockHashes) && unsigned(record.BlockSize, 'BlockSize') ? {blockSize: unsigned(record.BlockSize, 'BlockSize'), blockHashes: unquote(record.BlockHashes)!.split(/\s+/)} : {}),
    }
  })
  return {status, records}
}
