/* Unit tests of journal: append and read back, segments sealed and
 * deleted only once consumed, a torn tail passed over, the bound, one
 * writer and one reader per directory, the cursor across a reopen. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/journal.h"
#include "tests/unit/tap.h"

static int
nsegs(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "j-", 2) == 0;
	if (d)
		closedir(d);
	return n;
}

static int
refuse(void *arg)
{
	(void)arg;
	return -1;
}

static int
count_ok(void *arg)
{
	(*(int *)arg)++;
	return 0;
}

/* The records of b (u32 length + bytes) as "a,b,c". */
static void
records(const buf *b, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	for (size_t at = 0; at + 4 <= b->len;) {
		const unsigned char *p = (const unsigned char *)b->data + at;
		uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? "," : "", (int)len, (const char *)p + 4);
		at += 4 + len;
	}
}

/* Reads and consumes everything there is: the records as "a,b" in all,
 * their number returned. */
static int
drain(journal_reader *r, buf *b, char *all, size_t cap)
{
	char got[4096];
	int total = 0, n;
	all[0] = 0;
	for (;;) {
		buf_reset(b);
		n = journal_read(r, b, 10, 1 << 20);
		if (n <= 0)
			return total;
		records(b, got, sizeof(got));
		if (strlen(all) + strlen(got) + 2 < cap) {
			strcat(all, all[0] ? "," : "");
			strcat(all, got);
		}
		total += n;
		journal_consumed(r);
	}
}

