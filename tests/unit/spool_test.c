/* Unit tests of the envelope framing and the spool. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/envelope.h"
#include "common/spool.h"
#include "tests/unit/tap.h"

static void
one_record(buf *b, const char *topic, const char *payload)
{
	envelope e = {0};
	e.kind = ENV_MESSAGE;
	e.ts_ms = 42;
	e.s[ENV_TOPIC] = env_str(topic);
	e.s[ENV_PAYLOAD] = env_str(payload);
	env_append(b, &e);
}

/* Several readers at once, as a sink's delivery threads are: every
 * record must be handed out exactly once and no reader may sleep through
 * records that are there (appends wake one reader, readers chain). */
#define READERS 6
#define RECORDS 3000
static spool *mr_spool;
static int mr_seen[RECORDS];
static pthread_mutex_t mr_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
mr_reader(void *arg)
{
	(void)arg;
	buf out = BUF_ZERO;
	for (;;) {
		uint64_t t;
		buf_reset(&out);
		int n = spool_next(mr_spool, &out, 7, 1 << 20, 50, &t);
		if (n == SPOOL_ECLOSED)
			break;
		if (n <= 0)
			continue;
		env_iter it = {out.data, out.data + out.len, UINT32_MAX, 0};
		envelope e;
		while (env_batch_next_env(&it, ENV_MESSAGE, &e)) {
			char num[16] = {0};
			memcpy(num, e.s[ENV_PAYLOAD].p, e.s[ENV_PAYLOAD].n < 15 ? e.s[ENV_PAYLOAD].n : 15);
			int k = atoi(num);
			pthread_mutex_lock(&mr_mu);
			if (k >= 0 && k < RECORDS)
				mr_seen[k]++;
			pthread_mutex_unlock(&mr_mu);
		}
		spool_done(mr_spool, t);
	}
	buf_free(&out);
	return NULL;
}

static void
many_readers(const char *dir)
{
	char err[256];
	spool_opts o = {1 << 20, 1 << 16, 5};   /* small segments, syncer on */
	mr_spool = spool_open(dir, &o, err, sizeof(err));
	if (!ok(mr_spool != NULL, "spool for concurrent readers opens: %s", mr_spool ? "" : err))
		return;
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, mr_reader, NULL);
	buf r = BUF_ZERO;
	for (int k = 0; k < RECORDS; k++) {
		char num[16];
		snprintf(num, sizeof(num), "%d", k);
		buf_reset(&r);
		one_record(&r, "t", num);
		if (spool_append(mr_spool, r.data, r.len, 1) != SPOOL_OK)
			break;
		if (k % 500 == 0)
			usleep(2000);   /* let readers go idle and be woken again */
	}
	for (int i = 0; i < 400 && spool_pending(mr_spool) > 0; i++)
		usleep(10000);
	ok(spool_pending(mr_spool) == 0, "%d concurrent readers drain %d records (pending %llu)", READERS, RECORDS,
	    (unsigned long long)spool_pending(mr_spool));
	spool_shutdown(mr_spool);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	int once = 1;
	for (int k = 0; k < RECORDS; k++) {
		if (mr_seen[k] != 1)
			printf("# record %d seen %d times\n", k, mr_seen[k]);
		once &= mr_seen[k] == 1;
	}
	ok(once, "each record handed out exactly once");
	spool_close(mr_spool);
	buf_free(&r);
}

static int adopted_records;

static void
drain_all(spool *o, const char *name, void *arg)
{
	(void)arg;
	buf b = BUF_ZERO;
	uint64_t t;
	int n;
	ok(strcmp(name, "gone") == 0, "the orphan is passed by name (%s)", name);
	while ((n = spool_next(o, &b, 100, 1 << 20, 10, &t)) > 0) {
		adopted_records += n;
		spool_done(o, t);
		buf_reset(&b);
	}
	buf_free(&b);
}

/* A spool whose owner is gone is handed to a sibling and removed once
 * drained; one whose owner holds its lock is left alone. */
static void
orphans(const char *parent)
{
	char gone[4200], alive[4200], err[256];
	snprintf(gone, sizeof(gone), "%s/gone", parent);
	snprintf(alive, sizeof(alive), "%s/alive", parent);
	spool *g1 = spool_open(gone, NULL, err, sizeof(err));
	spool *a1 = spool_open(alive, NULL, err, sizeof(err));
	buf r = BUF_ZERO;
	for (int i = 0; i < 5; i++)
		one_record(&r, "t", "x");
	spool_append(g1, r.data, r.len, 5);
	spool_append(a1, r.data, r.len, 5);
	spool_shutdown(g1);
	spool_close(g1);   /* its owner is gone; a1's still holds the lock */
	int n = spool_adopt_orphans(parent, "self", drain_all, NULL);
	struct stat st;
	ok(n == 1 && adopted_records == 5, "the orphan's 5 records are adopted (%d spool(s), %d records)", n, adopted_records);
	ok(stat(gone, &st) < 0 && stat(alive, &st) == 0, "the drained orphan is removed, the live spool stays");
	spool_shutdown(a1);
	spool_close(a1);
	buf_free(&r);
}

