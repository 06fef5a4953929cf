// fauxqs's CLI always binds 0.0.0.0: this runs its app on 127.0.0.1 only.
// Usage: node fauxqs-loopback.mjs PORT  (PORT 0 = any free port).
// Prints "listening <port>" once it accepts connections.
//
// One change to fauxqs: it finds a queue by its exact QueueUrl, and the URL
// embeds the host:port of the request that created it, so a queue created
// directly (raw port) would not be found through the signature-checking
// proxy (other port), nor under a production URL
// (https://sqs.us-east-1.amazonaws.com/123456789012/NAME).  Here an unknown
// URL falls back to the queue named by its last path segment.
import { buildApp } from '../node_modules/fauxqs/dist/app.js'
import { SqsStore } from '../node_modules/fauxqs/dist/sqs/sqsStore.js'

const exact = SqsStore.prototype.getQueue
SqsStore.prototype.getQueue = function (url) {
  return exact.call(this, url) ?? (typeof url === 'string' ? this.getQueueByName(url.replace(/\/+$/, '').split('/').pop()) : undefined)
}
const app = buildApp({ logger: false })
const addr = await app.listen({ port: Number(process.argv[2] || 0), host: '127.0.0.1' })
console.log('listening %d', new URL(addr).port)
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
// Under tests/backends/lib.sh (BK_EXIT_WITH_PARENT=1): exit when the test
// that started us is gone, even if it died without running its traps.
if (process.env.BK_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 500).unref()
}
