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

#include "common/deadline.h"
#include "common/envelope.h"

#define MAX_RECORD (64u << 20)
#define MAX_TICKETS 1024

typedef struct ticket {
	uint64_t id;
	uint64_t seg, off;    /* end position of the batch */
	uint64_t bytes, recs;
	int done;
} ticket;

struct spool {
	pthread_mutex_t mu;
	pthread_cond_t can_read, can_write, can_ticket, can_sync;
	char *dir;
	spool_opts o;
	int lockfd, ackfd;
	int closed;
	/* write side */
	uint64_t wseg, woff;
	int wfd;
	int dirty;            /* appended since the last fdatasync */
	pthread_t syncer;     /* runs fdatasync every fsync_ms (fsync_ms > 0) */
	int has_syncer;
	/* read side */
	uint64_t rseg, roff;
	int rfd;
	uint64_t rfd_seg;
	/* ack side */
	uint64_t aseg, aoff;
	uint64_t unacked_bytes, unacked_recs, unread_recs;
	ticket t[MAX_TICKETS];
	uint64_t thead, ttail, next_ticket;   /* ring indices (monotonic) */
};

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

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Scans a segment from off: counts whole records and returns the valid
 * end, truncating a torn tail (a record cut short by a crash). */
static int
scan_segment(spool *s, uint64_t seg, uint64_t off, uint64_t *end, uint64_t *recs)
{
	char path[4200];
	seg_path(s, seg, path, sizeof(path));
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size, n = 0;
	unsigned char h[4];
	while (off + 4 <= size) {
		if (pread(fd, h, 4, (off_t)off) != 4)
			break;
		uint32_t len = rd32(h);
		if (len == 0 || len > MAX_RECORD || off + 4 + len > size)
			break;
		off += 4 + len;
		n++;
	}
	if (off < size && ftruncate(fd, (off_t)off) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	*end = off;
	*recs = n;
	return 0;
}

static int
open_write_segment(spool *s, uint64_t seg, uint64_t off)
{
	char path[4200];
	seg_path(s, seg, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (s->wfd >= 0) {
		/* The syncer only ever syncs the current segment: the one
		 * being left is synced here, once per segment. */
		if (s->dirty)
			fdatasync(s->wfd);
		close(s->wfd);
	}
	s->dirty = 0;
	s->wfd = fd;
	s->wseg = seg;
	s->woff = off;
	return 0;
}

/* fdatasync off the append path: an append never waits for the disk (a
 * sync can take tens of milliseconds), and the lock is not held during
 * it.  The fd is dup'ed so a segment switch may close the original. */
static void *
syncer_main(void *arg)
{
	spool *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->closed) {
		struct timespec dl;
		deadline_in(&dl, s->o.fsync_ms);
		pthread_cond_timedwait(&s->can_sync, &s->mu, &dl);
		if (!s->dirty || s->wfd < 0)
			continue;
		int fd = dup(s->wfd);
		s->dirty = 0;
		pthread_mutex_unlock(&s->mu);
		if (fd >= 0) {
			fdatasync(fd);
			close(fd);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

spool *
spool_open(const char *dir, const spool_opts *o, char *err, size_t errcap)
{
	spool_opts def = SPOOL_OPTS_DEFAULT;
	char path[4200];
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
	s->lockfd = s->ackfd = s->wfd = s->rfd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->can_sync, NULL);
	pthread_cond_init(&s->can_read, NULL);
	pthread_cond_init(&s->can_write, NULL);
	pthread_cond_init(&s->can_ticket, NULL);
	s->next_ticket = 1;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lockfd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errcap, "%s: in use by another process", dir);
		errno = EBUSY;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/ack", dir);
	s->ackfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->ackfd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		goto fail;
	}
	unsigned char ab[16];
	int have_ack = pread(s->ackfd, ab, 16, 0) == 16;

	/* Collect segment numbers. */
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	uint64_t *segs = NULL;
	size_t nseg = 0, capseg = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		unsigned long long n;
		if (sscanf(de->d_name, "seg-%llu", &n) != 1)
			continue;
		if (nseg == capseg) {
			capseg = capseg ? capseg * 2 : 16;
			uint64_t *ns = realloc(segs, capseg * sizeof(*segs));
			if (ns == NULL) {
				free(segs);
				closedir(d);
				snprintf(err, errcap, "out of memory");
				goto fail;
			}
			segs = ns;
		}
		segs[nseg++] = n;
	}
	closedir(d);
	if (nseg > 1)
		qsort(segs, nseg, sizeof(*segs), cmp_u64);

	if (have_ack) {
		s->aseg = (uint64_t)rd32(ab) | (uint64_t)rd32(ab + 4) << 32;
		s->aoff = (uint64_t)rd32(ab + 8) | (uint64_t)rd32(ab + 12) << 32;
	} else {
		s->aseg = nseg ? segs[0] : 1;
		s->aoff = 0;
	}
	uint64_t last = s->aseg, lastend = s->aoff;
	for (size_t i = 0; i < nseg; i++) {
		if (segs[i] < s->aseg) {
			seg_path(s, segs[i], path, sizeof(path));
			unlink(path);   /* fully acknowledged before a crash */
			continue;
		}
		uint64_t end, recs;
		if (scan_segment(s, segs[i], segs[i] == s->aseg ? s->aoff : 0, &end, &recs) < 0) {
			snprintf(err, errcap, "%s: cannot read segment %llu: %s", dir,
			    (unsigned long long)segs[i], strerror(errno));
			free(segs);
			goto fail;
		}
		s->unacked_recs += recs;
		s->unacked_bytes += end - (segs[i] == s->aseg ? s->aoff : 0);
		last = segs[i];
		lastend = end;
	}
	free(segs);
	s->unread_recs = s->unacked_recs;
	s->rseg = s->aseg;
	s->roff = s->aoff;
	if (open_write_segment(s, last, lastend) < 0) {
		snprintf(err, errcap, "%s: cannot open segment: %s", dir, strerror(errno));
		goto fail;
	}
	if (s->o.fsync_ms > 0) {
		if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
			snprintf(err, errcap, "%s: cannot start the sync thread", dir);
			goto fail;
		}
		s->has_syncer = 1;
	}
	return s;