/* ---- integrity, damage, reclaim, disk full --------------------------- */

/* TAP skip: counted as neither pass nor failure by prove. */
static void
skip(const char *why)
{
	printf("ok %d # skip %s\n", ++tap_n, why);
	fflush(stdout);
}

static int saved_stderr = -1;

/* Log lines go to stderr: tests that look at them send it to a file. */
static void
capture(const char *path)
{
	fflush(stderr);
	saved_stderr = dup(2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
}

static void
uncapture(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	buf b = BUF_ZERO;
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(&b, tmp, n);
	fclose(f);
	buf_add(&b, "", 0);
	if (len)
		*len = b.len;
	return b.data;
}

static int
spit(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
	return fclose(f) == 0 ? rc : -1;
}

static int
file_has(const char *path, const char *needle)
{
	char *s = slurp(path, NULL);
	int r = s && strstr(s, needle) != NULL;
	free(s);
	return r;
}

/* The first file of dir whose name starts with prefix (sorted), or "". */
static int
find_file(const char *dir, const char *prefix, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[256] = "";
	int n = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		n++;
		if (best[0] == 0 || strcmp(de->d_name, best) < 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	if (d)
		closedir(d);
	snprintf(out, cap, "%s/%s", dir, best);
	return n;
}

static void
fresh(const char *dir)
{
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		abort();
}

/* Record k: topic "t/<k>", a payload of plen bytes. */
static void
rec_k(buf *b, int k, size_t plen)
{
	char topic[32], payload[4096];
	snprintf(topic, sizeof(topic), "t/%d", k);
	memset(payload, 'a' + k % 26, plen);
	payload[plen] = 0;
	one_record(b, topic, payload);
}

static spool *
filled(const char *dir, const spool_opts *o, int n, size_t plen)
{
	char err[256];
	spool *s = spool_open(dir, o, err, sizeof(err));
	if (s == NULL) {
		printf("# spool_open %s: %s\n", dir, err);
		return NULL;
	}
	buf b = BUF_ZERO;
	for (int k = 0; k < n; k++) {
		buf_reset(&b);
		rec_k(&b, k, plen);
		if (spool_append(s, b.data, b.len, 1) != SPOOL_OK)
			printf("# append %d failed\n", k);
	}
	buf_free(&b);
	return s;
}

static void
closed(spool *s)
{
	if (s) {
		spool_shutdown(s);
		spool_close(s);
	}
}

/* Reads everything (acknowledging it when ack is set) into ids; returns
 * how many records came, or -1 if one did not decode. */
static int
drain_ids(spool *s, int *ids, int cap, int ack)
{
	buf out = BUF_ZERO;
	uint64_t t;
	int n, got = 0, bad = 0;
	while ((n = spool_next(s, &out, 1000, 1 << 20, 20, &t)) > 0) {
		env_iter it = {out.data, out.data + out.len, (uint32_t)n, 0};
		envelope e;
		while (env_batch_next_env(&it, ENV_MESSAGE, &e)) {
			char num[16] = {0};
			memcpy(num, e.s[ENV_TOPIC].p + 2, e.s[ENV_TOPIC].n - 2 < 15 ? e.s[ENV_TOPIC].n - 2 : 15);
			if (got < cap)
				ids[got] = atoi(num);
			got++;
		}
		bad += (int)it.bad;
		if (ack)
			spool_done(s, t);
		buf_reset(&out);
	}
	buf_free(&out);
	return bad ? -1 : got;
}

/* Offsets of the records in a segment, read with the documented format. */
static int
rec_offsets(const char *seg, uint64_t *offs, int cap, uint64_t *size)
{
	size_t len;
	unsigned char *p = (unsigned char *)slurp(seg, &len);
	int n = 0;
	uint64_t off = 0;
	while (p && off + SPOOL_REC_HDR <= len && n < cap) {
		uint32_t l = (uint32_t)p[off + 4] | (uint32_t)p[off + 5] << 8 | (uint32_t)p[off + 6] << 16 |
		    (uint32_t)p[off + 7] << 24;
		offs[n++] = off;
		off += SPOOL_REC_HDR + l;
	}
	offs[n] = off;
	*size = len;
	free(p);
	return n;
}

static int
in_order_without(const int *ids, int n, int total, const int *missing, int nmissing)
{
	int k = 0;
	for (int want = 0; want < total; want++) {
		int skip_it = 0;
		for (int m = 0; m < nmissing; m++)
			skip_it |= missing[m] == want;
		if (skip_it)
			continue;
		if (k >= n || ids[k] != want)
			return 0;
		k++;
	}
	return k == n;
}

/* ids are first, first + 1, ... */
static int
run_of(const int *ids, int n, int first)
{
	for (int i = 0; i < n; i++)
		if (ids[i] != first + i)
			return 0;
	return n > 0;
}

static void
scribble(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, p, n, (off_t)off) != (ssize_t)n)
		abort();
	close(fd);
}

