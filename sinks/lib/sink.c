#include "sinks/lib/sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/hop.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/spool.h"

#define MAX_BATCH 256
#define MAX_WORKERS 64

#define BACKOFF_CAP_MS 20000

static struct {
	proc_conf pc;
	const sink_ops *ops;
	spool *sp;
	hop_sender *fail;
	int tries, backoff_ms, batch, workers, retry_s;
	uint64_t spool_max;
	char spool_parent[4000];
	/* Destination outage: since when deliveries fail transiently (0:
	 * none), for the "gone" / "back" log lines. */
	pthread_mutex_t outage_mu;
	int64_t outage_since, outage_logged;
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
	    "  --retry-s S      how long transient failures (destination down, timeouts,\n"
	    "                   throttling) are retried, with jittered exponential\n"
	    "                   backoff capped at 20 s, while jobs wait in the spool\n"
	    "                   (default 3600); 0: AWS's behaviour, --tries quick tries\n"
	    "  --tries N        delivery attempts per job when --retry-s is 0, and the\n"
	    "                   least number of attempts otherwise (default 3)\n"
	    "  --backoff-ms MS  first retry delay, doubled each time (default 100)\n"
	    "  --spool-max-bytes N  bound of the spool; a full spool refuses new jobs\n"
	    "                   (evaluate retries) rather than dropping any (1 GiB)\n"
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
 * failure is only logged.  0, or -1 if the reports could not be handed
 * over (the stage is stopping): the batch must not be acknowledged. */
static int
report_outcomes(const envelope *jobs, const sink_result *res, const int *final, int n)
{
	buf b = BUF_ZERO, err = BUF_ZERO;
	env_batch_begin(&b);
	int count = 0, rc = 0;
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
		 * durable as the job it replaces.  If the hop was shut down
		 * (stopping), the batch stays unacknowledged and is redone. */
		if (hop_send_wait(S.fail, b.data, b.len) != HOP_OK) {
			log_warn("stopping before the error handler took %d outcome report(s); "
			    "their jobs stay in the spool", count);
			rc = -1;
		}
	}
	buf_free(&b);
	buf_free(&err);
	return rc;
}

/* ---- delivering ---------------------------------------------------------- */

static int
backoff_ms(int attempt)
{
	long base = (long)S.backoff_ms << (attempt < 16 ? attempt : 16);
	if (base > BACKOFF_CAP_MS)
		base = BACKOFF_CAP_MS;
	uint32_t r;
	arc4random_buf(&r, sizeof(r));
	/* Full jitter over [base/2, base]. */
	return (int)(base / 2 + (long)(r % (uint32_t)(base / 2 + 1)));
}

/* A transient failure: the first one of an outage is logged (the jobs
 * wait in the spool meanwhile), and a reminder once a minute. */
static void
outage_failure(const sink_result *r)
{
	int64_t now = proc_now_ms();
	pthread_mutex_lock(&S.outage_mu);
	if (S.outage_since == 0) {
		S.outage_since = S.outage_logged = now;
		log_warn("destination unavailable (%s): jobs wait in the spool and are retried for up to %d s "
		    "(retry_s); %llu job(s) pending", r->message, S.retry_s,
		    (unsigned long long)spool_pending(S.sp));
	} else if (now - S.outage_logged >= 60000) {
		S.outage_logged = now;
		log_warn("destination still unavailable after %lld s (%s); %llu job(s) pending",
		    (long long)(now - S.outage_since) / 1000, r->message, (unsigned long long)spool_pending(S.sp));
	}
	pthread_mutex_unlock(&S.outage_mu);
}

static void
outage_success(void)
{
	pthread_mutex_lock(&S.outage_mu);
	if (S.outage_since != 0) {
		log_info("destination back after %.1f s; delivering the %llu job(s) pending",
		    (double)(proc_now_ms() - S.outage_since) / 1000.0, (unsigned long long)spool_pending(S.sp));
		S.outage_since = 0;
	}
	pthread_mutex_unlock(&S.outage_mu);
}

/* Has a job that first failed at first_ms used up its retries? */
static int
retries_spent(int attempts, int64_t first_ms)
{
	if (attempts < S.tries)
		return 0;
	return S.retry_s == 0 || proc_now_ms() - first_ms >= (int64_t)S.retry_s * 1000;
}

