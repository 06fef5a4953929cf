// dynalite on 127.0.0.1, on any free port, printing the port it got (its
// CLI turns port 0 into 4567).  Usage: node dynalite-loopback.js PORT.
// Prints "listening <port>".  Tables are created in 50 ms.
'use strict'
const path = require('path')
const dynalite = require(path.join(__dirname, '..', 'node_modules', 'dynalite'))
const server = dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 })
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