/* (a) A crash cut the last record short at any byte: the records before
 * it are all there, and the torn bytes are in a damaged-* file. */
static void
torn_tails(const char *dir, const char *logf)
{
	spool_opts o = {1 << 20, 1 << 20, 0};
	char seg[4300], dmg[4300], err[256];
	uint64_t offs[8], size;
	fresh(dir);
	closed(filled(dir, &o, 5, 40));
	find_file(dir, "seg-", seg, sizeof(seg));
	size_t len;
	char *orig = slurp(seg, &len);
	rec_offsets(seg, offs, 7, &size);
	uint64_t last = offs[4];
	int cuts = 0, all = 1, saved = 0, cut_back = 0, uncounted = 1;
	capture(logf);
	for (uint64_t cut = last + 1; cut < len; cut++, cuts++) {
		char cmd[4400];
		snprintf(cmd, sizeof(cmd), "rm -f %s/damaged-*", dir);
		if (system(cmd) != 0 || spit(seg, orig, cut) < 0)
			abort();
		spool *s = spool_open(dir, &o, err, sizeof(err));
		int ids[8], n = s ? drain_ids(s, ids, 8, 0) : -2;
		all &= n == 4 && in_order_without(ids, n, 4, NULL, 0) && spool_pending(s) == 4;
		uncounted &= s && spool_damaged(s) == 0;
		closed(s);
		snprintf(dmg, sizeof(dmg), "%s/damaged-%012d-%012llu", dir, 1, (unsigned long long)last);
		size_t dl, sl;
		char *d = slurp(dmg, &dl), *sg = slurp(seg, &sl);
		saved += d && dl == cut - last && memcmp(d, orig + last, dl) == 0;
		cut_back += sg && sl == last;
		free(d);
		free(sg);
	}
	uncapture();
	ok(all, "torn tail cut at each of %d bytes: the 4 records before it come back, in order", cuts);
	ok(saved == cuts, "each time the torn bytes are in damaged-<seg>-<offset> (%d/%d)", saved, cuts);
	ok(cut_back == cuts, "and the segment ends at the last whole record (%d/%d)", cut_back, cuts);
	ok(uncounted && file_has(logf, "\"level\":\"warn\"") && file_has(logf, "torn tail"),
	    "a torn tail is logged as a warning, not counted as damage");
	/* Torn again at the same offset (a second crash at the same write
	 * position), with other bytes: the first copy is not overwritten. */
	char first[4300];
	size_t fl, dl;
	snprintf(first, sizeof(first), "%s/damaged-%012d-%012llu", dir, 1, (unsigned long long)last);
	char *f1 = slurp(first, &fl);
	spit(seg, orig, last + 3);
	capture(logf);
	closed(spool_open(dir, &o, err, sizeof(err)));
	uncapture();
	char *f2 = slurp(first, &dl);
	char again[4400];
	snprintf(again, sizeof(again), "%s.1", first);
	size_t nl;
	char *f3 = slurp(again, &nl);
	ok(f1 && f2 && dl == fl && memcmp(f1, f2, fl) == 0 && f3 && nl == 3 && memcmp(f3, orig + last, 3) == 0,
	    "a second torn tail at the same offset goes to %s, the first copy stays", strrchr(again, '/') + 1);
	free(f1);
	free(f2);
	free(f3);
	free(orig);
}

/* (b) 16 bytes scribbled inside record k of 100, found on open; then the
 * same found while reading. */
