/* journal: the hand-off from the mosquitto plugin (the writer, inside the
 * broker) to ingest (the reader): a directory of append-only segment
 * files, each record made durable before the writer returns.
 *
 * The writer runs inside the broker's only thread, so this module starts
 * no thread, takes no lock that another process holds for long, and uses
 * nothing but the C library and zlib (crc32).
 *
 * On disk (integers little endian), files j-<20 digits>, numbered up:
 *
 *   record   u32 JOURNAL_REC_MAGIC, u32 len, u32 crc, len bytes
 *            crc = crc32 over the first 8 bytes, then the len bytes
 *   cursor   (reader) u64 segment, u64 offset: where the reader stopped.
 *            Written without a sync: a lost cursor only means records
 *            read again (duplicates downstream, never loss).
 *   writer.lock, reader.lock   flock'ed: one broker and one ingest per
 *            directory (a second open fails).
 *
 * Permissions: the directory is created 0770 and segments 0640, so an
 * ingest in the broker user's group can read them and delete them; the
 * cursor is ingest's.
 *
 * Segments.  A writer never appends to a segment it did not create: it
 * starts a new one when it opens (after a crash the old one may end in a
 * torn record) and when the current one reaches segment_bytes.  So a
 * segment is final ("sealed") as soon as a higher-numbered one exists,
 * and only the last bytes of a segment can be torn.  A write that fails
 * is cut off again (ftruncate); if that fails too, the writer moves to a
 * new segment, so the bad bytes stay at a segment's tail.
 *
 * Durability and deletion.  journal_append with sync returns JOURNAL_OK
 * only after write + fdatasync of the whole record; without sync, once it
 * is written (the page cache: it survives the writer's process, and
 * reaches the disk at the next journal_writer_sync or journal_sync_dir).  The reader hands out records
 * of one segment; the caller makes them durable elsewhere (ingest: its
 * spool, synced), then calls journal_consumed, which moves the cursor and
 * unlinks the segment when it is sealed and every record of it has been
 * handed out.  A segment is therefore deleted only after everything it
 * holds is stored durably by the caller; a crash of either side before
 * that leaves the segment in place and its records are read again.
 *
 * Bound.  The writer refuses (JOURNAL_EFULL) a record that would take the
 * segment files over max_bytes.  It counts what it wrote; when the count
 * reaches the bound it sums the files again (the reader deletes), at most
 * once a second, so a full journal costs one directory scan a second.
 *
 * Errors: functions return JOURNAL_OK (0) or a negative JOURNAL_E*; the
 * open functions return NULL with a reason in err. */
#ifndef IOTRULES_JOURNAL_H
#define IOTRULES_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define JOURNAL_REC_MAGIC 0x314a7249u   /* "IrJ1" */
#define JOURNAL_REC_HDR 12
#define JOURNAL_REC_MAX (64u << 20)

enum { JOURNAL_OK = 0, JOURNAL_EIO = -1, JOURNAL_ENOSPC = -2, JOURNAL_EFULL = -3 };

typedef struct journal_writer journal_writer;

/* Opens dir (created 0700 if missing) for appending: takes writer.lock
 * (fails if another process holds it) and creates a new segment.
 * max_bytes 0: no bound; segment_bytes 0: 4 MiB. */
journal_writer *journal_writer_open(const char *dir, uint64_t max_bytes, uint64_t segment_bytes,
    char *err, size_t errcap);
/* Appends one record of len bytes (the caller keeps rec) and, if sync,
 * syncs it (fdatasync, which also syncs the records before it).
 * JOURNAL_OK: the record is on disk (without sync: in the page cache,
 * which survives the process but not the machine).  JOURNAL_EFULL: the bound is
 * reached; JOURNAL_ENOSPC: the disk or quota is full; JOURNAL_EIO:
 * another error (errno says which).  On any error the record is not in
 * the journal (nothing of it is read back). */
int journal_append(journal_writer *w, const void *rec, size_t len, int sync);
/* Bytes of the segment files as last counted by the writer. */
uint64_t journal_writer_bytes(const journal_writer *w);
/* Syncs (fdatasync) what was appended without sync since the last sync.
 * JOURNAL_OK, or JOURNAL_ENOSPC/JOURNAL_EIO (errno says why; the records
 * are still in the page cache, and later ones go to a new segment). */
int journal_writer_sync(journal_writer *w);
/* Syncs (fdatasync) every segment file in dir, from any process: the
 * reader's side calls it now and then, so that the writer (inside the
 * broker) never waits for the disk.  JOURNAL_OK, or JOURNAL_EIO/ENOSPC
 * with errno. */
int journal_sync_dir(const char *dir);
/* Whether anything appended is not synced yet. */
int journal_writer_dirty(const journal_writer *w);
void journal_writer_close(journal_writer *w);

typedef struct journal_reader journal_reader;

/* Opens dir for reading from the cursor (or the oldest segment); takes
 * reader.lock (fails if another process holds it). */
journal_reader *journal_reader_open(const char *dir, char *err, size_t errcap);
/* Appends to out, framed as u32 length + bytes each (envelope.h batch
 * framing), up to max_recs whole records (about max_bytes) of the oldest
 * segment not yet consumed, each checked against its crc.  Returns how
 * many (0: nothing new), or JOURNAL_EIO.  A torn or damaged tail of a
 * sealed segment is passed over and counted (journal_reader_torn): it was
 * never acknowledged to a publisher, see above.  Until journal_consumed
 * the same records are handed out again by the next call. */
int journal_read(journal_reader *r, buf *out, int max_recs, size_t max_bytes);
/* Bytes of torn tails passed over since open (for the caller to log:
 * this module writes no log, so the plugin can link it alone). */
uint64_t journal_reader_torn(const journal_reader *r);
/* What the last journal_read returned is stored by the caller: moves
 * the cursor past it, and unlinks the segment if it is sealed and now
 * fully read (journal_read does the same for such a segment it meets).
 * JOURNAL_OK or JOURNAL_EIO (the unlink, or the durable hook, failed). */
int journal_consumed(journal_reader *r);
/* Before any unlink the reader calls durable(arg), which makes what the
 * caller stored durable (ingest: syncs its spool) and returns 0;
 * otherwise the segment stays, to be unlinked by a later call.  So a
 * caller that syncs its own store only now and then (ingest's fsync_ms)
 * syncs once per segment, not once per batch.  NULL (the default): no
 * hook, the caller's store is durable when journal_consumed is called. */
void journal_reader_set_durable(journal_reader *r, int (*durable)(void *arg), void *arg);
void journal_reader_close(journal_reader *r);

#endif
