// s3rver on 127.0.0.1, on any free port, printing the port it got.
// Usage: node s3rver-loopback.js PORT DATA_DIR [BUCKET...]  (PORT 0 = any
// free port; each BUCKET is created at start).  Prints "listening <port>".
// s3rver accepts only the access key S3RVER (secret S3RVER) and never
// checks V4 signatures; path-style and virtual-hosted (BUCKET.s3.REGION.
// amazonaws.com) requests both work.
'use strict'
const path = require('path')
const S3rver = require(path.join(__dirname, '..', 'node_modules', 's3rver'))
const [port, dir, ...buckets] = process.argv.slice(2)
new S3rver({
  address: '127.0.0.1', port: Number(port || 0), directory: dir, silent: true,
  configureBuckets: buckets.map(name => ({ name, configs: [] })),
}).run().then(a => console.log('listening %d', a.port), e => { console.error(e); process.exit(1) })
process.on('SIGTERM', () => process.exit(0))
// Under tests/backends/lib.sh (BK_EXIT_WITH_PARENT=1): exit when the test
// that started us is gone, even if it died without running its traps.
if (process.env.BK_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 500).unref()
}
