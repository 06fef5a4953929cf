#include "sinks/lib/sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hop.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/spool.h"

#define MAX_BATCH 256
#define MAX_WORKERS 64

static struct {
	proc_conf pc;
	const sink_ops *ops;
	spool *sp;
	hop_sender *fail;
	int tries, backoff_ms, batch, workers;
	char spool_parent[4000];
} S;

static void
usage(FILE *f, const sink_ops *ops)
{
	fprintf(f,
	    "usage: iotrules-sink-%s --run-dir DIR --state-dir DIR [--name NAME] [options]\n"
	    "\n"
	    "Takes %s jobs from <run-dir>/jobs/%s/, spools them under\n"
	    "<state-dir>/sinks/%s/<name>/, delivers them, retries transient\n"
	    "failures with jittered exponential backoff, and reports final\n"
	    "failures to the error handler over <run-dir>/failures/.\n"
	    "\n"
	    "  --tries N        delivery attempts per job (default 3)\n"
	    "  --backoff-ms MS  first retry delay, doubled each time (default 100)\n"
	    "  --batch N        jobs per delivery batch (default 256, at most 256)\n"
	    "  --workers N      batches delivered concurrently (default 8); a\n"
	    "                   batch waiting on its answers does not hold up the next\n"
	    "%s",
	    ops->action, ops->action, ops->action, ops->action, ops->usage ? ops->usage : "");
}

void
sink_error_message(sink_result *r, const envelope *job, const char *what, const char *received)
{
	snprintf(r->message, sizeof(r->message),
	    "%s. The error received was %s. Message arrived on: %.*s, Action: %s, Resource: %s.",
	    what, received, (int)job->s[ENV_TOPIC].n, job->s[ENV_TOPIC].p,
	    S.ops ? S.ops->action : "?", r->resource);
}

/* ---- receiving --------------------------------------------------------- */

static int
on_jobs(void *arg, const void *data, size_t len)
{
	(void)arg;
	int n = spool_append_batch(S.sp, data, len);
	if (n == SPOOL_EBATCH) {
		log_error("jobs hop: malformed batch of %zu bytes dropped", len);
		return HOP_OK;
	}
	if (n < 0)
		return HOP_RETRY;
	proc_count_in((uint64_t)n);
	return HOP_OK;
}

/* ---- outcomes for the error handler ------------------------------------- */

/* Reports the final outcome of jobs whose rule has an errorAction: every
 * failure, and, for rules with several actions, every success too, so the
 * error handler can send one document per rule and message once all the
 * rule's actions are settled (ERRORS.md §2.3).  Without an errorAction a
 * failure is only logged. */
static void
report_outcomes(const envelope *jobs, const sink_result *res, const int *final, int n)
{
	buf b = BUF_ZERO, err = BUF_ZERO;
	env_batch_begin(&b);
	int count = 0;
	for (int i = 0; i < n; i++) {
		const envelope *j = &jobs[i];
		if (final[i]) {
			log_error("rule %.*s: %s failed for good: %s", (int)j->s[ENV_RULE].n, j->s[ENV_RULE].p,
			    S.ops->failed_action, res[i].message);
			proc_count_failed(1);
		}
		if (j->s[ENV_ERRACTION].n == 0 || (!final[i] && j->action_count <= 1))
			continue;
		envelope f = *j;
		f.s[ENV_ERROR] = (env_slice){"", 0};
		if (final[i]) {
			buf_reset(&err);   /* env_append copies it at once */
			buf_adds(&err, "{\"failedAction\":");
			buf_add_json_str(&err, S.ops->failed_action, strlen(S.ops->failed_action));
			buf_adds(&err, ",\"failedResource\":");
			buf_add_json_str(&err, res[i].resource, strlen(res[i].resource));
			buf_adds(&err, ",\"errorMessage\":");
			buf_add_json_str(&err, res[i].message, strlen(res[i].message));
			buf_addc(&err, '}');
			f.kind = ENV_FAILURE;
			f.s[ENV_ERROR] = (env_slice){err.data, (uint32_t)err.len};
		} else {
			f.kind = ENV_SUCCESS;
		}
		f.s[ENV_PARAMS] = (env_slice){"", 0};    /* not needed there */
		f.s[ENV_RESULT] = (env_slice){"", 0};
		env_append(&b, &f);
		count++;
	}
	if (count > 0) {
		env_batch_end(&b, 0);
		/* Wait until the error handler has it: a failure report is as
		 * durable as the job it replaces. */
		if (hop_send_wait(S.fail, b.data, b.len) != HOP_OK)
			log_error("failure reports not delivered: the failures hop closed");
	}
	buf_free(&b);
	buf_free(&err);
}