static void
scribbled_payload(const char *dir, const char *logf)
{
	spool_opts o = {1 << 20, 1 << 20, 0};
	char seg[4300], dmg[4300], err[256];
	uint64_t offs[110], size;
	const int k = 42;
	fresh(dir);
	closed(filled(dir, &o, 100, 60));
	find_file(dir, "seg-", seg, sizeof(seg));
	rec_offsets(seg, offs, 101, &size);
	unsigned char junk[16];
	memset(junk, 0xa5, sizeof(junk));
	scribble(seg, offs[k] + SPOOL_REC_HDR + 20, junk, sizeof(junk));
	size_t sl;
	char *before = slurp(seg, &sl);
	capture(logf);
	spool *s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	int ids[128], n = s ? drain_ids(s, ids, 128, 0) : -1;
	uint64_t dmgd = s ? spool_damaged(s) : 0;
	ok(dmgd == 1, "scribbled record: spool_damaged() reports 1 (%llu)", (unsigned long long)dmgd);
	ok(n == 99 && n == 100 - (int)dmgd && in_order_without(ids, n, 100, &k, 1),
	    "the other 99 records come back in order, without record %d (%d)", k, n);
	snprintf(dmg, sizeof(dmg), "%s/damaged-%012d-%012llu", dir, 1, (unsigned long long)offs[k]);
	size_t dl;
	char *d = slurp(dmg, &dl);
	ok(d && dl == offs[k + 1] - offs[k] && memcmp(d, before + offs[k], dl) == 0 &&
	    memcmp(d + SPOOL_REC_HDR + 20, junk, sizeof(junk)) == 0,
	    "the damaged record's bytes, scribble included, are in %s", strrchr(dmg, '/') + 1);
	ok(file_has(logf, "\"level\":\"error\"") && file_has(logf, "\"records\":1") &&
	    file_has(logf, "\"saved_to\":\"") && file_has(logf, "\"segment\":1"),
	    "an error is logged with segment, offset, records and where the bytes went");
	struct stat st;
	ok(d && stat(dmg, &st) == 0 && (st.st_mode & 0777) == 0600, "the damaged file is 0600");
	free(d);
	closed(s);
	capture(logf);
	s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	n = s ? drain_ids(s, ids, 128, 0) : -1;
	ok(n == 99 && spool_damaged(s) == 0 && !file_has(logf, "damaged"),
	    "reopened: the region was marked, so 99 records and nothing reported again");
	closed(s);
	/* A crash after the copy, before the mark: the next open finds the
	 * same region, and its copy already there. */
	spit(seg, before, sl);
	capture(logf);
	s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	n = s ? drain_ids(s, ids, 128, 0) : -1;
	ok(n == 99 && spool_damaged(s) == 1 && find_file(dir, "damaged-", dmg, sizeof(dmg)) == 1,
	    "crash between copy and mark: found again, 99 records, still one damaged file");
	closed(s);
	free(before);

	/* Found while reading: the spool was open (and verified) when the
	 * bytes changed. */
	const int k2 = 70;
	fresh(dir);
	s = filled(dir, &o, 100, 60);
	find_file(dir, "seg-", seg, sizeof(seg));
	rec_offsets(seg, offs, 101, &size);
	scribble(seg, offs[k2] + SPOOL_REC_HDR + 5, junk, sizeof(junk));
	capture(logf);
	n = s ? drain_ids(s, ids, 128, 1) : -1;
	uncapture();
	ok(n == 99 && spool_damaged(s) == 1 && in_order_without(ids, n, 100, &k2, 1) && spool_pending(s) == 0,
	    "damage found by spool_next: 99 records in order, 1 damaged, nothing left pending (%d)", n);
	snprintf(dmg, sizeof(dmg), "%s/damaged-%012d-%012llu", dir, 1, (unsigned long long)offs[k2]);
	ok(stat(dmg, &st) == 0 && (uint64_t)st.st_size == offs[k2 + 1] - offs[k2], "and its bytes are saved aside");
	closed(s);
}

/* (c) A header (magic and length) scribbled over, and a length changed
 * to another plausible value: readers resynchronise on the next record. */
static void
scribbled_header(const char *dir, const char *logf)
{
	spool_opts o = {1 << 20, 1 << 20, 0};
	char seg[4300], err[256];
	uint64_t offs[110], size;
	int lost[2] = {10, 60};
	fresh(dir);
	closed(filled(dir, &o, 100, 60));
	find_file(dir, "seg-", seg, sizeof(seg));
	rec_offsets(seg, offs, 101, &size);
	unsigned char ff[8];
	memset(ff, 0xff, sizeof(ff));
	scribble(seg, offs[lost[0]], ff, sizeof(ff));
	unsigned char l4[4];
	uint32_t shorter = (uint32_t)(offs[lost[1] + 1] - offs[lost[1]] - SPOOL_REC_HDR - 10);
	for (int i = 0; i < 4; i++)
		l4[i] = (unsigned char)(shorter >> (8 * i));
	scribble(seg, offs[lost[1]] + 4, l4, 4);
	capture(logf);
	spool *s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	int ids[128], n = s ? drain_ids(s, ids, 128, 1) : -1;
	uint64_t dmgd = s ? spool_damaged(s) : 0;
	ok(dmgd == 2 && n == 98 && in_order_without(ids, n, 100, lost, 2),
	    "header and length scribbled: resynchronised, 98 records in order, 2 damaged (%d, %llu)", n,
	    (unsigned long long)dmgd);
	closed(s);
}

/* (d) One ack slot damaged: the other is used.  Both: everything present
 * is delivered again, nothing is deleted, the ack file is kept aside. */
