/* spool: a durable FIFO of records on disk, for ingest and every sink.
 *
 * Append-only segment files (seg-<n>) in one directory, a read cursor
 * (records handed out, not yet done) and an ack position (file `ack`)
 * before which every record is done.  Records are framed exactly like a
 * batch body (u32 length + bytes, see envelope.h), so a received batch is
 * appended with one write.
 *
 * Durability: appended data is in the page cache when spool_append
 * returns, so it survives a killed process; it survives a lost machine
 * after the next fdatasync, at most fsync_ms later (0: every append).
 * After a restart everything after the ack position is handed out again:
 * delivery is at least once.
 *
 * Bounded: appends block while the unacknowledged bytes exceed max_bytes
 * (back-pressure reaches the sender through its hop window).
 *
 * One process owns a spool directory at a time (flock on `lock`); a second
 * spool_open of the same directory fails with SPOOL_EBUSY.  All calls are
 * thread-safe. */
#ifndef IOTRULES_SPOOL_H
#define IOTRULES_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct spool spool;

typedef struct spool_opts {
	uint64_t max_bytes;      /* default 1 GiB */
	uint64_t segment_bytes;  /* default 64 MiB */
	int fsync_ms;            /* default 1000; 0 = every append */
} spool_opts;

#define SPOOL_OPTS_DEFAULT {1ull << 30, 64ull << 20, 1000}

enum { SPOOL_OK = 0, SPOOL_EIO = -1, SPOOL_EBUSY = -2, SPOOL_ECLOSED = -3, SPOOL_ETIMEDOUT = -4,
       SPOOL_EBATCH = -5 };

/* Opens (creating) dir.  On error returns NULL with a reason in err. */
spool *spool_open(const char *dir, const spool_opts *o, char *err, size_t errcap);

/* Appends count records framed in data (len bytes).  Blocks while full.
 * SPOOL_OK, SPOOL_EIO (disk error; nothing appended) or SPOOL_ECLOSED. */
int spool_append(spool *s, const void *data, size_t len, uint32_t count);

/* Appends a batch as it came over a hop (envelope.h: header, then the
 * records in spool framing) with one write.  Returns its record count,
 * SPOOL_EBATCH when the batch header is malformed (nothing appended), or
 * an error of spool_append. */
int spool_append_batch(spool *s, const void *batch, size_t len);

/* Hands out up to max_recs records (at most about max_bytes) after the read
 * cursor, appended framed to out.  Waits up to timeout_ms for one.  Returns
 * the number of records (0: none in time), or SPOOL_ECLOSED/SPOOL_EIO.  *ticket
 * names the batch for spool_done. */
int spool_next(spool *s, buf *out, int max_recs, size_t max_bytes, int timeout_ms, uint64_t *ticket);

/* Marks a handed-out batch done.  Batches may finish in any order; the ack
 * position moves over every finished batch at the head. */
int spool_done(spool *s, uint64_t ticket);

/* Records appended and not yet done. */
uint64_t spool_pending(spool *s);

/* Takes over the spools of instances that are gone: every directory under
 * parent, other than self, whose lock is free is opened and passed to fn,
 * which drains what it can; a directory left with nothing pending is
 * removed.  Spools whose owner is alive are skipped.  Returns how many
 * were adopted. */
int spool_adopt_orphans(const char *parent, const char *self,
    void (*fn)(spool *orphan, const char *name, void *arg), void *arg);

/* Wakes blocked callers: they (and later calls) return SPOOL_ECLOSED. */
void spool_shutdown(spool *s);

/* Syncs and frees.  No other thread may be inside a call (shut down and
 * join them first). */
void spool_close(spool *s);

#endif
