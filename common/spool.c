#include "common/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/deadline.h"
#include "common/envelope.h"
#include "common/log.h"

#define MAX_RECORD (64u << 20)
#define MAX_TICKETS 1024
#define HDR SPOOL_REC_HDR
#define ACK_SLOT 4096          /* slots in different sectors and pages */
#define ACK_SIZE (2 * ACK_SLOT)
#define ACK_LEN 32
#define RECLAIM_STEP (256u << 10)
#define ROLL_MIN (1u << 20)
#define NOSPACE_REMIND_S 10
#define WIN_BYTES (1u << 20)
#define SKIP_MAX (1u << 30)
#define ENC_KEEP (16u << 20)

typedef struct ticket {
	uint64_t id;
	uint64_t seg, off;    /* end position of the batch */
	uint64_t bytes, recs; /* bytes on disk, records */
	int done;
} ticket;

struct spool {
	pthread_mutex_t mu;
	pthread_cond_t can_read, can_write, can_ticket, can_sync;
	char *dir;
	char qdir[600];       /* dir as a JSON string, for log lines */
	spool_opts o;
	int lockfd, ackfd, dirfd;
	int closed;
	/* write side */
	uint64_t wseg, woff;
	int wfd;
	int dirty;            /* appended since the last fdatasync */
	int sync_failed;      /* a data fdatasync failed: spool_sync says so */
	int roll;             /* start a new segment at the next append */
	pthread_t syncer;     /* runs fdatasync every fsync_ms (fsync_ms > 0) */
	int has_syncer;
	int nospace;          /* appends are failing for lack of space */
	int64_t nospace_since, nospace_said;
	int nospace_quiet;   /* this shortage is not logged (one soon after the last) */
	/* read side */
	uint64_t rseg, roff;
	int rfd;
	uint64_t rfd_seg;
	/* ack side */
	uint64_t aseg, aoff, aseq;
	int ack_dirty;
	uint64_t unacked_bytes, unacked_recs;
	ticket t[MAX_TICKETS];
	uint64_t thead, ttail, next_ticket;   /* ring indices (monotonic) */
	/* reclaim */
	uint64_t useg;        /* segments below are unlinked */
	uint64_t pseg, poff;  /* [0, poff) of segment pseg is punched */
	int reclaiming, punch_ok;
	uint64_t damaged;
};

/* ---- small helpers ------------------------------------------------------ */

static void
seg_path(const spool *s, uint64_t seg, char *out, size_t cap)
{
	snprintf(out, cap, "%s/seg-%012llu", s->dir, (unsigned long long)seg);
}