static void
ack_slots(const char *dir, const char *logf)
{
	spool_opts o = {1 << 20, 1 << 20, 0};
	char ackp[4300], seg[4300], aside[4300], err[256];
	fresh(dir);
	spool *s = filled(dir, &o, 100, 30);
	buf out = BUF_ZERO;
	for (int i = 0; i < 5; i++) {
		uint64_t t;
		buf_reset(&out);
		spool_next(s, &out, 10, 1 << 20, 10, &t);
		spool_done(s, t);
	}
	buf_free(&out);
	closed(s);
	snprintf(ackp, sizeof(ackp), "%s/ack", dir);
	find_file(dir, "seg-", seg, sizeof(seg));
	size_t alen, slen0, slen;
	char *ack = slurp(ackp, &alen), *seg0 = slurp(seg, &slen0);
	struct stat st;
	ok(ack && alen == 8192 && stat(ackp, &st) == 0 && (st.st_mode & 0777) == 0600, "the ack file is 8 KiB, 0600");
	/* Five acks: seq 5 (after 50 records) in slot 1, seq 4 (after 40)
	 * in slot 0. */
	struct {
		size_t at;
		int first, pending;
		const char *what;
	} c[] = {{4096 + 17, 40, 60, "newest slot damaged: the older one is used (10 records again)"},
		 {9, 50, 50, "older slot damaged: the newest one is used"}};
	for (int i = 0; i < 2; i++) {
		char *a = malloc(alen);
		memcpy(a, ack, alen);
		a[c[i].at] ^= 0x40;
		spit(ackp, a, alen);
		free(a);
		capture(logf);
		s = spool_open(dir, &o, err, sizeof(err));
		uncapture();
		int ids[128], n = s ? drain_ids(s, ids, 128, 0) : -1;
		ok(s && n == c[i].pending && run_of(ids, n, c[i].first) && ids[n - 1] == 99 &&
		    find_file(dir, "damaged-ack", aside, sizeof(aside)) == 0, "%s", c[i].what);
		closed(s);
		spit(ackp, ack, alen);
	}
	char *a = malloc(alen);
	memcpy(a, ack, alen);
	a[9] ^= 0x40;
	a[4096 + 17] ^= 0x40;
	spit(ackp, a, alen);
	capture(logf);
	s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	int ids[128], n = s ? drain_ids(s, ids, 128, 0) : -1;
	ok(n == 100 && in_order_without(ids, n, 100, NULL, 0), "both slots damaged: all 100 records present come "
	    "again (%d)", n);
	char *seg1 = slurp(seg, &slen);
	ok(seg1 && slen == slen0 && memcmp(seg0, seg1, slen) == 0, "the segment is untouched");
	size_t asl;
	char *as = find_file(dir, "damaged-ack-", aside, sizeof(aside)) == 1 ? slurp(aside, &asl) : NULL;
	ok(as && asl == alen && memcmp(as, a, alen) == 0 && file_has(logf, "both ack slots"),
	    "the damaged ack file is kept as %s and the error logged", strrchr(aside, '/') + 1);
	closed(s);
	s = spool_open(dir, &o, err, sizeof(err));
	ok(s && spool_pending(s) == 100, "reopened after that: a fresh ack, still 100 pending");
	closed(s);
	free(a);
	free(as);
	free(seg1);
	free(seg0);
	free(ack);
}

static uint64_t
dir_blocks(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t b = 0;
	while (d && (de = readdir(d)) != NULL) {
		char p[4300];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_name[0] != '.' && stat(p, &st) == 0)
			b += (uint64_t)st.st_blocks;
	}
	if (d)
		closedir(d);
	return b;
}

/* (e) Acknowledged space is given back at once (holes punched), and a
 * spool whose ack is lost after that restarts after the hole without
 * reporting it as damage. */
static void
reclaim(const char *dir, const char *logf)
{
	spool_opts o = {1ull << 30, 64ull << 20, 50};
	char err[256], ackp[4300];
	fresh(dir);
	spool *s = filled(dir, &o, 4000, 500);
	uint64_t before = dir_blocks(dir), after;
	int ids[4100];
	int n = drain_ids(s, ids, 4100, 1), waited = 0;
	/* The syncer gives the space back, within fsync_ms. */
	while ((after = dir_blocks(dir)) * 8 >= before && waited < 3000) {
		usleep(10000);
		waited += 10;
	}
	ok(n == 4000 && after * 8 < before, "st_blocks of the spool's files: %llu before spool_done, %llu %d ms after",
	    (unsigned long long)before, (unsigned long long)after, waited);
	buf b = BUF_ZERO;
	for (int k = 4000; k < 4010; k++) {
		buf_reset(&b);
		rec_k(&b, k, 500);
		spool_append(s, b.data, b.len, 1);
	}
	buf_free(&b);
	closed(s);
	s = spool_open(dir, &o, err, sizeof(err));
	n = s ? drain_ids(s, ids, 4100, 0) : -1;
	ok(n == 10 && ids[0] == 4000, "records appended after the hole come back after a restart");
	closed(s);
	snprintf(ackp, sizeof(ackp), "%s/ack", dir);
	char *a = slurp(ackp, NULL);
	a[9] ^= 1;
	a[4096 + 9] ^= 1;
	spit(ackp, a, 8192);
	free(a);
	capture(logf);
	s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	n = s ? drain_ids(s, ids, 4100, 0) : -1;
	ok(n >= 10 && n < 30 && ids[n - 1] == 4009 && spool_damaged(s) == 0,
	    "ack lost after a hole: the records present after it come again (%d), no damage reported", n);
	closed(s);
}

