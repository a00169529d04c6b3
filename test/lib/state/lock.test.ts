import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'
import {BitsError} from '../../../src/lib/errors.js'
import {writeFileAtomic} from '../../../src/lib/state/atomic-write.js'
import {acquireLock, withLock} from '../../../src/lib/state/lock.js'
import {makeTempDir} from '../../helpers/temp-dir.js'

/** A pid that surely belongs to no running process: a child that has already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!
}

test('withLock() - serialises read-modify-write so no update is lost', async () => {
  const {dir, cleanup} = await makeTempDir()
  try {
    const file = path.join(dir, 'counter')
    await writeFile(file, '0')
    await Promise.all(
      Array.from({length: 25}, () =>
        withLock(`${file}.lock`, async () => {
          const value = Number(await readFile(file, 'utf8'))
          await new Promise((resolve) => setTimeout(resolve, 1))
          await writeFile(file, String(value + 1))
        }),
      ),
    )
    assert.equal(await readFile(file, 'utf8'), '25')
    assert.deepEqual(await readdir(dir), ['counter'], 'the lock file is gone after release')
  } finally {
    await cleanup()
  }
})

test('acquireLock() - takes over a lock whose holder died', async () => {
  const {dir, cleanup} = await makeTempDir()
  try {
    const lockPath = path.join(dir, 'job.lock')
    await writeFile(lockPath, JSON.stringify({pid: deadPid(), host: hostname(), token: 'dead', acquiredAt: new Date(0).toISOString()}))
    const lock = await acquireLock(lockPath, {timeoutMs: 1000})
    const owner = JSON.parse(await readFile(lockPath, 'utf8'))
    assert.equal(owner.pid, process.pid)
    await lock.release()
  } finally {
    await cleanup()
  }
})

test('acquireLock() - a live holder makes a waiter wait, then STATE_LOCKED after the timeout', async () => {
  const {dir, cleanup} = await makeTempDir()
  try {
    const lockPath = path.join(dir, 'job.lock')
    const held = await acquireLock(lockPath)
    const started = Date.now()
    await assert.rejects(acquireLock(lockPath, {timeoutMs: 150}), (err: unknown) => err instanceof BitsError && err.code === 'STATE_LOCKED' && err.message.includes(String(process.pid)))
    assert.ok(Date.now() - started >= 140)
    const waiter = acquireLock(lockPath, {timeoutMs: 2000})
    setTimeout(() => void held.release(), 50)
    const second = await waiter
    await second.release()
  } finally {
    await cleanup()
  }
})

test('writeFileAtomic() - replaces the file whole and leaves no temporary files', async () => {
  const {dir, cleanup} = await makeTempDir()
  try {
    const file = path.join(dir, 'state.json')
    await writeFileAtomic(file, 'old')
    await Promise.all(Array.from({length: 10}, (_, i) => writeFileAtomic(file, `value-${i}`.repeat(1000))))
    assert.match(await readFile(file, 'utf8'), /^(value-\d)\1*$/)
    assert.deepEqual(await readdir(dir), ['state.json'])
  } finally {
    await cleanup()
  }
})