static uint32_t
rd32(const unsigned char *u)
{
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint64_t
rd64(const unsigned char *u)
{
	return (uint64_t)rd32(u) | (uint64_t)rd32(u + 4) << 32;
}

static void
wr32(unsigned char *u, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		u[k] = (unsigned char)(v >> (8 * k));
}

static void
wr64(unsigned char *u, uint64_t v)
{
	wr32(u, (uint32_t)v);
	wr32(u + 4, (uint32_t)(v >> 32));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int64_t
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static int
write_full(int fd, const void *p, size_t n, uint64_t off)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static void
skip_header(unsigned char *h, uint32_t len)
{
	wr32(h, SPOOL_SKIP_MAGIC);
	wr32(h + 4, len);
	wr32(h + 8, (uint32_t)crc32_z(0, h, 8));
}

/* ---- verifying a segment ------------------------------------------------ */

/* A read window over one file, so that scanning many small records costs
 * one pread per megabyte. */
typedef struct win {
	int fd;
	uint64_t base;
	size_t len, cap;
	unsigned char *b;
} win;

/* Points at n (<= cap) bytes at off, or NULL if the file ends first. */
static const unsigned char *
win_at(win *w, uint64_t off, size_t n)
{
	if (off >= w->base && off + n <= w->base + w->len)
		return w->b + (off - w->base);
	ssize_t r = pread(w->fd, w->b, w->cap, (off_t)off);
	w->base = off;
	w->len = r > 0 ? (size_t)r : 0;
	return n <= w->len ? w->b : NULL;
}

/* Whether a whole record or skip whose header and crc verify lies at off,
 * ending by end.  Sets its magic and length. */
static int
rec_ok(win *w, uint64_t off, uint64_t end, uint32_t *magic, uint32_t *len)
{
	if (off >= end || end - off < HDR)
		return 0;
	const unsigned char *h = win_at(w, off, HDR);
	if (h == NULL)
		return 0;
	uint32_t m = rd32(h), l = rd32(h + 4), want = rd32(h + 8);
	if ((m != SPOOL_REC_MAGIC && m != SPOOL_SKIP_MAGIC) || (m == SPOOL_REC_MAGIC && l > MAX_RECORD) ||
	    l > end - off - HDR)
		return 0;
	uint32_t c = (uint32_t)crc32_z(0, h, 8);
	if (m == SPOOL_REC_MAGIC) {
		uint64_t p = off + HDR, left = l;
		while (left > 0) {
			size_t k = left < w->cap ? (size_t)left : w->cap;
			const unsigned char *d = win_at(w, p, k);
			if (d == NULL)
				return 0;
			c = (uint32_t)crc32_z(c, d, k);
			p += k;
			left -= k;
		}
	}
	if (c != want)
		return 0;
	*magic = m;
	*len = l;
	return 1;
}

/* The first offset >= from, below end, where a record or skip verifies
 * (end if none), and how many record magics failing their check lie in
 * between. */
static uint64_t
resync(win *w, uint64_t from, uint64_t end, uint64_t *magics)
{
	*magics = 0;
	for (uint64_t p = from; p + HDR <= end; p++) {
		const unsigned char *h = win_at(w, p, 4);
		if (h == NULL)
			break;
		uint32_t m = rd32(h), ml, ll;
		if (m != SPOOL_REC_MAGIC && m != SPOOL_SKIP_MAGIC)
			continue;
		if (rec_ok(w, p, end, &ml, &ll))
			return p;
		if (m == SPOOL_REC_MAGIC)
			(*magics)++;
	}
	return end;
}

static int
win_open(win *w, int fd)
{
	w->fd = fd;
	w->base = w->len = 0;
	w->cap = WIN_BYTES;
	w->b = malloc(w->cap);
	return w->b ? 0 : -1;
}

/* Whether path holds exactly [off, off + n) of fd. */
static int
same_bytes(int fd, uint64_t off, uint64_t n, const char *path)
{
	struct stat st;
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return 0;
	unsigned char *a = malloc(2 * 65536), *b = a + 65536;
	int same = a && fstat(in, &st) == 0 && (uint64_t)st.st_size == n;
	for (uint64_t done = 0; same && done < n;) {
		size_t k = n - done < 65536 ? (size_t)(n - done) : 65536;
		same = pread(fd, a, k, (off_t)(off + done)) == (ssize_t)k && pread(in, b, k, (off_t)done) == (ssize_t)k &&
		    memcmp(a, b, k) == 0;
		done += k;
	}
	free(a);
	close(in);
	return same;
}

/* Copies [off, off + n) of fd to a new file (0600, synced) named base,
 * and writes the name used to out.  If base holds these very bytes (a
 * crash came before the region was marked) it is kept as is; if it holds
 * others (an earlier damage at the same place) base.1, base.2, ... are
 * tried, so no evidence is ever overwritten. */
static int
save_bytes(spool *s, int fd, uint64_t off, uint64_t n, const char *base, char *out, size_t cap)
{
	int o = -1;
	for (int i = 0; o < 0 && i < 100; i++) {
		if (i == 0)
			snprintf(out, cap, "%s", base);
		else
			snprintf(out, cap, "%s.%d", base, i);
		o = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (o < 0 && errno != EEXIST)
			return -1;
		if (o < 0 && same_bytes(fd, off, n, out))
			return 0;
	}
	if (o < 0)
		return -1;
	unsigned char *b = malloc(WIN_BYTES);
	int rc = b ? 0 : -1;
	for (uint64_t done = 0; rc == 0 && done < n;) {
		size_t k = n - done < WIN_BYTES ? (size_t)(n - done) : WIN_BYTES;
		ssize_t r = pread(fd, b, k, (off_t)(off + done));
		if (r <= 0 || write_full(o, b, (size_t)r, done) < 0)
			rc = -1;
		else
			done += (uint64_t)r;
	}
	free(b);
	if (rc == 0 && fsync(o) < 0)
		rc = -1;
	close(o);
	if (rc < 0)
		unlink(out);   /* half a copy would pass for the evidence */
	else
		fsync(s->dirfd);
	return rc;
}

/* The bytes at off in segment seg failed their check.  Finds where intact
 * records resume (below end), saves the bytes in between and neutralises
 * them with a skip header.  With tail set, a region running to end is a
 * torn tail: saved, then cut off.  Returns the offset where records resume
 * (off after a cut), or end if the file cannot be read.  Adds the region's
 * records to the damage count (not for a torn tail).  Callers may hold
 * the lock: this is the rare path. */
static uint64_t
damage(spool *s, uint64_t seg, uint64_t off, uint64_t end, int tail, uint64_t *recs)
{
	char path[4200], base[4200], saved[4300], kv[5200], qsaved[4400];
	win w;
	*recs = 0;
	seg_path(s, seg, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || win_open(&w, fd) < 0) {
		if (fd >= 0)
			close(fd);
		log_error("spool %s: cannot read segment %llu to resynchronise: %s", s->dir,
		    (unsigned long long)seg, strerror(errno));
		return end;
	}
	uint64_t magics, next = resync(&w, off + 1, end, &magics);
	free(w.b);
	uint64_t n = next - off;
	int torn = tail && next == end;
	*recs = 1 + magics;
	snprintf(base, sizeof(base), "%s/damaged-%012llu-%012llu", s->dir, (unsigned long long)seg,
	    (unsigned long long)off);
	int ok = save_bytes(s, fd, off, n, base, saved, sizeof(saved)) == 0;
	int neutral = 0;
	if (ok && torn) {
		neutral = ftruncate(fd, (off_t)off) == 0 && fdatasync(fd) == 0;
	} else if (ok && n >= HDR) {
		/* Skip headers over the region; one per SKIP_MAX bytes. */
		neutral = 1;
		for (uint64_t p = off; neutral && p < next;) {
			uint64_t left = next - p - HDR, l = left > SKIP_MAX ? SKIP_MAX : left;
			if (left > SKIP_MAX && left - l < HDR)
				l -= HDR;
			unsigned char h[HDR];
			skip_header(h, (uint32_t)l);
			neutral = write_full(fd, h, HDR, p) == 0;
			p += HDR + l;
		}
		if (neutral)
			neutral = fdatasync(fd) == 0;
	}
	close(fd);
	snprintf(kv, sizeof(kv),
	    "\"spool\":%s,\"segment\":%llu,\"offset\":%llu,\"bytes\":%llu,\"records\":%llu,\"saved_to\":%s",
	    s->qdir, (unsigned long long)seg, (unsigned long long)off, (unsigned long long)n,
	    (unsigned long long)*recs, ok ? log_json_str(qsaved, sizeof(qsaved), saved) : "null");
	if (torn) {
		log_kv(LOG_WARN, kv, "spool %s: torn tail in segment %llu at offset %llu (%llu bytes of a write cut "
		    "short by a crash) %s", s->dir, (unsigned long long)seg, (unsigned long long)off,
		    (unsigned long long)n, ok ? "moved aside" : "could not be copied aside; left in place");
		*recs = 0;
		return neutral ? off : end;
	}
	log_kv(LOG_ERROR, kv, "spool %s: %llu damaged record(s) in segment %llu at offset %llu (%llu bytes) failed "
	    "their checksum; %s; the intact records around them are delivered", s->dir,
	    (unsigned long long)*recs, (unsigned long long)seg, (unsigned long long)off, (unsigned long long)n,
	    ok ? (neutral ? "bytes saved aside" : "bytes saved aside, segment not marked (reported again)")
	       : "bytes could not be saved and are left in place");
	s->damaged += *recs;
	return next;
}

/* Verifies the records of segment seg from *start: counts them, handles
 * damage, and in the last segment moves a torn tail aside.  With first
 * set, a hole at *start (space punched out under an ack since lost) and
 * the piece of record after it are passed over, moving *start.  Sets *end
 * to the end of the valid data. */
static int
scan_segment(spool *s, uint64_t seg, uint64_t *start, int first, int last, uint64_t *end, uint64_t *recs)
{
	char path[4200];
	seg_path(s, seg, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	win w;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || win_open(&w, fd) < 0) {
		close(fd);
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size, off = *start, n = 0, dr;
	if (off > size) {
		log_warn("spool %s: acknowledged position %llu is past the end of segment %llu (%llu bytes; "
		    "lost with a machine?); resuming at its end", s->dir, (unsigned long long)off,
		    (unsigned long long)seg, (unsigned long long)size);
		off = size;
	}
	if (first && off < size) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		uint64_t data = d < 0 ? (errno == ENXIO ? size : off) : (uint64_t)d;
		if (data > off) {
			uint64_t mg, next = resync(&w, data, size, &mg);
			log_info("spool %s: segment %llu: %llu bytes already given back before offset %llu passed over",
			    s->dir, (unsigned long long)seg, (unsigned long long)(next - off), (unsigned long long)next);
			off = next;
		}
	}
	*start = off;
	while (off < size) {
		uint32_t m, l;
		if (rec_ok(&w, off, size, &m, &l)) {
			off += HDR + (uint64_t)l;
			n += m == SPOOL_REC_MAGIC;
			continue;
		}
		uint64_t next = damage(s, seg, off, size, last, &dr);
		if (next == off) {   /* torn tail cut off */
			size = off;
			break;
		}
		off = next;
	}
	free(w.b);
	close(fd);
	*end = size;
	*recs = n;
	return 0;
}

/* ---- the ack file ------------------------------------------------------- */

static void
ack_slot(unsigned char *b, uint64_t seq, uint64_t seg, uint64_t off)
{
	wr64(b, seq);
	wr64(b + 8, seg);
	wr64(b + 16, off);
	wr32(b + 24, SPOOL_ACK_MAGIC);
	wr32(b + 28, (uint32_t)crc32_z(0, b, 28));
}

static void
write_ack(spool *s)
{
	unsigned char b[ACK_LEN];
	s->aseq++;
	ack_slot(b, s->aseq, s->aseg, s->aoff);
	if (pwrite(s->ackfd, b, ACK_LEN, (off_t)(s->aseq % 2) * ACK_SLOT) != ACK_LEN) {
		/* Keeping the older slot only means redelivery after a restart. */
	}
	s->ack_dirty = 1;
}

/* Creates the ack file whole (so writing a slot never needs a new block)
 * under a temporary name, then renames it in place.  With seg set, slot 1
 * holds that position. */
static int
ack_create(spool *s, int with_pos, uint64_t seg, uint64_t off)
{
	char tmp[4200], path[4200];
	unsigned char *b = calloc(1, ACK_SIZE);
	snprintf(tmp, sizeof(tmp), "%s/ack.tmp", s->dir);
	snprintf(path, sizeof(path), "%s/ack", s->dir);
	if (b == NULL)
		return -1;
	if (with_pos)
		ack_slot(b + ACK_SLOT, 1, seg, off);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd >= 0 && write_full(fd, b, ACK_SIZE, 0) == 0 && fdatasync(fd) == 0 ? 0 : -1;
	free(b);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc == 0)
		fsync(s->dirfd);
	s->aseq = with_pos ? 1 : 0;
	return rc;
}

/* Reads the ack.  1: a valid position; 0: none written yet; -1: every
 * written slot fails its check (or the file is short). */
static int
ack_load(spool *s, uint64_t *seg, uint64_t *off)
{
	unsigned char b[2][ACK_LEN];
	static const unsigned char zero[ACK_LEN];
	int valid[2], empty[2], best = -1;
	for (int i = 0; i < 2; i++) {
		if (pread(s->ackfd, b[i], ACK_LEN, (off_t)i * ACK_SLOT) != ACK_LEN)
			return -1;
		empty[i] = memcmp(b[i], zero, ACK_LEN) == 0;
		valid[i] = !empty[i] && rd32(b[i] + 24) == SPOOL_ACK_MAGIC &&
		    rd32(b[i] + 28) == (uint32_t)crc32_z(0, b[i], 28) && rd64(b[i]) % 2 == (uint64_t)i;
		if (valid[i] && (best < 0 || rd64(b[i]) > rd64(b[best])))
			best = i;
	}
	if (best < 0)
		return empty[0] && empty[1] ? 0 : -1;
	if (!empty[1 - best] && !valid[1 - best])
		log_warn("spool %s: ack slot %d fails its check (a write cut short?); using slot %d", s->dir,
		    1 - best, best);
	s->aseq = rd64(b[best]);
	*seg = rd64(b[best] + 8);
	*off = rd64(b[best] + 16);
	return 1;
}

/* Both slots damaged: the file is kept as evidence, and a fresh one
 * starts with no position (delivery restarts at the oldest segment). */
static int
ack_set_aside(spool *s)
{
	char path[4200], base[4200], aside[4300], kv[5200], q[4400];
	snprintf(path, sizeof(path), "%s/ack", s->dir);
	snprintf(base, sizeof(base), "%s/damaged-ack-%lld", s->dir, (long long)time(NULL));
	struct stat st;
	int ok = fstat(s->ackfd, &st) == 0 &&
	    save_bytes(s, s->ackfd, 0, (uint64_t)st.st_size, base, aside, sizeof(aside)) == 0;
	snprintf(kv, sizeof(kv), "\"spool\":%s,\"saved_to\":%s", s->qdir, ok ? log_json_str(q, sizeof(q), aside) : "null");
	log_kv(LOG_ERROR, kv, "spool %s: both ack slots fail their check; every record still present is delivered "
	    "again (duplicates), nothing is deleted", s->dir);
	if (!ok)
		return -1;   /* keep the evidence rather than overwrite it */
	close(s->ackfd);
	s->ackfd = -1;
	if (ack_create(s, 0, 0, 0) < 0)
		return -1;
	s->ackfd = open(path, O_RDWR | O_CLOEXEC);
	return s->ackfd < 0 ? -1 : 0;
}

/* ---- the directory ------------------------------------------------------ */

typedef struct u64v {
	uint64_t *v;
	size_t n, cap;
} u64v;

static int
u64v_push(u64v *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		uint64_t *nv = realloc(a->v, nc * sizeof(*nv));
		if (nv == NULL)
			return -1;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = x;
	return 0;
}

typedef struct listing {
	u64v segs, convs;
	uint64_t next_free;   /* above every seg-N and damaged-N-* */
	int has_damaged;
} listing;

static int
list_dir(const char *dir, listing *l)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	memset(l, 0, sizeof(*l));
	l->next_free = 1;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		unsigned long long n;
		char c;
		if (sscanf(de->d_name, "seg-%llu%c", &n, &c) == 1)
			rc = u64v_push(&l->segs, n);
		else if (sscanf(de->d_name, "conv-%llu%c", &n, &c) == 1)
			rc = u64v_push(&l->convs, n);
		else if (strncmp(de->d_name, "damaged-", 8) == 0) {
			l->has_damaged = 1;
			if (sscanf(de->d_name, "damaged-%llu-", &n) != 1)
				continue;
		} else
			continue;
		if (n + 1 > l->next_free)
			l->next_free = n + 1;
	}
	closedir(d);
	if (l->segs.n > 1)
		qsort(l->segs.v, l->segs.n, sizeof(uint64_t), cmp_u64);
	return rc;
}

