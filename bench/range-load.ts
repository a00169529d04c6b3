/**
 * Load generator for the peer benchmark: CONNECTIONS connections ask random 64 KiB ranges of URL
 * for SECONDS, presenting CERT/KEY; prints one JSON line {requests, rps, p50Ms, p99Ms, errors}.
 * Usage: tsx bench/range-load.ts URL SIZE SECONDS CONNECTIONS CERT KEY
 */
import {readFileSync} from 'node:fs'
import {Pool} from 'undici'

const [url, sizeText, secondsText, connectionsText, certFile, keyFile] = process.argv.slice(2)
const target = new URL(url!)
const size = Number(sizeText)
const connections = Number(connectionsText)
const pool = new Pool(target.origin, {connections, pipelining: 1, connect: {cert: readFileSync(certFile!), key: readFileSync(keyFile!), rejectUnauthorized: false}})
const latencies: number[] = []
let errors = 0
const deadline = Date.now() + Number(secondsText) * 1000
const chunk = 64 * 1024

async function worker(): Promise<void> {
  while (Date.now() < deadline) {
    const start = Math.floor(Math.random() * Math.floor(size / chunk)) * chunk
    const begun = performance.now()
    try {
      const response = await pool.request({path: target.pathname, method: 'GET', headers: {range: `bytes=${start}-${start + chunk - 1}`}})
      await response.body.arrayBuffer()
      if (response.statusCode !== 206) errors++
      else latencies.push(performance.now() - begun)
    } catch {
      errors++
    }
  }
}

const began = Date.now()
await Promise.all(Array.from({length: connections}, worker))
const seconds = (Date.now() - began) / 1000
latencies.sort((a, b) => a - b)
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
console.log(JSON.stringify({requests: latencies.length, rps: latencies.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99), errors}))
await pool.close()