/* ---- delivering ---------------------------------------------------------- */

static int
backoff_ms(int attempt)
{
	long base = (long)S.backoff_ms << (attempt < 10 ? attempt : 10);
	if (base > 10000)
		base = 10000;
	uint32_t r;
	arc4random_buf(&r, sizeof(r));
	/* Full jitter over [base/2, base]. */
	return (int)(base / 2 + (long)(r % (uint32_t)(base / 2 + 1)));
}

/* Delivers one spooled batch (framed records in b) until every job is
 * delivered or failed for good. */
static void
deliver_batch(const buf *b)
{
	envelope jobs[MAX_BATCH], todo[MAX_BATCH];
	sink_result res[MAX_BATCH], tres[MAX_BATCH];
	int final[MAX_BATCH], idx[MAX_BATCH], pending[MAX_BATCH];
	int n = 0;
	env_iter it = {b->data, b->data + b->len, UINT32_MAX, 0};
	while (n < MAX_BATCH && env_batch_next_env(&it, ENV_JOB, &jobs[n])) {
		final[n] = 0;
		pending[n] = 1;
		n++;
	}
	if (it.bad)
		log_error("spool: %u malformed job record(s) skipped", it.bad);
	int delivered = 0;
	for (int attempt = 0; attempt < S.tries; attempt++) {
		int m = 0;
		for (int i = 0; i < n; i++)
			if (pending[i]) {
				idx[m] = i;
				todo[m] = jobs[i];
				memset(&tres[m], 0, sizeof(tres[m]));
				m++;
			}
		if (m == 0)
			break;
		if (attempt > 0)
			usleep((useconds_t)backoff_ms(attempt - 1) * 1000);
		S.ops->deliver(S.ops->state, todo, m, tres);
		for (int k = 0; k < m; k++) {
			int i = idx[k];
			res[i] = tres[k];
			if (tres[k].status == SINK_OK) {
				pending[i] = 0;
				delivered++;
			} else if (tres[k].status == SINK_FATAL || attempt + 1 == S.tries) {
				pending[i] = 0;
				final[i] = 1;
			}
		}
	}
	proc_count_out((uint64_t)delivered);
	report_outcomes(jobs, res, final, n);
}

/* Drains a spool: the instance's own, or an adopted one. */
static int
drain_some(spool *sp, buf *b, int timeout_ms)
{
	uint64_t ticket;
	buf_reset(b);
	int n = spool_next(sp, b, S.batch, 4 << 20, timeout_ms, &ticket);
	if (n <= 0)
		return n;
	deliver_batch(b);
	spool_done(sp, ticket);
	return n;
}

/* Delivers what an adopted spool holds (spool_adopt_orphans). */
static void
drain_orphan(spool *o, const char *name, void *arg)
{
	buf *b = arg;
	uint64_t left = spool_pending(o);
	if (left > 0)
		log_info("adopting %llu job(s) from the spool of %s", (unsigned long long)left, name);
	while (spool_pending(o) > 0 && !proc_stopping())
		if (drain_some(o, b, 10) < 0)
			break;
}

static void *
delivery_main(void *arg)
{
	int worker = (int)(intptr_t)arg;
	buf b = BUF_ZERO;
	int64_t last_adopt = 0;
	while (!proc_stopping()) {
		int n = drain_some(S.sp, &b, 100);
		if (n < 0)
			break;
		proc_set_pending(spool_pending(S.sp));
		if (worker == 0 && n == 0 && proc_now_ms() - last_adopt > 1000) {
			/* Spools of instances that are gone (scaled down, rolled,
			 * replaced) are delivered from here. */
			spool_adopt_orphans(S.spool_parent, S.pc.name, drain_orphan, &b);
			last_adopt = proc_now_ms();
		}
	}
	buf_free(&b);
	return NULL;
}