static void
list_free(listing *l)
{
	free(l->segs.v);
	free(l->convs.v);
	memset(l, 0, sizeof(*l));
}

/* ---- converting a spool of the format without checksums ---------------- */

/* Rewrites [from, end) of legacy segment seg (u32 length + bytes) into
 * conv-<seg>; bytes after the last whole record are saved aside.  -2 if
 * the segment is already in the current format. */
static int
convert_segment(spool *s, uint64_t seg, uint64_t from)
{
	char path[4200], conv[4200];
	seg_path(s, seg, path, sizeof(path));
	snprintf(conv, sizeof(conv), "%s/conv-%012llu", s->dir, (unsigned long long)seg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	win w;
	if (fstat(fd, &st) < 0 || win_open(&w, fd) < 0) {
		close(fd);
		return -1;
	}
	int out = open(conv, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	buf b = BUF_ZERO;
	uint64_t size = (uint64_t)st.st_size, off = from, woff = 0;
	int rc = out < 0 ? -1 : 0;
	const unsigned char *h = win_at(&w, off, 4);
	if (rc == 0 && h && (rd32(h) == SPOOL_REC_MAGIC || rd32(h) == SPOOL_SKIP_MAGIC))
		rc = -2;
	while (rc == 0 && off + 4 <= size) {
		h = win_at(&w, off, 4);
		uint32_t len = h ? rd32(h) : 0;
		if (h == NULL || len == 0 || len > MAX_RECORD || off + 4 + len > size)
			break;
		unsigned char hdr[HDR];
		wr32(hdr, SPOOL_REC_MAGIC);
		wr32(hdr + 4, len);
		uint32_t c = (uint32_t)crc32_z(0, hdr, 8);
		buf_add(&b, hdr, HDR);
		for (uint64_t p = off + 4, left = len; left > 0;) {
			size_t k = left < w.cap ? (size_t)left : w.cap;
			const unsigned char *d = win_at(&w, p, k);
			if (d == NULL) {
				rc = -1;
				break;
			}
			c = (uint32_t)crc32_z(c, d, k);
			buf_add(&b, d, k);
			p += k;
			left -= k;
		}
		wr32((unsigned char *)b.data + b.len - len - 4, c);
		off += 4 + (uint64_t)len;
		if (rc == 0 && (b.len >= WIN_BYTES || off + 4 > size)) {
			rc = write_full(out, b.data, b.len, woff);
			woff += b.len;
			buf_reset(&b);
		}
	}
	if (rc == 0 && b.len > 0)
		rc = write_full(out, b.data, b.len, woff);
	if (rc == 0 && fsync(out) < 0)
		rc = -1;
	if (rc == 0 && off < size) {
		char base[4200], saved[4300];
		snprintf(base, sizeof(base), "%s/damaged-%012llu-%012llu", s->dir, (unsigned long long)seg,
		    (unsigned long long)off);
		int ok = save_bytes(s, fd, off, size - off, base, saved, sizeof(saved)) == 0;
		log_warn("spool %s: segment %llu: %llu bytes after the last whole record at offset %llu %s", s->dir,
		    (unsigned long long)seg, (unsigned long long)(size - off), (unsigned long long)off,
		    ok ? "moved aside" : "could not be saved; dropped");
	}
	buf_free(&b);
	free(w.b);
	close(fd);
	if (out >= 0)
		close(out);
	if (rc < 0)
		unlink(conv);
	return rc;
}

static void
rename_convs(spool *s, const listing *l)
{
	for (size_t i = 0; i < l->convs.n; i++) {
		char from[4200], to[4200];
		snprintf(from, sizeof(from), "%s/conv-%012llu", s->dir, (unsigned long long)l->convs.v[i]);
		seg_path(s, l->convs.v[i], to, sizeof(to));
		rename(from, to);
	}
	fsync(s->dirfd);
}

/* Converts every segment from the legacy ack position on; the new ack
 * goes in place before any conv-<n> replaces its segment, so a crash
 * leaves either the old spool whole or a conversion to finish.  Returns
 * 0, -2 if the segments are not legacy after all, -1 on error. */
static int
convert_legacy(spool *s, listing *l, int ackfd, uint64_t acksize)
{
	unsigned char ab[16];
	uint64_t lseg = l->segs.n ? l->segs.v[0] : 1, loff = 0;
	if (acksize == 16 && pread(ackfd, ab, 16, 0) == 16) {
		lseg = rd64(ab);
		loff = rd64(ab + 8);
	}
	for (size_t i = 0; i < l->convs.n; i++) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/conv-%012llu", s->dir, (unsigned long long)l->convs.v[i]);
		unlink(p);   /* an earlier attempt that did not reach the new ack */
	}
	l->convs.n = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < l->segs.n; i++) {
		if (l->segs.v[i] < lseg)
			continue;
		rc = convert_segment(s, l->segs.v[i], l->segs.v[i] == lseg ? loff : 0);
		if (rc == 0 && u64v_push(&l->convs, l->segs.v[i]) < 0)
			rc = -1;
	}
	if (rc == 0 && ack_create(s, 1, lseg, 0) < 0)
		rc = -1;
	if (rc < 0) {
		/* Without the new ack in place, conv-* files must not
		 * survive: a later open would take them for a conversion to
		 * finish. */
		int e = errno;
		for (size_t i = 0; i < l->convs.n; i++) {
			char p[4200];
			snprintf(p, sizeof(p), "%s/conv-%012llu", s->dir, (unsigned long long)l->convs.v[i]);
			unlink(p);
		}
		l->convs.n = 0;
		errno = e;
		return rc;
	}
	rename_convs(s, l);
	if (l->convs.n > 0)
		log_info("spool %s: converted %zu segment(s) to the checksummed format", s->dir, l->convs.n);
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

static int
open_write_segment(spool *s, uint64_t seg, uint64_t off)
{
	char path[4200];
	seg_path(s, seg, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (s->wfd >= 0) {
		/* The syncer only ever syncs the current segment: the one
		 * being left is synced here, once per segment.  A failed
		 * cut-back may have left bytes after the end: cut them now,
		 * or readers would meet them as damage. */
		struct stat st;
		if (fstat(s->wfd, &st) == 0 && (uint64_t)st.st_size > s->woff &&
		    ftruncate(s->wfd, (off_t)s->woff) < 0) {
			/* the reader reports them, nothing is lost */
		}
		/* Synced even if not dirty: the syncer may have taken dirty
		 * and still be in its own fdatasync (spool_sync relies on
		 * every segment left behind being on disk). */
		if (fdatasync(s->wfd) < 0)
			s->sync_failed = 1;
		close(s->wfd);
	}
	s->dirty = 0;
	s->roll = 0;
	s->wfd = fd;
	s->wseg = seg;
	s->woff = off;
	return 0;
}

/* ---- giving acknowledged space back ------------------------------------ */

/* Whether space behind the ack is worth giving back now: a segment
 * behind it, or 256 KiB of its own (any whole block while appends are
 * short of space).  Under the lock. */
static int
reclaim_due(const spool *s)
{
	if (s->reclaiming)
		return 0;
	uint64_t from = s->pseg == s->aseg ? s->poff : 0, to = s->aoff & ~(uint64_t)4095;
	return s->useg < s->aseg || (s->punch_ok && to > from && (to - from >= RECLAIM_STEP || s->nospace));
}

/* Unlinks the segments before the ack and punches out the blocks before
 * it in its segment.  The ack goes to both slots and is synced first, so
 * that no slot surviving a crash points into freed space.  Takes the lock;
 * runs in the syncer, off the append and read paths, unless fsync_ms is 0
 * (then in spool_done, after the lock is released). */
static void
give_back(spool *s)
{
	char path[4200];
	pthread_mutex_lock(&s->mu);
	if (!reclaim_due(s)) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	write_ack(s);
	write_ack(s);
	uint64_t useg = s->useg, aseg = s->aseg;
	uint64_t from = s->pseg == s->aseg ? s->poff : 0, to = s->aoff & ~(uint64_t)4095;
	int punch = s->punch_ok && to > from;
	s->reclaiming = 1;
	s->ack_dirty = 0;
	pthread_mutex_unlock(&s->mu);

	int unsupported = 0, punched = 0;
	fdatasync(s->ackfd);
	for (uint64_t seg = useg; seg < aseg; seg++) {
		seg_path(s, seg, path, sizeof(path));
		unlink(path);
	}
	if (punch) {
		seg_path(s, aseg, path, sizeof(path));
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(to - from)) == 0)
				punched = 1;
			else if (errno == EOPNOTSUPP || errno == ENOSYS)
				unsupported = 1;
			close(fd);
		}
	}
	pthread_mutex_lock(&s->mu);
	s->useg = aseg;
	if (punched) {
		s->pseg = aseg;
		s->poff = to;
	}
	if (unsupported) {
		s->punch_ok = 0;
		log_info("spool %s: the file system cannot punch holes; acknowledged space is given back a "
		    "segment at a time", s->dir);
	}
	s->reclaiming = 0;
	pthread_mutex_unlock(&s->mu);
}