/* Delivers one spooled batch (framed records in b) until every job is
 * delivered or failed for good: transient failures are retried on a
 * backoff until the retry_s budget is spent.  0 when the batch is done
 * (acknowledge it), -1 when the stage is stopping first (leave it in the
 * spool: redone at the next start or by another instance). */
static int
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
	int64_t first = proc_now_ms();
	for (int attempt = 0;; attempt++) {
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
		if (attempt > 0) {
			proc_sleep_ms(backoff_ms(attempt - 1));
			if (proc_stopping())
				return -1;
		}
		S.ops->deliver(S.ops->state, todo, m, tres);
		int spent = retries_spent(attempt + 1, first), transient = -1, ok = 0;
		for (int k = 0; k < m; k++) {
			int i = idx[k];
			res[i] = tres[k];
			if (tres[k].status == SINK_OK) {
				pending[i] = 0;
				delivered++;
				ok = 1;
			} else if (tres[k].status == SINK_FATAL) {
				pending[i] = 0;
				final[i] = 1;
			} else {
				transient = k;
				if (spent) {
					pending[i] = 0;
					final[i] = 1;
				}
			}
		}
		if (ok)
			outage_success();
		if (transient >= 0) {
			outage_failure(&tres[transient]);
			if (proc_stopping() && !spent)
				return -1;
		}
	}
	proc_count_out((uint64_t)delivered);
	return report_outcomes(jobs, res, final, n);
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
	if (deliver_batch(b) < 0)
		return SPOOL_ECLOSED;   /* stopping: the batch stays in the spool */
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
	S.retry_s = 3600;
	pthread_mutex_init(&S.outage_mu, NULL);
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
		else if (strcmp(o, "--retry-s") == 0) S.retry_s = atoi(v) >= 0 ? atoi(v) : 0;
		else if (strcmp(o, "--spool-max-bytes") == 0) S.spool_max = strtoull(v, NULL, 10);
		else if (strcmp(o, "--workers") == 0) S.workers = atoi(v) > 0 && atoi(v) <= MAX_WORKERS ? atoi(v) : 8;
		else {
			usage(stderr, ops);
			log_die(100, "unknown option %s", o);
		}
	}
	if (!S.pc.run_dir || !S.pc.state_dir)
		log_die(100, "--run-dir and --state-dir are required (see --help)");
	if (proc_check_ipc_paths(S.pc.run_dir, S.pc.name, err, sizeof(err)) < 0)
		log_die(100, "%s", err);
	if (ops->max_workers > 0 && S.workers > ops->max_workers)
		S.workers = ops->max_workers;
	if (ops->start && ops->start(ops->state) < 0)
		log_die(111, "cannot start the %s sink", ops->action);

	snprintf(S.spool_parent, sizeof(S.spool_parent), "%s/sinks/%s", S.pc.state_dir, ops->action);
	snprintf(path, sizeof(path), "%s/%s", S.spool_parent, S.pc.name);
	if (proc_mkdirs(path) < 0)
		log_die(111, "cannot create %s: %s", path, strerror(errno));
	spool_opts so = SPOOL_OPTS_DEFAULT;
	if (S.spool_max)
		so.max_bytes = S.spool_max;
	S.sp = spool_open(path, &so, err, sizeof(err));
	if (S.sp == NULL)
		log_die(111, "spool: %s", err);
	snprintf(path, sizeof(path), "%s/failures", S.pc.run_dir);
	S.fail = hop_sender_open(path, S.pc.name, 2, err, sizeof(err));
	if (S.fail == NULL)
		log_die(111, "failures hop: %s", err);
	proc_stats_start(&S.pc, stage);
	proc_stop_watchdog(4500);
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
	/* Stop accepting (a job batch arriving now is refused and resent to
	 * another instance), let the batches in delivery finish for up to 3 s,
	 * then abandon what waits on the error handler: every batch not
	 * finished stays in the spool for the next start or another
	 * instance.  Nothing is acknowledged that was not done. */
	spool_shutdown(S.sp);
	hop_receiver_close(rx);
	struct timespec dl;
	deadline_in(&dl, 3000);
	int joined[MAX_WORKERS] = {0};
	for (int w = 0; w < S.workers; w++)
		joined[w] = pthread_timedjoin_np(dt[w], NULL, &dl) == 0;
	hop_sender_shutdown(S.fail);
	for (int w = 0; w < S.workers; w++)
		if (!joined[w])
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