int
sink_main(int argc, char **argv, const sink_ops *ops)
{
	char stage[128], name[128], path[4400], err[512];
	snprintf(stage, sizeof(stage), "sink-%s", ops->action);
	proc_init(stage);
	S.ops = ops;
	S.tries = 3;
	S.backoff_ms = 100;
	S.batch = 256;
	S.workers = 8;
	snprintf(name, sizeof(name), "sink-%s-1", ops->action);
	S.pc.name = name;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (proc_opt(&S.pc, argc, argv, &i))
			continue;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout, ops);
			return 0;
		}
		if (ops->option) {
			int r = ops->option(ops->state, argc, argv, &i);
			if (r < 0)
				log_die(100, "bad value for %s", o);
			if (r > 0)
				continue;
		}
		if (i + 1 >= argc) {
			usage(stderr, ops);
			log_die(100, "unknown option or missing value: %s", o);
		}
		const char *v = argv[++i];
		if (strcmp(o, "--tries") == 0) S.tries = atoi(v) > 0 ? atoi(v) : 1;
		else if (strcmp(o, "--backoff-ms") == 0) S.backoff_ms = atoi(v) > 0 ? atoi(v) : 1;
		else if (strcmp(o, "--batch") == 0) S.batch = atoi(v) > 0 && atoi(v) <= MAX_BATCH ? atoi(v) : 256;
		else if (strcmp(o, "--workers") == 0) S.workers = atoi(v) > 0 && atoi(v) <= MAX_WORKERS ? atoi(v) : 8;
		else {
			usage(stderr, ops);
			log_die(100, "unknown option %s", o);
		}
	}
	if (!S.pc.run_dir || !S.pc.state_dir)
		log_die(100, "--run-dir and --state-dir are required (see --help)");
	if (ops->max_workers > 0 && S.workers > ops->max_workers)
		S.workers = ops->max_workers;
	if (ops->start && ops->start(ops->state) < 0)
		log_die(111, "cannot start the %s sink", ops->action);

	snprintf(S.spool_parent, sizeof(S.spool_parent), "%s/sinks/%s", S.pc.state_dir, ops->action);
	snprintf(path, sizeof(path), "%s/%s", S.spool_parent, S.pc.name);
	if (proc_mkdirs(path) < 0)
		log_die(111, "cannot create %s: %s", path, strerror(errno));
	S.sp = spool_open(path, NULL, err, sizeof(err));
	if (S.sp == NULL)
		log_die(111, "spool: %s", err);
	snprintf(path, sizeof(path), "%s/failures", S.pc.run_dir);
	S.fail = hop_sender_open(path, S.pc.name, 2, err, sizeof(err));
	if (S.fail == NULL)
		log_die(111, "failures hop: %s", err);
	proc_stats_start(&S.pc, stage);
	pthread_t dt[MAX_WORKERS];
	for (int w = 0; w < S.workers; w++)
		if (pthread_create(&dt[w], NULL, delivery_main, (void *)(intptr_t)w) != 0)
			log_die(111, "cannot start delivery thread %d", w);
	snprintf(path, sizeof(path), "%s/jobs/%s", S.pc.run_dir, ops->action);
	hop_receiver *rx = hop_receiver_open(path, 2, on_jobs, NULL, err, sizeof(err));
	if (rx == NULL)
		log_die(111, "jobs hop: %s", err);
	proc_ready();
	while (!proc_stopping())
		proc_sleep_ms(100);
	/* Stop accepting, finish the batch in delivery; what is left stays in
	 * the spool for the next start or another instance. */
	hop_receiver_close(rx);
	spool_shutdown(S.sp);
	for (int w = 0; w < S.workers; w++)
		pthread_join(dt[w], NULL);
	hop_sender_close(S.fail);
	proc_set_pending(spool_pending(S.sp));
	spool_close(S.sp);
	if (ops->stop)
		ops->stop(ops->state);
	proc_stats_stop();
	log_info("stopped");
	return 0;
}