/* fdatasync off the append path: an append never waits for the disk (a
 * sync can take tens of milliseconds), and the lock is not held during
 * it.  The fd is dup'ed so a segment switch may close the original.  The
 * acknowledged space is given back here too, after the ack is synced
 * anyway: at most every fsync_ms, never on a caller's thread. */
static void *
syncer_main(void *arg)
{
	spool *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->closed) {
		struct timespec dl;
		deadline_in(&dl, s->o.fsync_ms);
		pthread_cond_timedwait(&s->can_sync, &s->mu, &dl);
		int fd = s->dirty && s->wfd >= 0 ? dup(s->wfd) : -1;
		int give = reclaim_due(s), ack = s->ack_dirty && !give;
		if (fd >= 0)
			s->dirty = 0;   /* a failed dup (EMFILE) syncs next time */
		if (ack)
			s->ack_dirty = 0;
		if (fd < 0 && !ack && !give)
			continue;
		pthread_mutex_unlock(&s->mu);
		if (fd >= 0) {
			int failed = fdatasync(fd) < 0;
			close(fd);
			if (failed) {
				pthread_mutex_lock(&s->mu);
				s->sync_failed = 1;
				pthread_mutex_unlock(&s->mu);
			}
		}
		if (ack)
			fdatasync(s->ackfd);   /* only closed after this thread is joined */
		if (give)
			give_back(s);          /* syncs the ack itself */
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Records are converted to the disk format in a per-thread buffer,
 * outside the lock: the crc is the costly part of an append, and the
 * MQTT thread appends one record at a time. */
typedef struct encbuf {
	unsigned char *p;
	size_t cap;
} encbuf;

static pthread_key_t enc_key;
static pthread_once_t enc_once = PTHREAD_ONCE_INIT;

static void
enc_free(void *v)
{
	encbuf *e = v;
	free(e->p);
	free(e);
}

static void
enc_init(void)
{
	if (pthread_key_create(&enc_key, enc_free) != 0)
		abort();
}

static encbuf *
enc_buf(size_t n)
{
	pthread_once(&enc_once, enc_init);
	encbuf *e = pthread_getspecific(enc_key);
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL || pthread_setspecific(enc_key, e) != 0) {
			free(e);
			return NULL;
		}
	}
	if (e->cap < n) {
		size_t nc = n < 4096 ? 4096 : n + n / 4;
		unsigned char *np = realloc(e->p, nc);
		if (np == NULL)
			return NULL;
		e->p = np;
		e->cap = nc;
	}
	return e;
}

