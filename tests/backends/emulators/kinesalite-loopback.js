// kinesalite's CLI has no --host: this runs it on 127.0.0.1 only.
// Usage: node kinesalite-loopback.js PORT [DATA_DIR]  (PORT 0 = any free port).
// Prints "listening <port>" once it accepts connections.
'use strict'
const path = require('path')
const kinesalite = require(path.join(__dirname, '..', 'node_modules', 'kinesalite'))
// With a data directory as the second argument the streams persist in it
// (LevelDB), so a test can kill the emulator and start it again.
const opts = { createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100 }
if (process.argv[3]) opts.path = process.argv[3]
const server = kinesalite(opts)
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log('listening %d', server.address().port)
})
process.on('SIGTERM', () => process.exit(0))
// Under tests/backends/lib.sh (BK_EXIT_WITH_PARENT=1): exit when the test
// that started us is gone, even if it died without running its traps.
if (process.env.BK_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 500).unref()
}
