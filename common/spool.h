/* spool: a durable FIFO of records on disk, for ingest and every sink.
 *
 * Append-only segment files (seg-<n>) in one directory, a read cursor
 * (records handed out, not yet done) and an ack position (file `ack`)
 * before which every record is done.  Callers see records framed exactly
 * like a batch body (u32 length + bytes, see envelope.h), both when they
 * append and when they read; on disk each record carries a checksum.
 *
 * On disk (integers little endian):
 *
 *   record   u32 SPOOL_REC_MAGIC, u32 len, u32 crc, len bytes
 *            crc = crc32 (zlib) over the first 8 header bytes, then the
 *            len bytes.  12 bytes of overhead per record.
 *   skip     u32 SPOOL_SKIP_MAGIC, u32 len, u32 crc, len bytes ignored
 *            crc over the first 8 header bytes only.  Written over the
 *            start of a damaged region, so offsets stay valid and readers
 *            pass over it without reporting it again.
 *   ack      8192 bytes, two 32-byte slots at offsets 0 and 4096:
 *            u64 seq, u64 seg, u64 off, u32 SPOOL_ACK_MAGIC, u32 crc
 *            (crc32 of the 28 bytes before it).  An all-zero slot was
 *            never written.
 *   damaged-<seg>-<offset>, damaged-ack-<time>  (then .1, .2, ...)
 *            bytes that failed their check, copied out verbatim.  The
 *            spool never reads, overwrites or removes them: they are for
 *            a human.
 *
 * Crash consistency.  An ack write goes to slot seq % 2, so it never
 * overwrites the newest complete slot; the file is written in full when
 * created, so writing a slot needs no new disk block (it works on a full
 * disk).  Open takes the valid slot with the highest seq.  Before space
 * below the ack is reclaimed (segments unlinked, blocks punched out),
 * the same position is written to both slots and synced: whatever slot
 * survives a crash then points at or after the reclaimed space.  An ack
 * that fails its check is never used to delete or cut anything: with
 * both slots damaged the file is copied aside and delivery restarts at
 * the oldest segment present (duplicates, never loss); a hole there (space
 * punched out under an ack now lost) is passed over.
 *
 * Corruption.  Open verifies every record after the ack; spool_next
 * verifies each record again as it copies it out.  A record that fails
 * (bad magic, impossible length, crc mismatch) starts a damaged region,
 * which ends at the next offset where a record's header and crc verify.
 * The region is copied to damaged-<seg>-<offset> (0600, synced), then a
 * skip header is written over its start; after a crash in between, the
 * next open finds the region again and its copy already there (a file
 * of that name holding other bytes is kept; the copy gets a suffix).
 * An error is logged ("spool",
 * "segment", "offset", "bytes", "records", "saved_to"), where records is
 * 1 plus each further record magic inside the region.  Intact records
 * before and after are delivered, in order.  A region running to the end
 * of the last segment at open is a torn tail (a write cut short by a
 * crash): copied aside the same way, then cut off, logged as a warning and
 * not counted by spool_damaged.  Bytes that could not be copied aside are
 * left in place (reported again on the next open), never overwritten.
 * Damage found by spool_next (bytes changed after open) makes the count
 * of spool_pending an estimate until everything is acknowledged; it
 * never reads 0 while unacknowledged bytes remain.
 *
 * Spools written before records carried a checksum (an ack of 0 or 16
 * bytes) are converted on open: each segment is rewritten to conv-<n>,
 * the new ack is put in place, then conv-<n> replaces seg-<n>; an open
 * after a crash discards or finishes the conversion.
 *
 * Cost: spool_append converts and checksums the records in a per-thread
 * buffer before it takes the lock, then writes them with one pwrite, as
 * before; spool_next checks each crc while moving the record into out.
 *
 * Durability: appended data is in the page cache when spool_append
 * returns, so it survives a killed process; it survives a lost machine
 * after the next fdatasync, at most fsync_ms later (0: every append).
 * After a restart everything after the ack position is handed out again:
 * delivery is at least once.
 *
 * Space: acknowledged bytes are given back as the ack moves: segments
 * behind it are unlinked, and the acknowledged blocks of its segment are
 * punched out (fallocate) once 256 KiB have gathered, or any whole block
 * while appends are short of space.  The sync thread does it right after
 * syncing the ack, within fsync_ms and never on a caller's thread (with
 * fsync_ms 0: in spool_done/spool_append, after the lock is released).
 * Where punching is not supported, a segment over 1 MiB is closed once
 * everything in it is done, so it can be unlinked.
 *
 * Bounded: appends block while the unacknowledged bytes on disk exceed
 * max_bytes (back-pressure reaches the sender through its hop window).
 * A full disk does not block: spool_append returns SPOOL_ENOSPC at once
 * and the caller decides (ingest holds its MQTT thread, a sink answers
 * "retry").  The spool logs it: a warning when appends first fail, a
 * reminder at most every 10 s, and "space is back" when one succeeds.
 *
 * Files are created 0600 and the directory 0700.  One process owns a
 * spool directory at a time (flock on `lock`); a second spool_open of the
 * same directory fails (NULL, errno EBUSY).  All calls are thread-safe. */
