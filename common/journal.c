/* journal: see journal.h.  Only the C library and zlib: the writer is
 * linked into the mosquitto plugin. */
#include "common/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SEG_PREFIX "j-"
#define DEFAULT_SEGMENT (4u << 20)

static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t
rec_crc(const unsigned char hdr[8], const void *body, size_t len)
{
	uLong c = crc32(0L, hdr, 8);
	return (uint32_t)crc32(c, body, (uInt)len);
}

/* The number of a segment file name, or -1 for any other name. */
static int64_t
seg_number(const char *name)
{
	if (strncmp(name, SEG_PREFIX, 2) != 0 || strlen(name) != 22)
		return -1;
	int64_t v = 0;
	for (const char *p = name + 2; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

/* Walks the segments of dfd: the lowest number >= from (or -1), the
 * highest number (or -1), and the bytes of all of them. */
static int
seg_scan(int dfd, int64_t from, int64_t *lowest, int64_t *highest, uint64_t *bytes)
{
	int fd = dup(dfd);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	*lowest = *highest = -1;
	if (bytes)
		*bytes = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int64_t n = seg_number(de->d_name);
		if (n < 0)
			continue;
		if (n >= from && (*lowest < 0 || n < *lowest))
			*lowest = n;
		if (n > *highest)
			*highest = n;
		struct stat st;
		if (bytes && fstatat(dfd, de->d_name, &st, 0) == 0)
			*bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	return 0;
}

static void
seg_name(char out[32], int64_t n)
{
	snprintf(out, 32, SEG_PREFIX "%020" PRId64, n);
}

static int
open_dir(const char *dir, char *err, size_t errcap)
{
	if (mkdir(dir, 0770) < 0 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		snprintf(err, errcap, "cannot open %s: %s", dir, strerror(errno));
	return dfd;
}

/* ---- writer ------------------------------------------------------------- */

struct journal_writer {
	int dfd, lockfd, fd;
	int64_t seq;
	uint64_t woff, max, segmax, total;
	int64_t scan_s;      /* monotonic second of the last recount */
	int rotate;          /* the current segment may end in bad bytes */
	int dirty;           /* written since the last fdatasync */
};

static int64_t
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* Starts segment seq + 1.  The directory is synced so that the new
 * file's name survives a lost machine as its records do. */
static int
new_segment(journal_writer *w)
{
	char name[32];
	seg_name(name, w->seq + 1);
	int fd = openat(w->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (fsync(w->dfd) < 0) {
		int e = errno;
		close(fd);
		unlinkat(w->dfd, name, 0);
		errno = e;
		return -1;
	}
	/* The segment being left is not synced here (the writer may be the
	 * broker's thread): journal_sync_dir, run by the reader's side, syncs
	 * every segment. */
	if (w->fd >= 0)
		close(w->fd);
	w->dirty = 0;
	w->fd = fd;
	w->seq++;
	w->woff = 0;
	w->rotate = 0;
	return 0;
}

journal_writer *
journal_writer_open(const char *dir, uint64_t max_bytes, uint64_t segment_bytes, char *err, size_t errcap)
{
	journal_writer *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	w->fd = w->lockfd = -1;
	w->max = max_bytes;
	w->segmax = segment_bytes ? segment_bytes : DEFAULT_SEGMENT;
	w->dfd = open_dir(dir, err, errcap);
	if (w->dfd < 0)
		goto fail;
	w->lockfd = openat(w->dfd, "writer.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->lockfd < 0) {
		snprintf(err, errcap, "cannot open %s/writer.lock: %s", dir, strerror(errno));
		goto fail;
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errcap, "%s is in use by another writer (writer.lock: %s)", dir, strerror(errno));
		goto fail;
	}
	int64_t lo, hi;
	if (seg_scan(w->dfd, 0, &lo, &hi, &w->total) < 0) {
		snprintf(err, errcap, "cannot list %s: %s", dir, strerror(errno));
		goto fail;
	}
	w->seq = hi < 0 ? 0 : hi;
	if (new_segment(w) < 0) {
		snprintf(err, errcap, "cannot create a segment in %s: %s", dir, strerror(errno));
		goto fail;
	}
	w->scan_s = mono_s();
	return w;
fail:
	journal_writer_close(w);
	return NULL;
}

static int
err_code(int e)
{
	return e == ENOSPC || e == EDQUOT ? JOURNAL_ENOSPC : JOURNAL_EIO;
}

int
journal_append(journal_writer *w, const void *rec, size_t len, int sync)
{
	if (len > JOURNAL_REC_MAX) {
		errno = EMSGSIZE;
		return JOURNAL_EIO;
	}
	uint64_t need = len + JOURNAL_REC_HDR;
	if (w->max && w->total + need > w->max) {
		/* The reader gives space back by deleting segments: count
		 * again, but not more than once a second. */
		int64_t now = mono_s();
		if (now != w->scan_s) {
			int64_t lo, hi;
			uint64_t bytes;
			w->scan_s = now;
			if (seg_scan(w->dfd, 0, &lo, &hi, &bytes) == 0)
				w->total = bytes;
		}
		if (w->total + need > w->max)
			return JOURNAL_EFULL;
	}
	if (w->rotate || (w->woff > 0 && w->woff + need > w->segmax)) {
		if (new_segment(w) < 0)
			return err_code(errno);
	}
	unsigned char hdr[JOURNAL_REC_HDR];
	put32(hdr, JOURNAL_REC_MAGIC);
	put32(hdr + 4, (uint32_t)len);
	put32(hdr + 8, rec_crc(hdr, rec, len));
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)rec, len}};
	size_t done = 0;
	int e = 0;
	while (done < need) {
		/* Past the header the iovec is rebuilt from what is left. */
		struct iovec v[2];
		int nv = 0;
		if (done < sizeof(hdr)) {
			v[nv++] = (struct iovec){hdr + done, sizeof(hdr) - done};
			v[nv++] = iov[1];
		} else
			v[nv++] = (struct iovec){(char *)rec + (done - sizeof(hdr)), need - done};
		ssize_t n = pwritev(w->fd, v, nv, (off_t)(w->woff + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : ENOSPC;
			break;
		}
		done += (size_t)n;
	}
	if (e == 0 && sync && fdatasync(w->fd) < 0)
		e = errno;
	else if (e == 0)
		w->dirty = !sync;
	if (e) {
		/* Cut the record off so that the reader never sees it; after
		 * a failed sync the state of the file's pages is unknown, so
		 * the next record goes to a new segment (reader: a sealed
		 * segment may end in bad bytes, never hold them in between). */
		if (ftruncate(w->fd, (off_t)w->woff) < 0 || done == need)
			w->rotate = 1;
		errno = e;
		return err_code(e);
	}
	w->woff += need;
	w->total += need;
	return JOURNAL_OK;
}

int
journal_writer_sync(journal_writer *w)
{
	if (!w->dirty)
		return JOURNAL_OK;
	if (fdatasync(w->fd) < 0) {
		/* The pages' state is unknown after a failed sync (they may
		 * be marked clean and lost): later records go to a new
		 * segment, and the caller reports it. */
		w->rotate = 1;
		return err_code(errno);
	}
	w->dirty = 0;
	return JOURNAL_OK;
}

int
journal_sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return JOURNAL_EIO;
	int64_t lo, hi;
	int rc = JOURNAL_OK, e = 0;
	if (seg_scan(dfd, 0, &lo, &hi, NULL) < 0) {
		e = errno;
		rc = JOURNAL_EIO;
		lo = hi = -1;
	}
	/* Segments are numbered without gaps from the lowest the reader
	 * has not deleted yet; one deleted meanwhile is skipped (ENOENT). */
	for (int64_t n = lo; n >= 0 && n <= hi; n++) {
		char name[32];
		seg_name(name, n);
		int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT) {
				e = errno;
				rc = JOURNAL_EIO;
			}
			continue;
		}
		if (fdatasync(fd) < 0) {
			e = errno;
			rc = err_code(e);
		}
		close(fd);
	}
	close(dfd);
	if (rc != JOURNAL_OK)
		errno = e;
	return rc;
}