/* One rare huge batch should not pin its buffer for the thread's life. */
static void
enc_done(encbuf *e)
{
	if (e->cap > ENC_KEEP) {
		free(e->p);
		e->p = NULL;
		e->cap = 0;
	}
}

/* Counts the records framed in data, or -1 if the framing is broken. */
static int64_t
frame_count(const unsigned char *p, size_t len)
{
	int64_t n = 0;
	for (size_t o = 0; o < len; n++) {
		if (len - o < 4)
			return -1;
		uint32_t l = rd32(p + o);
		if (l > MAX_RECORD || l > len - o - 4)
			return -1;
		o += 4 + (size_t)l;
	}
	return n;
}

static void
encode(const unsigned char *p, size_t len, unsigned char *out)
{
	for (size_t o = 0; o < len;) {
		uint32_t l = rd32(p + o);
		wr32(out, SPOOL_REC_MAGIC);
		wr32(out + 4, l);
		memcpy(out + HDR, p + o + 4, l);
		uint32_t c = (uint32_t)crc32_z(crc32_z(0, out, 8), out + HDR, l);
		wr32(out + 8, c);
		out += HDR + (size_t)l;
		o += 4 + (size_t)l;
	}
}

int
spool_append(spool *s, const void *data, size_t len, uint32_t count)
{
	(void)count;
	if (len == 0)
		return SPOOL_OK;
	int64_t n = frame_count(data, len);
	if (n < 0)
		return SPOOL_EBATCH;
	size_t dlen = len + 8 * (size_t)n;
	encbuf *e = enc_buf(dlen);
	if (e == NULL)
		return SPOOL_EIO;
	encode(data, len, e->p);

	pthread_mutex_lock(&s->mu);
	while (!s->closed && s->unacked_bytes > 0 && s->unacked_bytes + dlen > s->o.max_bytes)
		pthread_cond_wait(&s->can_write, &s->mu);
	if (s->closed) {
		pthread_mutex_unlock(&s->mu);
		return SPOOL_ECLOSED;
	}
	int rc = SPOOL_OK;
	if (s->woff > 0 && (s->roll || s->woff + dlen > s->o.segment_bytes) &&
	    open_write_segment(s, s->wseg + 1, 0) < 0)
		rc = -1;
	else if (write_full(s->wfd, e->p, dlen, s->woff) < 0) {
		int why = errno;
		if (ftruncate(s->wfd, (off_t)s->woff) < 0) {
			/* Cutting back to the last whole record failed too:
			 * the next append overwrites the bytes after woff,
			 * or the next open moves them aside as a torn tail. */
		}
		errno = why;
		rc = -1;
	}
	if (rc < 0)
		rc = errno == ENOSPC || errno == EDQUOT ? SPOOL_ENOSPC : SPOOL_EIO;
	int say = 0, give = 0;
	int64_t t = 0;
	if (rc == SPOOL_OK) {
		s->woff += dlen;
		s->unacked_bytes += dlen;
		s->unacked_recs += (uint64_t)n;
		if (s->o.fsync_ms == 0 && fdatasync(s->wfd) < 0)
			s->sync_failed = 1;
		else
			s->dirty = 1;
		/* Wake one reader, not all: a sink's delivery threads all wait
		 * here, and a broadcast per append would wake each of them per
		 * message.  A reader that leaves records behind wakes the next
		 * (spool_next). */
		pthread_cond_signal(&s->can_read);
		if (s->nospace) {
			t = now_s() - s->nospace_since;
			s->nospace = 0;
			say = s->nospace_quiet ? 0 : 3;
		}
	} else if (rc == SPOOL_ENOSPC) {
		int64_t now = now_s();
		if (!s->nospace) {
			/* A disk at its limit flaps between full and not as
			 * space is given back: one pair of lines per 10 s. */
			s->nospace = 1;
			s->nospace_since = now;
			s->nospace_quiet = s->nospace_said != 0 && now - s->nospace_said < NOSPACE_REMIND_S;
			if (!s->nospace_quiet) {
				s->nospace_said = now;
				say = 1;
			}
		} else if (now - s->nospace_said >= NOSPACE_REMIND_S) {
			s->nospace_said = now;
			t = now - s->nospace_since;
			say = 2;
		}
		/* Short of space, any acknowledged block is worth having. */
		if (reclaim_due(s)) {
			if (s->has_syncer)
				pthread_cond_signal(&s->can_sync);
			else
				give = 1;
		}
	}
	pthread_mutex_unlock(&s->mu);
	enc_done(e);
	if (give)
		give_back(s);   /* a retry may find the space */
	if (say) {
		char kv[700];
		snprintf(kv, sizeof(kv), "\"spool\":%s,\"seconds\":%lld", s->qdir, (long long)t);
		if (say == 1)
			log_kv(LOG_WARN, kv, "spool %s: no space left on device; holding new records until space returns",
			    s->dir);
		else if (say == 2)
			log_kv(LOG_WARN, kv, "spool %s: still no space left on device after %lld s; holding new records",
			    s->dir, (long long)t);
		else
			log_kv(LOG_INFO, kv, "spool %s: space is back after %lld s", s->dir, (long long)t);
	}
	return rc;
}