/* (f) Disk full: SPOOL_ENOSPC, nothing partial, logged; appends work
 * again once acknowledged space is given back. */
static void
disk_full(const char *logf)
{
	char mnt[] = "/tmp/iotrules-spool-full-XXXXXX";
	if (geteuid() != 0) {
		skip("disk full: needs root to mount a small tmpfs");
		return;
	}
	if (mkdtemp(mnt) == NULL || mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700") < 0) {
		char why[300];
		snprintf(why, sizeof(why), "disk full: cannot mount a tmpfs (%s)", strerror(errno));
		skip(why);
		rmdir(mnt);
		return;
	}
	char dir[4300], seg[4300], err[256];
	snprintf(dir, sizeof(dir), "%s/sp", mnt);
	spool_opts o = {1 << 30, 64 << 20, 0};
	spool *s = spool_open(dir, &o, err, sizeof(err));
	buf b = BUF_ZERO;
	rec_k(&b, 0, 1000);
	int rc = SPOOL_OK, n = 0;
	capture(logf);
	while (s && n < 1000 && (rc = spool_append(s, b.data, b.len, 1)) == SPOOL_OK)
		n++;
	int again = s ? spool_append(s, b.data, b.len, 1) : 0;
	uncapture();
	ok(rc == SPOOL_ENOSPC && again == SPOOL_ENOSPC && n > 100, "disk full: SPOOL_ENOSPC after %d appends", n);
	struct stat st;
	find_file(dir, "seg-", seg, sizeof(seg));
	uint64_t per = b.len + 8;
	ok(stat(seg, &st) == 0 && (uint64_t)st.st_size == (uint64_t)n * per && spool_pending(s) == (uint64_t)n,
	    "nothing partial: the segment holds exactly %d records", n);
	ok(file_has(logf, "no space left on device; holding new records"), "the spool logs that it holds records");
	int ids[1100];
	capture(logf);
	int got = s ? drain_ids(s, ids, 1100, 1) : -1;
	rc = s ? spool_append(s, b.data, b.len, 1) : -1;
	uncapture();
	ok(got == n && rc == SPOOL_OK, "after spool_done gives the space back, appends succeed again");
	ok(file_has(logf, "space is back after"), "and the spool logs that space is back");
	closed(s);
	s = spool_open(dir, &o, err, sizeof(err));
	ok(s && spool_pending(s) == 1 && spool_damaged(s) == 0, "reopened: the one new record, nothing damaged");
	closed(s);
	buf_free(&b);
	umount(mnt);
	rmdir(mnt);
}

/* A spool written before checksums (u32 length + record, 16-byte ack) is
 * converted on open. */
static void
legacy(const char *dir, const char *logf)
{
	char p[4300], err[256];
	fresh(dir);
	mkdir(dir, 0700);
	buf b = BUF_ZERO;
	uint64_t off3 = 0;
	for (int k = 0; k < 10; k++) {
		if (k == 3)
			off3 = b.len;
		rec_k(&b, k, 50);
	}
	snprintf(p, sizeof(p), "%s/seg-%012d", dir, 1);
	spit(p, b.data, b.len);
	unsigned char ack[16] = {1};
	for (int i = 0; i < 8; i++)
		ack[8 + i] = (unsigned char)(off3 >> (8 * i));
	snprintf(p, sizeof(p), "%s/ack", dir);
	spit(p, ack, 16);
	spool_opts o = {1 << 20, 1 << 20, 0};
	capture(logf);
	spool *s = spool_open(dir, &o, err, sizeof(err));
	uncapture();
	int ids[16], n = s ? drain_ids(s, ids, 16, 1) : -1;
	struct stat st;
	ok(n == 7 && ids[0] == 3 && ids[6] == 9 && stat(p, &st) == 0 && st.st_size == 8192 &&
	    find_file(dir, "conv-", p, sizeof(p)) == 0 && file_has(logf, "converted 1 segment"),
	    "an old-format spool is converted: its 7 unacknowledged records come (%d)", n);
	closed(s);
	buf_free(&b);
}