int
journal_writer_dirty(const journal_writer *w)
{
	return w->dirty;
}

uint64_t
journal_writer_bytes(const journal_writer *w)
{
	return w->total;
}

void
journal_writer_close(journal_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->lockfd >= 0)
		close(w->lockfd);   /* releases the flock */
	if (w->dfd >= 0)
		close(w->dfd);
	free(w);
}

/* ---- reader ------------------------------------------------------------- */

struct journal_reader {
	int dfd, fd, cfd, lockfd;
	int64_t seq;        /* segment being read (fd), or the next to look for */
	uint64_t off;       /* consumed up to here */
	uint64_t pend_off;  /* handed out up to here by the last journal_read */
	int pend_final;     /* ... and that is the end of a sealed segment */
	uint64_t pend_torn; /* ... after which these bytes are torn */
	uint64_t torn;
	int (*durable)(void *arg);   /* journal_reader_set_durable */
	void *durable_arg;
	/* What one pread of up to READ_CHUNK bytes brought of segment
	 * cache_seq from cache_off: records are taken from here rather than
	 * with two preads each.  Dropped whenever a record there is found
	 * incomplete or bad (the writer may cut a failed write off and write
	 * the next record over those bytes). */
	buf cache;
	uint64_t cache_off;
	int64_t cache_seq;
};

