import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {buildSearchRequest, buildSearchResponse, decodeXmlBody, MalformedMessage, parseSearchRequest, parseSearchResponse} from '../../src/lib/peers/bpcr-messages.js'

const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url))
const URL_41 = 'http://au.download.windowsupdate.com/msdownload/update/v3-19990518/cabpool/mpas-fe_424732ca30169e03f76401cec04764f02cc6bc3f.exe'
const ID_41 = '{6E1B09EF-954F-4EC2-BCDB-0A0F1A4C91C4}'

test('[MS-BPCR] 4.1 - the search request parses, and we write the same 690 bytes', async () => {
  const bytes = await fixture('ms-bpcr-4.1-search-request.bin')
  assert.equal(bytes.length, 690)
  const request = parseSearchRequest(bytes)
  assert.deepEqual(request, {originUrl: URL_41, fileModificationTime: '2006-11-07T18:21:41.000Z', maxRecords: 5})
  assert.ok(buildSearchRequest(request).equals(bytes), 'byte for byte')
})

test('[MS-BPCR] 4.1 - the affirmative response parses, and we write the same 2050 bytes', async () => {
  const bytes = await fixture('ms-bpcr-4.1-search-response.bin')
  assert.equal(bytes.length, 2050)
  const response = parseSearchResponse(bytes)
  assert.equal(response.status, 'Success')
  assert.equal(response.records.length, 1)
  const [record] = response.records
  assert.equal(record!.id, ID_41)
  assert.equal(record!.localUrl, `BITS-peer-caching/${ID_41}`)
  assert.equal(record!.fileSize, 3373384)
  assert.deepEqual(record!.ranges, [{offset: 100, length: 16}, {offset: 200, length: 48}])
  assert.ok(buildSearchResponse(response).equals(bytes), 'byte for byte')
  const notFound = await fixture('ms-bpcr-4.1-not-found.bin')
  assert.deepEqual(parseSearchResponse(notFound), {status: 'ContentNotFound', records: []})
  assert.ok(buildSearchResponse({status: 'ContentNotFound', records: []}).equals(notFound))
})

test('parseSearchRequest() - either byte order, BOM or not, UTF-8, unquoted values, unknown elements and comments', async () => {
  const text = decodeXmlBody(await fixture('ms-bpcr-4.1-search-request.bin'))
  const variants = [
    Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
    Buffer.from(text, 'utf16le').swap16(),
    Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]),
    Buffer.from(text.replace('utf-16', 'utf-8'), 'utf8'),
    Buffer.from(text.replaceAll('"2006', '2006').replaceAll('Z"', 'Z').replace('<MaxRecords>', '<!-- hi --><Extra a="1">x</Extra><MaxRecords>'), 'utf16le'),
  ]
  for (const body of variants) assert.equal(parseSearchRequest(body).originUrl, URL_41)
  for (const bad of ['<nope/>', 'not xml <', '<SearchRequest><MaxRecords>"x"</MaxRecords><OriginUrl>"u"</OriginUrl></SearchRequest>', '<SearchRequest/>']) {
    assert.throws(() => parseSearchRequest(Buffer.from(bad, 'utf16le')), MalformedMessage)
  }
})