int
spool_sync(spool *s)
{
	/* Always synced, dirty or not: the syncer thread may have cleared
	 * dirty and still be inside its own fdatasync. */
	pthread_mutex_lock(&s->mu);
	int fd = s->wfd >= 0 ? dup(s->wfd) : -1;
	int had = s->wfd >= 0, failed = s->sync_failed;
	s->sync_failed = 0;
	pthread_mutex_unlock(&s->mu);
	if (had && fd < 0)
		failed = 1;
	if (fd >= 0) {
		failed |= fdatasync(fd) < 0;
		close(fd);
	}
	return failed ? SPOOL_EIO : SPOOL_OK;
}

int
spool_append_batch(spool *s, const void *batch, size_t len)
{
	env_iter it;
	int n = env_batch_open(&it, batch, len);
	if (n < 0)
		return SPOOL_EBATCH;
	/* The batch body is already spool framing: one write takes it all. */
	int rc = spool_append(s, it.p, (size_t)(it.end - it.p), (uint32_t)n);
	return rc == SPOOL_OK ? n : rc;
}

/* ---- reading ------------------------------------------------------------ */

static int
open_read_segment(spool *s, uint64_t seg)
{
	if (s->rfd >= 0 && s->rfd_seg == seg)
		return 0;
	char path[4200];
	if (s->rfd >= 0)
		close(s->rfd);
	seg_path(s, seg, path, sizeof(path));
	s->rfd = open(path, O_RDONLY | O_CLOEXEC);
	s->rfd_seg = seg;
	return s->rfd < 0 ? -1 : 0;
}

/* Read-time damage: the records counted for the region are gone. */
static uint64_t
read_damage(spool *s, uint64_t seg, uint64_t off, uint64_t end)
{
	uint64_t recs, next = damage(s, seg, off, end, 0, &recs);
	s->unacked_recs -= recs < s->unacked_recs ? recs : s->unacked_recs;
	return next > off ? next : end;
}

/* Reads [*off, end) of segment seg into out, as whole records, at most
 * max_recs and about max_bytes.  The disk bytes are read straight into
 * out and each record's crc is checked as it is moved down over the
 * headers.  Returns records read; advances *off over them and over any
 * skipped or damaged bytes. */
static int
read_records(spool *s, uint64_t seg, uint64_t *off, uint64_t end, buf *out, int max_recs, size_t max_bytes)
{
	uint64_t avail = end - *off;
	size_t want = avail < max_bytes ? (size_t)avail : max_bytes;
	if (want < HDR)
		want = avail < HDR ? (size_t)avail : HDR;
	size_t base = out->len;
	buf_reserve(out, want);
	ssize_t got = pread(s->rfd, out->data + base, want, (off_t)*off);
	if (got < 0)
		return SPOOL_EIO;
	size_t r = 0, w = 0;
	int n = 0;
	while (n < max_recs && r < (size_t)got) {
		uint64_t pos = *off + r;
		unsigned char *h = (unsigned char *)out->data + base + r;
		if ((size_t)got - r < HDR) {
			if (pos + HDR <= end && got == (ssize_t)want)
				break;   /* the rest of the header is in the next read */
			r = (size_t)(read_damage(s, seg, pos, end) - *off);
			break;
		}
		uint32_t m = rd32(h), len = rd32(h + 4), c = rd32(h + 8);
		if (m == SPOOL_SKIP_MAGIC && c == (uint32_t)crc32_z(0, h, 8) && len <= end - pos - HDR) {
			r += HDR + (size_t)len;
			continue;
		}
		if (m != SPOOL_REC_MAGIC || len > MAX_RECORD || len > end - pos - HDR) {
			r = (size_t)(read_damage(s, seg, pos, end) - *off);
			break;
		}
		if (r + HDR + len > (size_t)got) {
			if (r > 0)
				break;   /* the next call starts with it */
			/* A record larger than max_bytes: read it whole. */
			buf_reserve(out, HDR + (size_t)len);
			if (pread(s->rfd, out->data + base, HDR + (size_t)len, (off_t)pos) != (ssize_t)(HDR + len))
				return SPOOL_EIO;
			got = (ssize_t)(HDR + len);
			h = (unsigned char *)out->data + base;
		}
		if ((uint32_t)crc32_z(crc32_z(0, h, 8), h + HDR, len) != c) {
			r = (size_t)(read_damage(s, seg, pos, end) - *off);
			break;
		}
		/* The payload starts 12 bytes in; w <= r, so writing the
		 * length at w cannot reach it. */
		wr32((unsigned char *)out->data + base + w, len);
		memmove(out->data + base + w + 4, h + HDR, len);
		w += 4 + (size_t)len;
		r += HDR + (size_t)len;
		n++;
	}
	out->len = base + w;
	out->data[out->len] = 0;
	*off += r;
	return n;
}

static int
has_unread(const spool *s)
{
	return s->rseg < s->wseg || s->roff < s->woff;
}

/* Moves the ack over finished batches at the head.  Returns 1 when the
 * caller should give space back itself (there is no syncer to do it). */
static int
advance_ack(spool *s)
{
	int moved = 0;
	while (s->thead < s->ttail && s->t[s->thead % MAX_TICKETS].done) {
		ticket *t = &s->t[s->thead % MAX_TICKETS];
		s->aseg = t->seg;
		s->aoff = t->off;
		s->unacked_bytes -= t->bytes < s->unacked_bytes ? t->bytes : s->unacked_bytes;
		s->unacked_recs -= t->recs < s->unacked_recs ? t->recs : s->unacked_recs;
		s->thead++;
		moved = 1;
	}
	if (!moved)
		return 0;
	if (s->aseg == s->wseg && s->aoff == s->woff) {
		/* Counts estimated over damage become exact again. */
		s->unacked_bytes = s->unacked_recs = 0;
		if (!s->punch_ok && s->woff > ROLL_MIN)
			s->roll = 1;
	}
	write_ack(s);
	pthread_cond_broadcast(&s->can_write);
	pthread_cond_broadcast(&s->can_ticket);
	if (!reclaim_due(s))
		return 0;
	if (!s->has_syncer)
		return 1;
	if (s->nospace)
		pthread_cond_signal(&s->can_sync);   /* appends wait for this space */
	return 0;
}

