/* Unit tests of the envelope framing and the spool. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	for (int k = 0; k < RECORDS; k++)
		once &= mr_seen[k] == 1;
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
	/* A torn tail (crash mid-write) is cut off on open. */
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
	ok(s && spool_pending(s) == 1, "a torn tail is dropped, whole records kept");
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
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	buf_free(&b);
	buf_free(&recs);
	buf_free(&out);
	return done_testing();
}