#define READ_CHUNK (256u << 10)

/* read_at through the cache: 1 when n bytes at off were copied to p, 0 at
 * the end of what the segment holds, -1 on error. */
static int
cached_read(journal_reader *r, void *p, size_t n, uint64_t off)
{
	if (r->cache_seq != r->seq || off < r->cache_off || off + n > r->cache_off + r->cache.len) {
		size_t want = n > READ_CHUNK ? n : READ_CHUNK, got = 0;
		r->cache.len = 0;
		r->cache_seq = -1;
		buf_reserve(&r->cache, want);
		while (got < want) {
			ssize_t k = pread(r->fd, r->cache.data + got, want - got, (off_t)(off + got));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -1;
			if (k == 0)
				break;
			got += (size_t)k;
		}
		r->cache.len = got;
		r->cache_off = off;
		r->cache_seq = r->seq;
		if (got < n)
			return 0;
	}
	memcpy(p, r->cache.data + (off - r->cache_off), n);
	return 1;
}

static void
save_cursor(journal_reader *r)
{
	unsigned char c[16];
	put32(c, (uint32_t)r->seq);
	put32(c + 4, (uint32_t)((uint64_t)r->seq >> 32));
	put32(c + 8, (uint32_t)r->off);
	put32(c + 12, (uint32_t)(r->off >> 32));
	/* No sync: a lost cursor means records read again, never lost. */
	if (pwrite(r->cfd, c, sizeof(c), 0) != (ssize_t)sizeof(c)) {
		/* Same: the next start reads from an older position. */
	}
}

journal_reader *
journal_reader_open(const char *dir, char *err, size_t errcap)
{
	journal_reader *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	r->fd = r->cfd = r->lockfd = -1;
	r->cache_seq = -1;
	r->dfd = open_dir(dir, err, errcap);
	if (r->dfd < 0)
		goto fail;
	/* One reader: two would hand out the same records twice. */
	r->lockfd = openat(r->dfd, "reader.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lockfd < 0 || flock(r->lockfd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errcap, "%s is in use by another reader (reader.lock: %s)", dir, strerror(errno));
		goto fail;
	}
	r->cfd = openat(r->dfd, "cursor", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->cfd < 0) {
		snprintf(err, errcap, "cannot open %s/cursor: %s", dir, strerror(errno));
		goto fail;
	}
	unsigned char c[16];
	if (pread(r->cfd, c, sizeof(c), 0) == (ssize_t)sizeof(c)) {
		r->seq = (int64_t)((uint64_t)get32(c) | (uint64_t)get32(c + 4) << 32);
		r->off = (uint64_t)get32(c + 8) | (uint64_t)get32(c + 12) << 32;
		if (r->seq < 0)
			r->seq = r->off = 0;
	}
	return r;
fail:
	journal_reader_close(r);
	return NULL;
}