int
spool_next(spool *s, buf *out, int max_recs, size_t max_bytes, int timeout_ms, uint64_t *ticket_id)
{
	struct timespec dl;
	deadline_in(&dl, timeout_ms);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->closed) {
			pthread_mutex_unlock(&s->mu);
			return SPOOL_ECLOSED;
		}
		if (has_unread(s) && s->ttail - s->thead < MAX_TICKETS)
			break;
		if (pthread_cond_timedwait(has_unread(s) ? &s->can_ticket : &s->can_read, &s->mu, &dl) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
	}
	size_t before = out->len;
	uint64_t bytes = 0, seg0 = s->rseg, off0 = s->roff;
	int total = 0, rc = 0;
	while (total < max_recs && out->len - before < max_bytes) {
		uint64_t segend = s->woff;
		if (s->rseg != s->wseg) {
			struct stat st;
			if (open_read_segment(s, s->rseg) < 0) {
				if (errno != ENOENT) {
					rc = SPOOL_EIO;
					break;
				}
				log_error("spool %s: segment %llu is missing; going on with the next", s->dir,
				    (unsigned long long)s->rseg);
				s->rseg++;
				s->roff = 0;
				continue;
			}
			if (fstat(s->rfd, &st) < 0) {
				rc = SPOOL_EIO;
				break;
			}
			segend = (uint64_t)st.st_size;
		}
		if (s->roff >= segend) {
			if (s->rseg == s->wseg)
				break;
			s->rseg++;
			s->roff = 0;
			continue;
		}
		if (open_read_segment(s, s->rseg) < 0) {
			rc = SPOOL_EIO;
			break;
		}
		uint64_t from = s->roff;
		int n = read_records(s, s->rseg, &s->roff, segend, out, max_recs - total,
		    max_bytes - (out->len - before));
		if (n < 0) {
			rc = n;
			break;
		}
		bytes += s->roff - from;
		total += n;
		if (n == 0 && s->roff == from)
			break;
	}
	int give = 0;
	if (total > 0 || s->rseg != seg0 || s->roff != off0) {
		/* A batch with no records (only skipped or damaged bytes, or
		 * a move to the next segment) is done at once, so the ack can
		 * pass over it. */
		ticket *t = &s->t[s->ttail % MAX_TICKETS];
		t->id = s->next_ticket++;
		t->seg = s->rseg;
		t->off = s->roff;
		t->bytes = bytes;
		t->recs = (uint64_t)total;
		t->done = total == 0;
		s->ttail++;
		if (total > 0)
			*ticket_id = t->id;
		else
			give = advance_ack(s);
	}
	if (has_unread(s))
		pthread_cond_signal(&s->can_read);
	pthread_mutex_unlock(&s->mu);
	if (give)
		give_back(s);
	return total == 0 && rc < 0 ? rc : total;
}

int
spool_done(spool *s, uint64_t id)
{
	pthread_mutex_lock(&s->mu);
	for (uint64_t i = s->thead; i < s->ttail; i++)
		if (s->t[i % MAX_TICKETS].id == id)
			s->t[i % MAX_TICKETS].done = 1;
	int give = advance_ack(s);
	pthread_mutex_unlock(&s->mu);
	if (give)
		give_back(s);
	return SPOOL_OK;
}

uint64_t
spool_pending(spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t n = s->unacked_recs;
	/* After damage found while reading, the count is an estimate until
	 * the ack reaches the write position: never report an empty spool
	 * that still holds unacknowledged bytes. */
	if (n == 0 && (s->aseg != s->wseg || s->aoff != s->woff))
		n = 1;
	pthread_mutex_unlock(&s->mu);
	return n;
}

uint64_t
spool_pending_bytes(spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t n = s->unacked_bytes;
	pthread_mutex_unlock(&s->mu);
	return n;
}