#ifndef IOTRULES_SPOOL_H
#define IOTRULES_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SPOOL_REC_MAGIC  0x31527053u   /* "SpR1" */
#define SPOOL_SKIP_MAGIC 0x314b7053u   /* "SpK1" */
#define SPOOL_ACK_MAGIC  0x31417053u   /* "SpA1" */
#define SPOOL_REC_HDR    12            /* magic, len, crc */

typedef struct spool spool;

typedef struct spool_opts {
	uint64_t max_bytes;      /* default 1 GiB */
	uint64_t segment_bytes;  /* default 64 MiB */
	int fsync_ms;            /* default 1000; 0 = every append */
} spool_opts;

#define SPOOL_OPTS_DEFAULT {1ull << 30, 64ull << 20, 1000}

enum { SPOOL_OK = 0, SPOOL_EIO = -1, SPOOL_EBUSY = -2, SPOOL_ECLOSED = -3, SPOOL_ETIMEDOUT = -4,
       SPOOL_EBATCH = -5, SPOOL_ENOSPC = -6 };

/* Opens (creating) dir, verifying what is not yet acknowledged (see
 * above: damage is moved aside and logged, never fatal).  On error
 * returns NULL with a reason in err. */
spool *spool_open(const char *dir, const spool_opts *o, char *err, size_t errcap);

/* Appends the records framed in data (len bytes, u32 length + bytes
 * each) with one write; the spool counts them from the framing (count
 * is the caller's figure and is not trusted).  Blocks while full.  The
 * caller keeps data.  Returns SPOOL_OK; SPOOL_EBATCH if the framing is
 * malformed or a record exceeds 64 MiB; SPOOL_ENOSPC if the disk (or
 * quota) is full; SPOOL_EIO for another disk error; SPOOL_ECLOSED.  On
 * any error nothing was appended and the segment is as it was. */
int spool_append(spool *s, const void *data, size_t len, uint32_t count);

/* Makes everything appended so far durable now (fdatasync of the
 * current segment; segments left behind were synced when left), on the
 * caller's thread, whatever fsync_ms says.  For a caller that must know
 * its records reached the disk before it lets go of another copy (ingest
 * deleting a journal file).  SPOOL_OK or SPOOL_EIO. */
int spool_sync(spool *s);

/* Appends a batch as it came over a hop (envelope.h: header, then the
 * records in spool framing) with one write.  Returns its record count,
 * SPOOL_EBATCH when the batch is malformed (nothing appended), or an
 * error of spool_append. */
int spool_append_batch(spool *s, const void *batch, size_t len);

/* Hands out up to max_recs records (at most about max_bytes) after the read
 * cursor, appended framed to out, each verified against its checksum.
 * Waits up to timeout_ms for one.  Returns the number of records (0: none
 * in time, or only damaged or skipped bytes were passed over), or
 * SPOOL_ECLOSED/SPOOL_EIO.  *ticket names the batch for spool_done. */
int spool_next(spool *s, buf *out, int max_recs, size_t max_bytes, int timeout_ms, uint64_t *ticket);

/* Marks a handed-out batch done.  Batches may finish in any order; the ack
 * position moves over every finished batch at the head, and the space
 * behind it is reclaimed. */
int spool_done(spool *s, uint64_t ticket);

/* Records appended and not yet done.  0 only when everything on disk
 * before the write position is acknowledged. */
uint64_t spool_pending(spool *s);

/* Bytes on disk appended and not yet done (records and their framing). */
uint64_t spool_pending_bytes(spool *s);

/* Damaged records found (on open and while reading) since spool_open:
 * records lost to corruption, each also logged with where its bytes were
 * saved.  Torn tails are not counted. */
uint64_t spool_damaged(spool *s);

/* Takes over the spools of instances that are gone: every directory under
 * parent, other than self, whose lock is free is opened and passed to fn,
 * which drains what it can; a spool left with nothing pending has its own
 * files (seg-*, ack, lock) removed, and its directory too unless damaged-*
 * files remain there.  A directory holding only such leftovers is not
 * opened again.  Spools whose owner is alive are skipped.  Returns how
 * many were adopted. */
int spool_adopt_orphans(const char *parent, const char *self,
    void (*fn)(spool *orphan, const char *name, void *arg), void *arg);

/* Wakes blocked callers: they (and later calls) return SPOOL_ECLOSED. */
void spool_shutdown(spool *s);

/* Syncs and frees.  No other thread may be inside a call (shut down and
 * join them first). */
void spool_close(spool *s);

#endif