fail:
	spool_close(s);
	return NULL;
}

int
spool_append(spool *s, const void *data, size_t len, uint32_t count)
{
	if (len == 0)
		return SPOOL_OK;
	pthread_mutex_lock(&s->mu);
	while (!s->closed && s->unacked_bytes > 0 && s->unacked_bytes + len > s->o.max_bytes)
		pthread_cond_wait(&s->can_write, &s->mu);
	if (s->closed) {
		pthread_mutex_unlock(&s->mu);
		return SPOOL_ECLOSED;
	}
	if (s->woff > 0 && s->woff + len > s->o.segment_bytes &&
	    open_write_segment(s, s->wseg + 1, 0) < 0) {
		pthread_mutex_unlock(&s->mu);
		return SPOOL_EIO;
	}
	const char *p = data;
	size_t left = len;
	uint64_t off = s->woff;
	while (left > 0) {
		ssize_t w = pwrite(s->wfd, p, left, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/* Cut back to the last whole batch so the file stays
			 * parseable. */
			if (ftruncate(s->wfd, (off_t)s->woff) < 0) {
				/* nothing more we can do; scan on open trims it */
			}
			pthread_mutex_unlock(&s->mu);
			return SPOOL_EIO;
		}
		p += w;
		left -= (size_t)w;
		off += (uint64_t)w;
	}
	s->woff = off;
	s->unacked_bytes += len;
	s->unacked_recs += count;
	s->unread_recs += count;
	if (s->o.fsync_ms == 0)
		fdatasync(s->wfd);
	else
		s->dirty = 1;
	/* Wake one reader, not all: a sink's delivery threads all wait here,
	 * and a broadcast per append would wake each of them per message.  A
	 * reader that leaves records behind wakes the next (spool_next). */
	pthread_cond_signal(&s->can_read);
	pthread_mutex_unlock(&s->mu);
	return SPOOL_OK;
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

/* Reads [off, end) of segment seg into out, as whole records, at most
 * max_recs and about max_bytes.  Returns records read; advances *off. */
static int
read_records(spool *s, uint64_t seg, uint64_t *off, uint64_t end, buf *out,
    int max_recs, size_t max_bytes)
{
	if (s->rfd < 0 || s->rfd_seg != seg) {
		char path[4200];
		if (s->rfd >= 0)
			close(s->rfd);
		seg_path(s, seg, path, sizeof(path));
		s->rfd = open(path, O_RDONLY | O_CLOEXEC);
		s->rfd_seg = seg;
		if (s->rfd < 0)
			return SPOOL_EIO;
	}
	size_t want = (size_t)(end - *off);
	if (want > max_bytes)
		want = max_bytes;
	if (want < 4)
		want = (size_t)(end - *off) < 4 ? (size_t)(end - *off) : 4;
	size_t base = out->len;
	buf_reserve(out, want);
	ssize_t r = pread(s->rfd, out->data + base, want, (off_t)*off);
	if (r < 0)
		return SPOOL_EIO;
	size_t got = (size_t)r, used = 0;
	int n = 0;
	while (n < max_recs && used + 4 <= got) {
		uint32_t len = rd32((unsigned char *)out->data + base + used);
		if (used + 4 + len > got) {
			if (n == 0) {
				/* A record larger than max_bytes: read it whole. */
				buf_reserve(out, 4 + len);
				r = pread(s->rfd, out->data + base, 4 + len, (off_t)*off);
				if (r != (ssize_t)(4 + len))
					return SPOOL_EIO;
				used = 4 + len;
				n = 1;
			}
			break;
		}
		used += 4 + len;
		n++;
	}
	out->len = base + used;
	*off += used;
	return n;
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
		if (s->unread_recs > 0 && s->ttail - s->thead < MAX_TICKETS)
			break;
		if (pthread_cond_timedwait(s->unread_recs > 0 ? &s->can_ticket : &s->can_read,
			&s->mu, &dl) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
	}
	size_t before = out->len;
	int total = 0;
	while (total < max_recs && out->len - before < max_bytes) {
		uint64_t segend = s->rseg == s->wseg ? s->woff : UINT64_MAX;
		if (segend == UINT64_MAX) {
			struct stat st;
			char path[4200];
			seg_path(s, s->rseg, path, sizeof(path));
			if (stat(path, &st) < 0)
				break;
			segend = (uint64_t)st.st_size;
		}
		if (s->roff >= segend) {
			if (s->rseg == s->wseg)
				break;
			s->rseg++;
			s->roff = 0;
			continue;
		}
		int n = read_records(s, s->rseg, &s->roff, segend, out,
		    max_recs - total, max_bytes - (out->len - before));
		if (n < 0) {
			pthread_mutex_unlock(&s->mu);
			return n;
		}
		if (n == 0)
			break;
		total += n;
	}
	if (total > 0) {
		ticket *t = &s->t[s->ttail % MAX_TICKETS];
		t->id = s->next_ticket++;
		t->seg = s->rseg;
		t->off = s->roff;
		t->bytes = out->len - before - 0;
		t->recs = (uint64_t)total;
		t->done = 0;
		s->ttail++;
		s->unread_recs -= (uint64_t)total;
		*ticket_id = t->id;
		if (s->unread_recs > 0)
			pthread_cond_signal(&s->can_read);
	}
	pthread_mutex_unlock(&s->mu);
	return total;
}

static void
write_ack(spool *s)
{
	unsigned char b[16];
	uint64_t v[2] = {s->aseg, s->aoff};
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 8; k++)
			b[i * 8 + k] = (unsigned char)(v[i] >> (8 * k));
	if (pwrite(s->ackfd, b, 16, 0) != 16) {
		/* Keeping the old ack only means redelivery after a restart. */
	}
}

