import {test} from 'node:test'
import assert from 'node:assert/strict'
import {BitsError} from '../../../src/lib/errors.js'
import {formatCommandLine, parseCommandLine} from '../../../src/lib/jobs/command-line.js'
import {parseFileSet} from '../../../src/lib/jobs/job-service.js'
import {checkHeaderLine, parseCredentialSpec, parsePeerCachingFlags, parseProxySetting, parseUnsigned} from '../../../src/lib/jobs/job-settings.js'

const fails = (code: string, hresult?: number) => (err: unknown) => err instanceof BitsError && err.code === code && (hresult === undefined || err.hresult === hresult)

test('parseProxySetting() - usages, lists and BG_E_INVALID_PROXY_INFO', () => {
  assert.deepEqual(parseProxySetting('override:http://a:3128,b:8080;https://c'), {usage: 'OVERRIDE', list: ['http://a:3128', 'b:8080', 'https://c']})
  assert.deepEqual(parseProxySetting('no_proxy'), {usage: 'NO_PROXY', list: []})
  assert.deepEqual(parseProxySetting('AUTODETECT'), {usage: 'AUTODETECT', list: []})
  assert.throws(() => parseProxySetting('override'), fails('USAGE_INVALID_ARG', 0x8020003f))
  assert.throws(() => parseProxySetting('override:socks5://x:1'), fails('USAGE_INVALID_ARG', 0x8020003f))
  assert.throws(() => parseProxySetting('sometimes'), fails('USAGE_INVALID_ARG'))
})

test('parseCredentialSpec() - BASIC and DIGEST only; user names checked', () => {
  assert.deepEqual(parseCredentialSpec('server:basic:alice'), {target: 'SERVER', scheme: 'BASIC', username: 'alice'})
  assert.deepEqual(parseCredentialSpec('PROXY:Digest:dom\\bob:x'), {target: 'PROXY', scheme: 'DIGEST', username: 'dom\\bob:x'})
  for (const scheme of ['ntlm', 'negotiate', 'passport']) assert.throws(() => parseCredentialSpec(`server:${scheme}:a`), fails('USAGE_UNSUPPORTED', 0x80004001))
  assert.throws(() => parseCredentialSpec('client:basic:a'), fails('USAGE_INVALID_ARG'))
})

test('checkHeaderLine() - "Name: value", reserved names refused', () => {
  assert.equal(checkHeaderLine('X-A:1'), 'X-A: 1')
  for (const reserved of ['Host: x', 'range: bytes=0-', 'Authorization: Basic x']) assert.throws(() => checkHeaderLine(reserved), fails('USAGE_INVALID_ARG'))
  assert.throws(() => checkHeaderLine('no colon'), fails('USAGE_INVALID_ARG'))
  assert.throws(() => checkHeaderLine('X-A: 1\r\nX-B: 2'), fails('USAGE_INVALID_ARG'))
})

test('parseUnsigned() and parsePeerCachingFlags() - decimal, hex and words', () => {
  assert.equal(parseUnsigned('0x0010', 'flags'), 16)
  assert.equal(parseUnsigned('42', 'flags'), 42)
  assert.throws(() => parseUnsigned('-1', 'flags'), fails('USAGE_INVALID_ARG'))
  assert.equal(parsePeerCachingFlags('client,server'), 3)
  assert.equal(parsePeerCachingFlags('none'), 0)
  assert.equal(parsePeerCachingFlags('2'), 2)
  assert.throws(() => parsePeerCachingFlags('8'), fails('USAGE_INVALID_ARG'))
})

test('parseCommandLine() - quotes group words, no shell, program resolved', () => {
  assert.deepEqual(parseCommandLine('/usr/bin/logger "job done" \'a b\' c\\ d', '/tmp'), {program: '/usr/bin/logger', args: ['job done', 'a b', 'c d']})
  assert.deepEqual(parseCommandLine('notify.sh $HOME', '/opt'), {program: '/opt/notify.sh', args: ['$HOME']}, 'no variable expansion, as BITS')
  assert.throws(() => parseCommandLine('/bin/x "open', '/'), fails('USAGE_INVALID_ARG'))
  const line = {program: '/usr/bin/logger', args: ["it's done", 'plain']}
  assert.deepEqual(parseCommandLine(formatCommandLine(line), '/'), line)
})

test('parseFileSet() - pairs, comments, quoted paths; errors name the line', () => {
  assert.deepEqual(parseFileSet('# c\nhttps://a/x ./x\n\n  https://a/y "./y z"\n', 'list'), [
    {remoteUrl: 'https://a/x', localPath: './x'},
    {remoteUrl: 'https://a/y', localPath: './y z'},
  ])
  assert.throws(() => parseFileSet('https://a/x ./x\nhttps://a/y\n', 'list'), (err: unknown) => err instanceof BitsError && err.message.startsWith('list:2:'))
  assert.throws(() => parseFileSet('# only comments\n', 'list'), fails('USAGE_INVALID_ARG'))
})