/* Permissions, and orphans that leave damaged-* files behind. */
static void
modes_and_leftovers(const char *parent, const char *logf)
{
	char dir[4300], seg[4300];
	uint64_t offs[16], size;
	fresh(parent);
	mkdir(parent, 0700);
	snprintf(dir, sizeof(dir), "%s/gone", parent);
	spool_opts o = {1 << 20, 1 << 20, 0};
	spool *s = filled(dir, &o, 10, 40);
	struct stat st;
	char p[4400];
	int good = stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700;
	const char *files[] = {"lock", "ack"};
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		good &= stat(p, &st) == 0 && (st.st_mode & 0777) == 0600;
	}
	find_file(dir, "seg-", seg, sizeof(seg));
	good &= stat(seg, &st) == 0 && (st.st_mode & 0777) == 0600;
	ok(good, "directory 0700, lock, ack and segment 0600");
	closed(s);
	rec_offsets(seg, offs, 11, &size);
	scribble(seg, offs[5] + SPOOL_REC_HDR + 3, "XXXX", 4);
	capture(logf);
	int a1 = spool_adopt_orphans(parent, "self", drain_all, NULL);
	uncapture();
	int ndmg = find_file(dir, "damaged-", p, sizeof(p));
	ok(a1 == 1 && ndmg == 1 && find_file(dir, "seg-", p, sizeof(p)) == 0 &&
	    find_file(dir, "ack", p, sizeof(p)) == 0 && find_file(dir, "lock", p, sizeof(p)) == 0,
	    "a drained orphan loses its own files but keeps its damaged-* file and directory");
	capture(logf);
	int a2 = spool_adopt_orphans(parent, "self", drain_all, NULL);
	uncapture();
	size_t ll;
	char *l = slurp(logf, &ll);
	ok(a2 == 0 && ll == 0 && find_file(dir, "lock", p, sizeof(p)) == 0,
	    "and is not opened again: nothing adopted, nothing logged");
	free(l);
}

/* An owner reopening its spool while another instance adopts it (a
 * restarted sink racing a sibling's adoption scan): nothing the owner
 * appended may be lost, i.e. removed by the adopter after the owner took
 * the lock back. */
static const char *race_parent;
static atomic_long race_drained, race_stop;

static void
race_drain(spool *o, const char *name, void *arg)
{
	(void)name;
	(void)arg;
	buf b = BUF_ZERO;
	uint64_t t;
	int n;
	while ((n = spool_next(o, &b, 100, 1 << 20, 0, &t)) > 0) {
		race_drained += n;
		spool_done(o, t);
		buf_reset(&b);
	}
	buf_free(&b);
}

static void *
race_adopter(void *arg)
{
	(void)arg;
	while (!race_stop)
		spool_adopt_orphans(race_parent, "self", race_drain, NULL);
	return NULL;
}

static void
adopt_race(const char *parent)
{
	char sub[1100], err[256];
	mkdir(parent, 0700);
	race_parent = parent;
	snprintf(sub, sizeof(sub), "%s/x", parent);
	pthread_t th;
	pthread_create(&th, NULL, race_adopter, NULL);
	spool_opts so = {1 << 30, 64 << 20, 0};
	long appended = 0;
	for (int i = 0; i < 4000; i++) {
		spool *s = spool_open(sub, &so, err, sizeof(err));
		if (s == NULL)
			continue;   /* the adopter holds it now */
		buf r = BUF_ZERO;
		one_record(&r, "race/t", "x");
		if (spool_append(s, r.data, r.len, 1) == SPOOL_OK)
			appended++;
		buf_free(&r);
		spool_close(s);
	}
	race_stop = 1;
	pthread_join(th, NULL);
	spool_adopt_orphans(parent, "self", race_drain, NULL);
	ok(appended > 0 && race_drained == appended,
	    "reopened while being adopted: every record appended is drained (%ld appended, %ld drained)",
	    appended, (long)race_drained);
}