int
main(void)
{
	char dir[] = "/tmp/journal_test.XXXXXX", err[256], got[4096], path[600];
	if (mkdtemp(dir) == NULL)
		return 1;
	buf b = BUF_ZERO;

	/* --- append, read back, consume --- */
	journal_writer *w = journal_writer_open(dir, 0, 64, err, sizeof(err));
	ok(w != NULL, "writer opens (%s)", w ? "" : err);
	ok(journal_writer_open(dir, 0, 0, err, sizeof(err)) == NULL && strstr(err, "writer.lock"),
	    "a second writer is refused (%s)", err);
	journal_reader *r = journal_reader_open(dir, err, sizeof(err));
	ok(r != NULL, "reader opens");
	ok(journal_reader_open(dir, err, sizeof(err)) == NULL && strstr(err, "reader.lock"),
	    "a second reader is refused (%s)", err);
	ok(journal_read(r, &b, 10, 1 << 20) == 0, "an empty journal reads nothing");
	ok(journal_append(w, "one", 3, 1) == JOURNAL_OK && journal_append(w, "two", 3, 1) == JOURNAL_OK,
	    "two records appended");
	buf_reset(&b);
	int n = journal_read(r, &b, 10, 1 << 20);
	records(&b, got, sizeof(got));
	ok(n == 2 && strcmp(got, "one,two") == 0, "both read back in order (%d: %s)", n, got);
	buf_reset(&b);
	n = journal_read(r, &b, 10, 1 << 20);
	ok(n == 2, "not consumed: handed out again (%d)", n);
	ok(journal_consumed(r) == JOURNAL_OK, "consumed");
	buf_reset(&b);
	ok(journal_read(r, &b, 10, 1 << 20) == 0, "nothing after the cursor");

	/* --- segments: 64-byte segments hold 2 of these records --- */
	for (int i = 0; i < 6; i++) {
		char rec[32];
		snprintf(rec, sizeof(rec), "rec-%d-%010d", i, i);
		journal_append(w, rec, strlen(rec), 1);
	}
	int segs = nsegs(dir);
	ok(segs >= 3, "records spread over segments (%d)", segs);
	buf_reset(&b);
	n = journal_read(r, &b, 1, 1 << 20);
	ok(n == 1 && nsegs(dir) == segs, "a record read, not consumed: no segment deleted");
	/* Reopen the reader without consuming: the same record again. */
	journal_reader_close(r);
	r = journal_reader_open(dir, err, sizeof(err));
	char all[4096];
	int total = drain(r, &b, all, sizeof(all));
	ok(total == 6 && strncmp(all, "rec-0-", 6) == 0, "after a reopen every unconsumed record once (%d: %s)",
	    total, all);
	ok(nsegs(dir) == 1, "sealed segments deleted once consumed, the writer's kept (%d left)", nsegs(dir));

	/* --- a torn tail: a writer killed in the middle of a record --- */
	journal_append(w, "whole", 5, 1);
	journal_writer_close(w);
	DIR *d = opendir(dir);
	struct dirent *de;
	char last[300] = "";
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "j-", 2) == 0 && strcmp(de->d_name, last) > 0)
			snprintf(last, sizeof(last), "%.250s", de->d_name);
	closedir(d);
	snprintf(path, sizeof(path), "%s/%s", dir, last);
	int fd = open(path, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "IrJ1\x20\x00\x00\x00xxxxpart", 16) == 16, "half a record added to %s", last);
	close(fd);
	w = journal_writer_open(dir, 0, 64, err, sizeof(err));   /* the broker restarted */
	journal_append(w, "after", 5, 1);
	drain(r, &b, all, sizeof(all));
	ok(strcmp(all, "whole,after") == 0, "the torn record is passed over, both whole ones read (%s)", all);
	ok(journal_reader_torn(r) == 16, "the torn bytes are counted (%llu)",
	    (unsigned long long)journal_reader_torn(r));

	/* --- a corrupted record (crc) at a sealed tail is not handed out --- */
	journal_append(w, "good", 4, 1);
	journal_append(w, "flip", 4, 1);
	journal_writer_close(w);
	snprintf(path, sizeof(path), "%s/%s", dir, last);
	d = opendir(dir);
	last[0] = 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "j-", 2) == 0 && strcmp(de->d_name, last) > 0)
			snprintf(last, sizeof(last), "%.250s", de->d_name);
	closedir(d);
	snprintf(path, sizeof(path), "%s/%s", dir, last);
	fd = open(path, O_RDWR);
	off_t end = lseek(fd, 0, SEEK_END);
	ok(pwrite(fd, "X", 1, end - 1) == 1, "last byte of %s changed", last);
	close(fd);
	w = journal_writer_open(dir, 0, 64, err, sizeof(err));
	buf_reset(&b);
	all[0] = 0;
	while ((n = journal_read(r, &b, 10, 1 << 20)) > 0)
		journal_consumed(r);
	records(&b, all, sizeof(all));
	ok(strstr(all, "good") && !strstr(all, "fli"), "the changed record is not handed out (%s)", all);

	/* --- the bound --- */
	journal_writer_close(w);
	char dir2[] = "/tmp/journal_test.XXXXXX";
	if (mkdtemp(dir2) == NULL)
		return 1;
	w = journal_writer_open(dir2, 100, 0, err, sizeof(err));
	int okc = 0, rc;
	while ((rc = journal_append(w, "0123456789012345678", 19, 1)) == JOURNAL_OK)
		okc++;
	ok(rc == JOURNAL_EFULL && okc == 3, "the bound refuses the record that would pass it (%d taken, rc %d)", okc, rc);
	ok(journal_writer_bytes(w) <= 100, "bytes within the bound (%llu)", (unsigned long long)journal_writer_bytes(w));
	char big[100];
	memset(big, 'x', sizeof(big));
	ok(journal_append(w, big, sizeof(big), 1) == JOURNAL_EFULL, "a record larger than the bound is refused");
	journal_writer_close(w);

	/* --- writes without sync, and the durable hook before a delete --- */
	char dir3[] = "/tmp/journal_test.XXXXXX";
	if (mkdtemp(dir3) == NULL)
		return 1;
	w = journal_writer_open(dir3, 0, 45, err, sizeof(err));
	ok(journal_append(w, "unsynced", 8, 0) == JOURNAL_OK && journal_writer_dirty(w),
	    "a record appended without sync leaves the writer dirty");
	ok(journal_writer_sync(w) == JOURNAL_OK && !journal_writer_dirty(w), "journal_writer_sync cleans it");
	int a2 = journal_append(w, "second-one", 10, 0), a3 = journal_append(w, "third-one-x", 11, 0);
	int files = nsegs(dir3);
	ok(a2 == JOURNAL_OK && a3 == JOURNAL_OK && files == 2,
	    "a segment switch (45 bytes each) seals the first (%d files)", files);
	ok(!journal_writer_dirty(w) || journal_writer_sync(w) == JOURNAL_OK, "the writer syncs the new segment");
	ok(journal_sync_dir(dir3) == JOURNAL_OK, "journal_sync_dir syncs every segment (the reader's side)");
	ok(journal_sync_dir("/nonexistent/journal") == JOURNAL_EIO, "journal_sync_dir on a missing directory: EIO");
	journal_reader *r3 = journal_reader_open(dir3, err, sizeof(err));
	buf_reset(&b);
	n = journal_read(r3, &b, 10, 1 << 20);
	journal_reader_set_durable(r3, refuse, NULL);
	int crc = journal_consumed(r3);
	files = nsegs(dir3);
	ok(n == 2 && crc == JOURNAL_EIO && files == 2,
	    "a sealed segment read to its end stays when the durable hook fails (%d records, %d files)", n, files);
	buf_reset(&b);
	n = journal_read(r3, &b, 10, 1 << 20);
	records(&b, all, sizeof(all));
	ok(n == JOURNAL_EIO && b.len == 0, "its records are not handed out again: journal_read fails while the "
	    "hook does (%d)", n);
	int calls = 0;
	journal_reader_set_durable(r3, count_ok, &calls);
	crc = journal_consumed(r3);
	files = nsegs(dir3);
	ok(crc == JOURNAL_OK && calls == 1 && files == 1, "and goes once the hook succeeds (%d call, %d file)", calls,
	    files);
	buf_reset(&b);
	n = journal_read(r3, &b, 10, 1 << 20);
	records(&b, all, sizeof(all));
	crc = journal_consumed(r3);
	ok(n == 1 && strcmp(all, "third-one-x") == 0 && crc == JOURNAL_OK && calls == 1,
	    "the current segment is read without calling the hook (%s, %d call)", all, calls);
	journal_reader_close(r3);
	journal_writer_close(w);

	journal_reader_close(r);
	buf_free(&b);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s", dir, dir2, dir3);
	if (system(cmd) != 0)
		return 1;
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