int
spool_done(spool *s, uint64_t id)
{
	pthread_mutex_lock(&s->mu);
	for (uint64_t i = s->thead; i < s->ttail; i++)
		if (s->t[i % MAX_TICKETS].id == id)
			s->t[i % MAX_TICKETS].done = 1;
	uint64_t oldseg = s->aseg;
	int moved = 0;
	while (s->thead < s->ttail && s->t[s->thead % MAX_TICKETS].done) {
		ticket *t = &s->t[s->thead % MAX_TICKETS];
		s->aseg = t->seg;
		s->aoff = t->off;
		s->unacked_bytes -= t->bytes;
		s->unacked_recs -= t->recs;
		s->thead++;
		moved = 1;
	}
	if (moved) {
		write_ack(s);
		for (uint64_t seg = oldseg; seg < s->aseg; seg++) {
			char path[4200];
			seg_path(s, seg, path, sizeof(path));
			unlink(path);
		}
		pthread_cond_broadcast(&s->can_write);
		pthread_cond_broadcast(&s->can_ticket);
	}
	pthread_mutex_unlock(&s->mu);
	return SPOOL_OK;
}

uint64_t
spool_pending(spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t n = s->unacked_recs;
	pthread_mutex_unlock(&s->mu);
	return n;
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
	if (s->ackfd >= 0)
		close(s->ackfd);
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

static void
remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char p[5000];
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
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
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		spool *o = spool_open(dir, NULL, err, sizeof(err));
		if (o == NULL)
			continue;   /* its owner is alive */
		adopted++;
		fn(o, de->d_name, arg);
		int empty = spool_pending(o) == 0;
		spool_close(o);
		if (empty)
			remove_dir(dir);
	}
	closedir(d);
	return adopted;
}