int
main(void)
{
	/* envelope round trip */
	buf b = BUF_ZERO;
	env_batch_begin(&b);
	one_record(&b, "a/b", "{\"x\":1}");
	one_record(&b, "c", "");
	ok(env_batch_end(&b, 0) == 2, "batch counts its records");
	env_iter it;
	const char *rec;
	uint32_t n;
	envelope e;
	ok(env_batch_open(&it, b.data, b.len) == 2, "batch opens");
	ok(env_batch_next(&it, &rec, &n) == 1 && env_decode(rec, n, &e) == 0, "first record decodes");
	ok(e.kind == ENV_MESSAGE && e.ts_ms == 42 && e.s[ENV_TOPIC].n == 3 && memcmp(e.s[ENV_TOPIC].p, "a/b", 3) == 0 &&
	    e.s[ENV_PAYLOAD].n == 7, "fields survive");
	ok(env_decode(rec, n - 1, &e) < 0, "a truncated record is rejected");
	ok(env_batch_open(&it, "nope", 4) < 0, "a bad batch header is rejected");
	/* A record written before the ENV_PROPS slice existed (it ends after
	 * ENV_ERROR) still decodes, with the newer slices empty. */
	{
		buf r = BUF_ZERO;
		envelope e0 = {0};
		e0.kind = ENV_MESSAGE;
		e0.s[ENV_TOPIC] = env_str("t");
		env_append(&r, &e0);
		size_t cut = 4 * (ENV_NSLICES - 1 - ENV_ERROR);   /* the empty newer slices */
		envelope e1;
		ok(env_decode(r.data + 4, r.len - 4 - cut, &e1) == 0 && e1.s[ENV_PROPS].n == 0 &&
		       e1.s[ENV_TOPIC].n == 1, "a record without the newer slices decodes");
		ok(env_decode(r.data + 4, r.len - 4 - cut - 2, &e1) < 0, "a record cut inside a slice does not");
		buf_free(&r);
	}

	/* spool */
	char dir[] = "/tmp/iotrules-spool-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char err[256];
	spool_opts o = {1 << 20, 4096, 0};
	spool *s = spool_open(dir, &o, err, sizeof(err));
	ok(s != NULL, "spool opens");
	ok(spool_open(dir, &o, err, sizeof(err)) == NULL && strstr(err, "in use"), "a second owner is refused: %s", err);
	buf recs = BUF_ZERO;
	for (int i = 0; i < 100; i++) {
		buf_reset(&recs);
		char t[32];
		snprintf(t, sizeof(t), "t/%d", i);
		one_record(&recs, t, "payload");
		spool_append(s, recs.data, recs.len, 1);
	}
	ok(spool_pending(s) == 100, "100 records pending");
	buf out = BUF_ZERO;
	uint64_t t1, t2;
	int got1 = spool_next(s, &out, 30, 1 << 20, 10, &t1);
	buf_reset(&out);
	int got2 = spool_next(s, &out, 30, 1 << 20, 10, &t2);
	ok(got1 == 30 && got2 == 30, "batches of 30 handed out across segments");
	env_iter si = {out.data, out.data + out.len, 30, 0};
	ok(env_batch_next(&si, &rec, &n) == 1 && env_decode(rec, n, &e) == 0 &&
	    e.s[ENV_TOPIC].n == 4 && memcmp(e.s[ENV_TOPIC].p, "t/30", 4) == 0, "records come back in order");
	spool_done(s, t2);
	ok(spool_pending(s) == 100, "a later batch done first does not move the ack");
	spool_done(s, t1);
	ok(spool_pending(s) == 40, "both done: 60 acknowledged");
	/* Hand out 10 more but do not finish them: they come back after a
	 * restart (at least once). */
	uint64_t t3;
	buf_reset(&out);
	spool_next(s, &out, 10, 1 << 20, 10, &t3);
	spool_shutdown(s);
	spool_close(s);
	s = spool_open(dir, &o, err, sizeof(err));
	ok(s && spool_pending(s) == 40, "after reopening, the 40 unacknowledged records are pending");
	buf_reset(&out);
	int got = spool_next(s, &out, 100, 1 << 20, 10, &t1);
	si = (env_iter){out.data, out.data + out.len, 100, 0};
	ok(got == 40 && env_batch_next(&si, &rec, &n) == 1 && env_decode(rec, n, &e) == 0 &&
	    memcmp(e.s[ENV_TOPIC].p, "t/60", 4) == 0, "redelivery starts at the first unacknowledged record");
	spool_done(s, t1);
	ok(spool_pending(s) == 0, "all done");
	ok(spool_next(s, &out, 1, 1 << 20, 10, &t1) == 0, "empty spool times out with 0");
	spool_shutdown(s);
	spool_close(s);
	/* A torn tail (crash mid-write) is moved aside on open. */
	s = spool_open(dir, &o, err, sizeof(err));
	buf_reset(&recs);
	one_record(&recs, "x", "y");
	spool_append(s, recs.data, recs.len, 1);
	spool_shutdown(s);
	spool_close(s);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "f=$(ls %s/seg-* | tail -1); printf '\\377\\377' >> $f", dir);
	if (system(cmd) != 0)
		return 1;
	s = spool_open(dir, &o, err, sizeof(err));
	ok(s && spool_pending(s) == 1, "a torn tail is moved aside, whole records kept");
	spool_shutdown(s);
	spool_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(cmd) != 0)
		return 1;
	many_readers(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(cmd) != 0)
		return 1;
	orphans(dir);
	char sub[1024], logf[1024];
	snprintf(sub, sizeof(sub), "%s/t", dir);
	snprintf(logf, sizeof(logf), "%s/log", dir);
	torn_tails(sub, logf);
	scribbled_payload(sub, logf);
	scribbled_header(sub, logf);
	ack_slots(sub, logf);
	reclaim(sub, logf);
	legacy(sub, logf);
	snprintf(sub, sizeof(sub), "%s/orph", dir);
	modes_and_leftovers(sub, logf);
	disk_full(logf);
	snprintf(sub, sizeof(sub), "%s/race", dir);
	adopt_race(sub);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	buf_free(&b);
	buf_free(&recs);
	buf_free(&out);
	return done_testing();
}