uint64_t
spool_damaged(spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t n = s->damaged;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ---- open and close ----------------------------------------------------- */

/* Finds the ack position, converting a legacy spool and finishing an
 * interrupted conversion first.  *have: 1 position, 0 start at the oldest
 * segment. */
static int
open_ack(spool *s, listing *l, int *have, uint64_t *aseg, uint64_t *aoff, char *err, size_t errcap)
{
	char path[4200];
	struct stat st = {0};
	snprintf(path, sizeof(path), "%s/ack", s->dir);
	*have = 0;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fd >= 0 && fstat(fd, &st) == 0 && (st.st_size == 0 || st.st_size == 16)) {
		int rc = convert_legacy(s, l, fd, (uint64_t)st.st_size);
		close(fd);
		if (rc == -1) {
			snprintf(err, errcap, "%s: cannot convert the spool to the checksummed format: %s", s->dir,
			    strerror(errno));
			return -1;
		}
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (rc == -2)
			log_error("spool %s: the ack file looks like an old format but the segments are not; "
			    "treating it as damaged", s->dir);
	} else if (fd >= 0 && l->convs.n > 0) {
		rename_convs(s, l);   /* a conversion whose new ack is in place */
	} else if (fd < 0) {
		if (l->segs.n > 0)
			log_error("spool %s: the ack file is missing; every record present is delivered again", s->dir);
		if (ack_create(s, 0, 0, 0) < 0) {
			snprintf(err, errcap, "%s: %s", path, strerror(errno));
			return -1;
		}
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	s->ackfd = fd;
	if (fd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return -1;
	}
	list_free(l);
	if (list_dir(s->dir, l) < 0) {
		snprintf(err, errcap, "%s: %s", s->dir, strerror(errno));
		return -1;
	}
	int rc = ack_load(s, aseg, aoff);
	if (rc < 0 && ack_set_aside(s) < 0) {
		snprintf(err, errcap, "%s: cannot set the damaged ack file aside: %s", s->dir, strerror(errno));
		return -1;
	}
	*have = rc > 0;
	return 0;
}

spool *
spool_open(const char *dir, const spool_opts *o, char *err, size_t errcap)
{
	spool_opts def = SPOOL_OPTS_DEFAULT;
	char path[4200];
	listing l = {0};
	spool *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	s->o = o ? *o : def;
	if (s->o.max_bytes == 0)
		s->o.max_bytes = def.max_bytes;
	if (s->o.segment_bytes == 0)
		s->o.segment_bytes = def.segment_bytes;
	s->dir = strdup(dir);
	log_json_str(s->qdir, sizeof(s->qdir), dir);
	s->lockfd = s->ackfd = s->wfd = s->rfd = s->dirfd = -1;
	s->punch_ok = 1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->can_sync, NULL);
	pthread_cond_init(&s->can_read, NULL);
	pthread_cond_init(&s->can_write, NULL);
	pthread_cond_init(&s->can_ticket, NULL);
	s->next_ticket = 1;
	if (s->dir == NULL) {
		snprintf(err, errcap, "out of memory");
		goto fail;
	}

	/* The lock we hold must be the file at dir/lock: an instance adopting
	 * this spool (spool_adopt_orphans) unlinks the lock of a drained spool
	 * while holding it, and may remove the directory after; a flock won on
	 * such an unlinked file locks nothing anyone else sees (two owners,
	 * and the adopter's removal would take our new files).  So check, and
	 * start over on a fresh file. */
	snprintf(path, sizeof(path), "%s/lock", dir);
	for (int tries = 0;; tries++) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errcap, "%s: %s", dir, strerror(errno));
			goto fail;
		}
		s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (s->lockfd < 0) {
			if (errno == ENOENT && tries < 5)
				continue;   /* the directory went between mkdir and open */
			snprintf(err, errcap, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
			snprintf(err, errcap, "%s: in use by another process", dir);
			errno = EBUSY;
			goto fail;
		}
		struct stat held, named;
		if (fstat(s->lockfd, &held) == 0 && held.st_nlink > 0 && stat(path, &named) == 0 &&
		    held.st_dev == named.st_dev && held.st_ino == named.st_ino)
			break;
		close(s->lockfd);
		s->lockfd = -1;
		if (tries >= 5) {
			snprintf(err, errcap, "%s: its lock file keeps being replaced", dir);
			errno = EBUSY;
			goto fail;
		}
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0 || list_dir(dir, &l) < 0) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	int have;
	uint64_t aseg = 0, aoff = 0;
	if (open_ack(s, &l, &have, &aseg, &aoff, err, errcap) < 0)
		goto fail;

	/* Segments behind a verified ack are done (a crash came between the
	 * ack and their unlink); without one, everything present is
	 * delivered again from the oldest. */
	size_t i = 0;
	if (have) {
		for (; i < l.segs.n && l.segs.v[i] < aseg; i++) {
			seg_path(s, l.segs.v[i], path, sizeof(path));
			unlink(path);
		}
	}
	uint64_t last = 0, lastend = 0;
	s->aseg = 0;
	for (size_t k = i; k < l.segs.n; k++) {
		uint64_t seg = l.segs.v[k], start = have && seg == aseg ? aoff : 0, end, recs;
		if (scan_segment(s, seg, &start, k == i, k + 1 == l.segs.n, &end, &recs) < 0) {
			snprintf(err, errcap, "%s: cannot read segment %llu: %s", dir, (unsigned long long)seg,
			    strerror(errno));
			goto fail;
		}
		if (k == i) {
			s->aseg = seg;
			s->aoff = start;
		}
		s->unacked_recs += recs;
		s->unacked_bytes += end - start;
		last = seg;
		lastend = end;
	}
	if (l.segs.n == i) {
		/* Nothing to read: a fresh segment, numbered past any earlier
		 * one so that damaged-<seg>-* names are never reused. */
		last = have && aseg > l.next_free ? aseg : l.next_free;
		s->aseg = last;
		s->aoff = 0;
	}
	if (s->unacked_recs == 0 && s->unacked_bytes == 0) {
		s->aseg = last;   /* nothing left before the end: the ack is there */
		s->aoff = lastend;
	}
	s->rseg = s->useg = s->pseg = s->aseg;
	s->roff = s->aoff;
	if (open_write_segment(s, last, lastend) < 0) {
		snprintf(err, errcap, "%s: cannot open segment: %s", dir, strerror(errno));
		goto fail;
	}
	list_free(&l);
	give_back(s);   /* what an earlier run acknowledged but did not punch */
	if (s->o.fsync_ms > 0) {
		if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
			snprintf(err, errcap, "%s: cannot start the sync thread", dir);
			goto fail;
		}
		s->has_syncer = 1;
	}
	return s;
fail:
	list_free(&l);
	spool_close(s);
	return NULL;
}

void
spool_shutdown(spool *s)
{
	pthread_mutex_lock(&s->mu);
	s->closed = 1;
	pthread_cond_broadcast(&s->can_read);
	pthread_cond_broadcast(&s->can_write);
	pthread_cond_broadcast(&s->can_ticket);
	pthread_cond_broadcast(&s->can_sync);
	pthread_mutex_unlock(&s->mu);
}

void
spool_close(spool *s)
{
	if (s == NULL)
		return;
	if (s->has_syncer) {
		spool_shutdown(s);
		pthread_join(s->syncer, NULL);
	}
	if (s->wfd >= 0) {
		fdatasync(s->wfd);
		close(s->wfd);
	}
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->ackfd >= 0) {
		if (s->ack_dirty)
			fdatasync(s->ackfd);
		close(s->ackfd);
	}
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->can_read);
	pthread_cond_destroy(&s->can_write);
	pthread_cond_destroy(&s->can_ticket);
	pthread_cond_destroy(&s->can_sync);
	free(s->dir);
	free(s);
}

/* ---- orphans ------------------------------------------------------------ */

/* Removes the spool's own files only: damaged-* (and anything a human put
 * there) stay, and then so does the directory. */
static void
remove_spool_files(const char *dir, int lock_too)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strncmp(n, "seg-", 4) != 0 && strncmp(n, "conv-", 5) != 0 && strcmp(n, "ack") != 0 &&
		    strcmp(n, "ack.tmp") != 0 && !(lock_too && strcmp(n, "lock") == 0))
			continue;
		char p[5000];
		snprintf(p, sizeof(p), "%s/%s", dir, n);
		unlink(p);
	}
	closedir(d);
}

int
spool_adopt_orphans(const char *parent, const char *self,
    void (*fn)(spool *orphan, const char *name, void *arg), void *arg)
{
	DIR *d = opendir(parent);
	if (d == NULL)
		return 0;
	int adopted = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, self) == 0)
			continue;
		char dir[4700], err[256];
		snprintf(dir, sizeof(dir), "%s/%s", parent, de->d_name);
		struct stat st;
		listing l;
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || list_dir(dir, &l) < 0)
			continue;
		/* A drained spool whose damaged-* files kept its directory:
		 * nothing to deliver, and opening it every second would only
		 * churn files. */
		int leftovers = l.segs.n == 0 && l.convs.n == 0 && l.has_damaged;
		list_free(&l);
		if (leftovers)
			continue;
		spool *o = spool_open(dir, NULL, err, sizeof(err));
		if (o == NULL)
			continue;   /* its owner is alive */
		adopted++;
		fn(o, de->d_name, arg);
		int empty = spool_pending(o) == 0;
		/* A drained spool's files go while we still hold its lock, and
		 * after spool_close, so that no thread of ours (the syncer gives
		 * space back by path) touches the directory any more: the dup
		 * keeps the flock past the close.  The lock file goes last, so
		 * an owner coming back cannot take a lock while we remove; once
		 * it is gone, the owner opens a fresh one (spool_open checks it
		 * holds the one named) and nothing it creates is ours to remove:
		 * rmdir fails, rightly, if it (or damaged-* files) are there. */
		int hold = empty ? dup(o->lockfd) : -1;
		spool_close(o);
		if (hold >= 0) {
			char lockp[4800];
			remove_spool_files(dir, 0);
			snprintf(lockp, sizeof(lockp), "%s/lock", dir);
			unlink(lockp);
			close(hold);
			rmdir(dir);
		}
	}
	closedir(d);
	return adopted;
}