/* Reads exactly n bytes at off: 1, 0 if the file ends first, -1 error. */
int
journal_read(journal_reader *r, buf *out, int max_recs, size_t max_bytes)
{
	for (;;) {
		int64_t lo = -1, hi = -1;
		/* The lowest segment of all, not the lowest after the cursor:
		 * a writer that finds the directory empty numbers from 1 again.
		 * A directory scan costs several system calls: only when no
		 * segment is open. */
		if (r->fd < 0 && seg_scan(r->dfd, 0, &lo, &hi, NULL) < 0)
			return JOURNAL_EIO;
		if (r->fd < 0) {
			if (lo < 0)
				return 0;
			if (lo != r->seq) {
				r->seq = lo;
				r->off = 0;
			}
			char name[32];
			seg_name(name, r->seq);
			r->fd = openat(r->dfd, name, O_RDONLY | O_CLOEXEC);
			if (r->fd < 0)
				return JOURNAL_EIO;
		}
		/* Sealed is decided before reading: the writer never adds to
		 * a segment once a later one exists, so what is read after
		 * this is the segment's final content. */
		/* A segment is sealed once a later one exists; the writer makes
		 * them one after the other and the reader deletes them in
		 * order, so the next number is the one to look for. */
		char next[32];
		seg_name(next, r->seq + 1);
		int sealed = faccessat(r->dfd, next, F_OK, 0) == 0;
		uint64_t pos = r->off;
		int n = 0;
		r->pend_final = 0;
		r->pend_torn = 0;
		while (n < max_recs && (n == 0 || pos - r->off < max_bytes)) {
			unsigned char hdr[JOURNAL_REC_HDR];
			int k = cached_read(r, hdr, sizeof(hdr), pos);
			if (k < 0)
				return JOURNAL_EIO;
			uint32_t len = get32(hdr + 4);
			int bad = k == 0 || get32(hdr) != JOURNAL_REC_MAGIC || len > JOURNAL_REC_MAX;
			size_t mark = out->len;
			if (!bad) {
				buf_add_u32(out, len);
				buf_reserve(out, len);
				k = cached_read(r, out->data + out->len, len, pos + sizeof(hdr));
				if (k < 0) {
					out->len = mark;
					return JOURNAL_EIO;
				}
				bad = k == 0 || rec_crc(hdr, out->data + out->len, len) != get32(hdr + 8);
			}
			if (bad) {
				out->len = mark;
				r->cache_seq = -1;   /* read these bytes again next time */
				if (out->data)
					out->data[out->len] = 0;
				if (sealed) {
					/* The end of a sealed segment: either its clean
					 * end, or a torn record never acknowledged. */
					struct stat st;
					if (fstat(r->fd, &st) < 0)
						return JOURNAL_EIO;
					if ((uint64_t)st.st_size > pos)
						r->pend_torn = (uint64_t)st.st_size - pos;
					r->pend_final = 1;
				}
				break;
			}
			out->len += len;
			out->data[out->len] = 0;
			pos += sizeof(hdr) + len;
			n++;
		}
		r->pend_off = pos;
		if (n > 0 || !r->pend_final)
			return n;
		/* Nothing left in a sealed segment: everything in it was
		 * consumed before, so it can go; then read the next one. */
		if (journal_consumed(r) < 0)
			return JOURNAL_EIO;
	}
}

void
journal_reader_set_durable(journal_reader *r, int (*durable)(void *arg), void *arg)
{
	r->durable = durable;
	r->durable_arg = arg;
}

int
journal_consumed(journal_reader *r)
{
	r->off = r->pend_off;
	if (r->pend_final && r->fd >= 0) {
		if (r->durable && r->durable(r->durable_arg) != 0) {
			/* Not deleted yet: the next call tries again. */
			save_cursor(r);
			return JOURNAL_EIO;
		}
		r->torn += r->pend_torn;
		r->pend_torn = 0;
		char name[32];
		seg_name(name, r->seq);
		close(r->fd);
		r->fd = -1;
		if (unlinkat(r->dfd, name, 0) < 0 && errno != ENOENT)
			return JOURNAL_EIO;
		r->seq++;
		r->off = r->pend_off = 0;
		r->pend_final = 0;
	}
	save_cursor(r);
	return JOURNAL_OK;
}

uint64_t
journal_reader_torn(const journal_reader *r)
{
	return r->torn;
}

void
journal_reader_close(journal_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	buf_free(&r->cache);
	if (r->cfd >= 0)
		close(r->cfd);
	if (r->lockfd >= 0)
		close(r->lockfd);
	if (r->dfd >= 0)
		close(r->dfd);
	free(r);
}
