#include "sinks/lib/sink.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/actions.h"
#include "common/deadline.h"
#include "common/hop.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/proc.h"
#include "common/spool.h"
#include "common/stage.h"

#define MAX_SPOOL_BATCH 256
#define MAX_SEND_JOBS 512   /* jobs in one ops->send (above every API's limit) */
#define BACKOFF_CAP_MS 20000
#define STOP_GRACE_MS 3000

/* A batch taken from a spool: the records (the jobs' slices point into
 * data) and the jobs made of them.  It is acknowledged once every job is
 * final and the outcome reports are with the error handler; a chunk left
 * with unfinished jobs at a stop is abandoned (not acknowledged: redone
 * at the next start or by another instance). */
typedef struct sink_chunk {
	spool *sp;
	uint64_t ticket;
	buf data;
	int n;
	int left;       /* jobs not final */
	int inflight;   /* jobs in a send */
	struct sink_chunk *next;   /* reporter queue */
	sink_job jobs[];
} sink_chunk;

/* One ops->send call: in flight until each of its jobs is done. */
typedef struct sink_send {
	int left;
	char dest[512];   /* its destination, whose in-flight count it holds */
} sink_send;

/* Jobs waiting to be sent to one destination, in arrival order. */
typedef struct dest_q {
	char dest[512];
	sink_job *head, *tail;
	int units;
	size_t bytes;
	int inflight;   /* sends to it not yet complete */
} dest_q;

/* A batch that is not full leaves after lingering only while fewer than
 * this many sends to its destination are out: under load the jobs
 * gather into fuller batches while the destination answers (Nagle's idea),
 * at low load nothing waits longer than the linger time.  With
 * --linger-ms 0 (republish, stdout) nothing waits at all. */
#define PARTIAL_INFLIGHT 2

static struct {
	proc_conf pc;
	const sink_ops *ops;
	stage_input in;     /* the spool and the jobs hop feeding it */
	hop_sender *fail;
	int tries, backoff_ms, batch, retry_s, inflight_max, window, linger_ms;

	/* Completions (sink_job_done, any thread) and wake-ups for the
	 * dispatcher. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sink_job *done_head, *done_tail;
	int kick;

	/* The dispatcher's own (only its thread touches these). */
	dest_q *q;
	int nq, capq, rr;
	sink_job *retry;         /* waiting for their backoff */
	int64_t next_due;
	int inflight;            /* sends in flight */
	int64_t stop_deadline;
	int64_t outage_since, outage_logged;

	/* Reporter: chunks whose jobs are all final. */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	sink_chunk *rhead, *rtail;
	int rstop;

	atomic_int window_jobs;   /* jobs held in chunks */
	atomic_int chunks_of_orphan;
} S;

static void
usage(FILE *f, const sink_ops *ops)
{
	fprintf(f,
	    "usage: iotrules-sink-%s --run-dir DIR --state-dir DIR [--name NAME] [options]\n"
	    "\n"
	    "Takes %s jobs from <run-dir>/jobs/%s/, spools them under\n"
	    "<state-dir>/sinks/%s/<name>/, sends them in batches per destination\n"
	    "(at most %d per request), retries transient failures and throttling with\n"
	    "jittered exponential backoff, and reports final failures to the error\n"
	    "handler over <run-dir>/failures/.\n"
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
	    "  --inflight N     requests in flight at once (default 64)\n"
	    "  --window N       jobs held in memory, in flight or waiting (default 8192);\n"
	    "                   the rest waits in the spool\n"
	    "  --linger-ms MS   how long a batch waits to fill up (default %d)\n"
	    "  --batch N        most jobs per request, up to the API's limit (%d)\n"
	    "%s",
	    ops->action, ops->action, ops->action, ops->action, ops->batch_max > 0 ? ops->batch_max : 1,
	    ops->linger_ms, ops->batch_max > 0 ? ops->batch_max : 1, ops->usage ? ops->usage : "");
}

const char *
sink_param(const sink_job *j, const char *name)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j->params, name);
	return cJSON_IsString(v) ? v->valuestring : "";
}

void
sink_error_message(sink_job *j, const char *what, const char *received)
{
	snprintf(j->message, sizeof(j->message),
	    "%s. The error received was %s. Message arrived on: %.*s, Action: %s, Resource: %s.",
	    what, received, (int)j->env.s[ENV_TOPIC].n, j->env.s[ENV_TOPIC].p,
	    S.ops ? S.ops->action : "?", j->resource);
}

void
sink_job_done(sink_job *j, sink_status st)
{
	j->status = st;
	j->next = NULL;
	pthread_mutex_lock(&S.mu);
	if (S.done_tail)
		S.done_tail->next = j;
	else
		S.done_head = j;
	S.done_tail = j;
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
}

void
sink_job_fail(sink_job *j, sink_status st, const char *what, const char *received)
{
	sink_error_message(j, what, received);
	sink_job_done(j, st);
}

static void
kick(void)
{
	pthread_mutex_lock(&S.mu);
	S.kick = 1;
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
}

/* ---- outcomes for the error handler ------------------------------------- */

static void
chunk_free(sink_chunk *c)
{
	for (int i = 0; i < c->n; i++) {
		cJSON_Delete(c->jobs[i].params);
		buf_free(&c->jobs[i].entry);
	}
	atomic_fetch_sub(&S.window_jobs, c->n);
	if (c->sp != S.in.sp)
		atomic_fetch_sub(&S.chunks_of_orphan, 1);
	buf_free(&c->data);
	free(c);
}

/* Reports the final outcome of a chunk's jobs whose rule has an
 * errorAction: every failure, and, for rules with several actions, every
 * success too, so the error handler can send one document per rule and
 * message once all the rule's actions are settled (ERRORS.md §2.3).
 * Without an errorAction a failure is only logged.  0, or -1 if the
 * reports could not be handed over (the stage is stopping): the chunk
 * must not be acknowledged. */
static int
report_outcomes(sink_chunk *c)
{
	buf b = BUF_ZERO, err = BUF_ZERO;
	env_batch_begin(&b);
	int count = 0, rc = 0;
	uint64_t ok = 0;
	for (int i = 0; i < c->n; i++) {
		sink_job *j = &c->jobs[i];
		int failed = j->status != SINK_OK;
		if (failed) {
			log_error("rule %.*s: %s failed for good: %s", (int)j->env.s[ENV_RULE].n,
			    j->env.s[ENV_RULE].p, S.ops->failed_action, j->message);
			proc_count_failed(1);
		} else {
			ok++;
		}
		if (j->env.s[ENV_ERRACTION].n == 0 || (!failed && j->env.action_count <= 1))
			continue;
		envelope f = j->env;
		f.s[ENV_ERROR] = (env_slice){"", 0};
		if (failed) {
			buf_reset(&err);   /* env_append copies it at once */
			buf_adds(&err, "{\"failedAction\":");
			buf_add_json_str(&err, S.ops->failed_action, strlen(S.ops->failed_action));
			buf_adds(&err, ",\"failedResource\":");
			buf_add_json_str(&err, j->resource, strlen(j->resource));
			buf_adds(&err, ",\"errorMessage\":");
			buf_add_json_str(&err, j->message, strlen(j->message));
			if (j->batch[0]) {
				buf_adds(&err, ",\"batch\":{\"id\":");
				buf_add_json_str(&err, j->batch, strlen(j->batch));
				buf_printf(&err, ",\"size\":%d,\"acrossTopics\":%s}", j->batch_size,
				    j->batch_across ? "true" : "false");
			}
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
	proc_count_out(ok);
	if (count > 0) {
		env_batch_end(&b, 0);
		/* Wait until the error handler has it: a failure report is as
		 * durable as the job it replaces.  If the hop was shut down
		 * (stopping), the chunk stays unacknowledged and is redone. */
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

/* The reporter thread: hands outcomes over and acknowledges chunks, so a
 * slow error handler holds up acknowledgements, never delivery. */
static void *
reporter_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&S.rmu);
		while (S.rhead == NULL && !S.rstop)
			pthread_cond_wait(&S.rcv, &S.rmu);
		sink_chunk *c = S.rhead;
		if (c) {
			S.rhead = c->next;
			if (S.rhead == NULL)
				S.rtail = NULL;
		}
		pthread_mutex_unlock(&S.rmu);
		if (c == NULL)
			return NULL;
		if (report_outcomes(c) == 0 && spool_done(c->sp, c->ticket) != SPOOL_OK)
			log_warn("spool: could not acknowledge a delivered batch; it will be redone");
		chunk_free(c);
		kick();   /* room in the window */
	}
}

static void
chunk_settled(sink_chunk *c)
{
	c->next = NULL;
	pthread_mutex_lock(&S.rmu);
	if (S.rtail)
		S.rtail->next = c;
	else
		S.rhead = c;
	S.rtail = c;
	pthread_cond_signal(&S.rcv);
	pthread_mutex_unlock(&S.rmu);
}

/* ---- retries -------------------------------------------------------------- */

/* Backoff before attempt n+1 (n ≥ 1 failed attempts): full jitter over
 * [base/2, base], base doubling from --backoff-ms up to 20 s; at least
 * what the destination asked for with Retry-After. */
static int64_t
backoff_ms(int n, int retry_after_ms)
{
	int shift = n - 1 < 16 ? n - 1 : 16;
	long base = (long)S.backoff_ms << shift;
	if (base > BACKOFF_CAP_MS)
		base = BACKOFF_CAP_MS;
	uint32_t r;
	arc4random_buf(&r, sizeof(r));
	long d = base / 2 + (long)(r % (uint32_t)(base / 2 + 1));
	if (retry_after_ms > d)
		d = retry_after_ms < 60000 ? retry_after_ms : 60000;
	return d;
}

static int
retries_spent(const sink_job *j)
{
	if (j->attempts < S.tries)
		return 0;
	return S.retry_s == 0 || proc_now_ms() - j->first_fail_ms >= (int64_t)S.retry_s * 1000;
}

/* A transient failure: the first one of an outage is logged (the jobs
 * wait meanwhile), and a reminder once a minute. */
static void
outage_failure(const sink_job *j)
{
	int64_t now = proc_now_ms();
	if (S.outage_since == 0) {
		S.outage_since = S.outage_logged = now;
		log_warn("destination unavailable (%s): jobs wait in the spool and are retried for up to %d s "
		    "(retry_s); %llu job(s) pending", j->message, S.retry_s,
		    (unsigned long long)spool_pending(S.in.sp));
	} else if (now - S.outage_logged >= 60000) {
		S.outage_logged = now;
		log_warn("destination still unavailable after %lld s (%s); %llu job(s) pending",
		    (long long)(now - S.outage_since) / 1000, j->message, (unsigned long long)spool_pending(S.in.sp));
	}
}

static void
outage_success(void)
{
	if (S.outage_since != 0) {
		log_info("destination back after %.1f s; delivering the %llu job(s) pending",
		    (double)(proc_now_ms() - S.outage_since) / 1000.0, (unsigned long long)spool_pending(S.in.sp));
		S.outage_since = 0;
	}
}

/* ---- batching --------------------------------------------------------------- */

static void
enqueue(sink_job *j)
{
	dest_q *q = NULL;
	for (int i = 0; i < S.nq; i++)
		if (strcmp(S.q[i].dest, j->dest) == 0) {
			q = &S.q[i];
			break;
		}
	if (q == NULL) {
		if (S.nq == S.capq) {
			S.capq = S.capq ? S.capq * 2 : 8;
			S.q = realloc(S.q, (size_t)S.capq * sizeof(*S.q));
			if (S.q == NULL)
				log_die(111, "out of memory");
		}
		q = &S.q[S.nq++];
		memset(q, 0, sizeof(*q));
		snprintf(q->dest, sizeof(q->dest), "%s", j->dest);
	}
	j->next = NULL;
	j->queued_ms = proc_now_ms();
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->units += j->units;
	q->bytes += j->entry.len;
}

/* A job is final: counted in its chunk, which goes to the reporter once
 * all its jobs are. */
static int
job_final(sink_job *j)
{
	if (--j->chunk->left > 0)
		return 0;
	chunk_settled(j->chunk);   /* the reporter's now */
	return 1;
}

/* A job (new, or due again) goes to its destination's queue, or fails at
 * once if prepare says it can never be sent. */
static void
admit(sink_job *j)
{
	j->units = 1;
	if (S.ops->prepare && S.ops->prepare(S.ops->state, j) < 0) {
		j->status = SINK_FATAL;
		proc_set_last_error(j->message);
		job_final(j);
		return;
	}
	if (j->units < 1)
		j->units = 1;
	enqueue(j);
}

/* Takes a spooled batch: its jobs are admitted one by one.  0 when none
 * was there, 1 when one was taken, -1 when the spool is closed. */
static int
take(spool *sp, int timeout_ms)
{
	buf b = BUF_ZERO;
	uint64_t ticket;
	int want = S.window - atomic_load(&S.window_jobs);
	if (want > MAX_SPOOL_BATCH)
		want = MAX_SPOOL_BATCH;
	if (want <= 0)
		return 0;
	int n = spool_next(sp, &b, want, 4 << 20, timeout_ms, &ticket);
	if (n <= 0) {
		buf_free(&b);
		return n == 0 || n == SPOOL_ETIMEDOUT ? 0 : -1;
	}
	sink_chunk *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(sink_job));
	if (c == NULL)
		log_die(111, "out of memory");
	c->sp = sp;
	c->ticket = ticket;
	c->data = b;
	env_iter it = {c->data.data, c->data.data + c->data.len, UINT32_MAX, 0};
	while (c->n < n && env_batch_next_env(&it, ENV_JOB, &c->jobs[c->n].env))
		c->n++;
	if (it.bad)
		log_error("spool: %u malformed job record(s) skipped", it.bad);
	atomic_fetch_add(&S.window_jobs, c->n);
	if (sp != S.in.sp)
		atomic_fetch_add(&S.chunks_of_orphan, 1);
	c->left = c->n;
	if (c->n == 0) {
		chunk_settled(c);
		return 1;
	}
	/* c is freed by whichever thread settles its last job, which can be
	 * as soon as the last one is admitted (a fatal job is settled inside
	 * admit, a queued one by a delivery thread): after that admit, c must
	 * not be read again, not even c->n. */
	int jobs = c->n;
	for (int i = 0; i < jobs; i++) {
		sink_job *j = &c->jobs[i];
		j->chunk = c;
		j->params = cJSON_ParseWithLength(j->env.s[ENV_PARAMS].p, j->env.s[ENV_PARAMS].n);
		admit(j);
	}
	return 1;
}

/* Cuts batches from the queues that are due (full, or lingered long
 * enough) while requests may be added; round robin over destinations so
 * one busy destination does not starve the others.  Returns the ms until
 * the next queue is due (INT64_MAX: none waiting). */
static int64_t
cut_batches(void)
{
	int64_t now = proc_now_ms(), next = INT64_MAX;
	int maxu = S.batch;
	sink_job *batch[MAX_SEND_JOBS];
	for (int k = 0; k < S.nq && S.inflight < S.inflight_max; k++) {
		int qi = (S.rr + k) % S.nq;
		dest_q *q = &S.q[qi];
		while (q->head && S.inflight < S.inflight_max) {
			int full = q->head->solo || q->units >= maxu ||
			    (S.ops->batch_bytes && q->bytes >= S.ops->batch_bytes);
			int lingered = now - q->head->queued_ms >= S.linger_ms;
			if (!full && !(lingered && (S.linger_ms == 0 || q->inflight < PARTIAL_INFLIGHT))) {
				/* Not yet: its linger time runs out, or a send to
				 * it completes (which wakes the dispatcher). */
				int64_t w = q->head->queued_ms + S.linger_ms - now;
				if (!lingered && w < next)
					next = w;
				break;
			}
			int n = 0, units = 0;
			size_t bytes = 0;
			while (q->head && n < (int)(sizeof(batch) / sizeof(batch[0]))) {
				sink_job *j = q->head;
				if (n > 0 && (j->solo || units + j->units > maxu ||
				    (S.ops->batch_bytes && bytes + j->entry.len > S.ops->batch_bytes)))
					break;
				q->head = j->next;
				if (q->head == NULL)
					q->tail = NULL;
				q->units -= j->units;
				q->bytes -= j->entry.len;
				units += j->units;
				bytes += j->entry.len;
				batch[n++] = j;
				if (j->solo)
					break;
			}
			sink_send *s = malloc(sizeof(*s));
			if (s == NULL)
				log_die(111, "out of memory");
			s->left = n;
			snprintf(s->dest, sizeof(s->dest), "%s", q->dest);
			q->inflight++;
			for (int i = 0; i < n; i++) {
				batch[i]->send = s;
				batch[i]->chunk->inflight++;
				batch[i]->attempts++;
				batch[i]->retry_after_ms = 0;
			}
			S.inflight++;
			S.ops->send(S.ops->state, batch, n);
		}
	}
	if (S.nq > 0)
		S.rr = (S.rr + 1) % S.nq;
	/* Forget destinations with nothing queued once there are many (a
	 * templated table or key name makes one per value). */
	if (S.nq > 64)
		for (int i = S.nq - 1; i >= 0; i--)
			if (S.q[i].head == NULL && S.q[i].inflight == 0)
				S.q[i] = S.q[--S.nq];
	return next;
}

/* ---- completions ------------------------------------------------------------ */

/* A chunk of a stopping stage with nothing in flight and jobs unfinished
 * is abandoned: not acknowledged, redone later. */
static void
maybe_abandon(sink_chunk *c)
{
	if (S.stop_deadline && c->inflight == 0 && c->left > 0) {
		c->left = -1;   /* never settles now */
		chunk_free(c);
	}
}

static void
completed(sink_job *j, sink_send *s)
{
	j->send = NULL;
	if (--s->left == 0) {
		for (int i = 0; i < S.nq; i++)
			if (strcmp(S.q[i].dest, s->dest) == 0) {
				S.q[i].inflight--;
				break;
			}
		free(s);
		S.inflight--;
	}
	sink_chunk *c = j->chunk;
	c->inflight--;
	if (j->status == SINK_RETRY || j->status == SINK_THROTTLED) {
		proc_count_retried(1);
		proc_set_last_error(j->message);
		if (j->first_fail_ms == 0)
			j->first_fail_ms = proc_now_ms();
		outage_failure(j);
		if (S.stop_deadline) {
			maybe_abandon(c);   /* not final: redone after the restart */
			return;
		}
		if (!retries_spent(j)) {
			j->due_ms = proc_now_ms() + backoff_ms(j->attempts, j->retry_after_ms);
			if (S.retry == NULL || j->due_ms < S.next_due)
				S.next_due = j->due_ms;
			j->next = S.retry;
			S.retry = j;
			return;
		}
	} else if (j->status == SINK_OK) {
		/* Delivery latency: from the message's arrival at ingest (the
		 * envelope's receive time) to the destination's acknowledgement,
		 * retries and spool time included. */
		proc_observe_latency_ms(proc_now_ms() - (j->env.ts_ms ? (int64_t)j->env.ts_ms : j->queued_ms));
		outage_success();
	} else {
		proc_set_last_error(j->message);
	}
	if (!job_final(j) && S.stop_deadline)
		maybe_abandon(c);
}

/* Processes completions; 1 if there were any. */
static int
take_completions(void)
{
	pthread_mutex_lock(&S.mu);
	sink_job *j = S.done_head;
	S.done_head = S.done_tail = NULL;
	S.kick = 0;
	pthread_mutex_unlock(&S.mu);
	int any = j != NULL;
	while (j) {
		sink_job *nx = j->next;
		completed(j, j->send);
		j = nx;
	}
	return any;
}

static void
requeue_due(void)
{
	int64_t now = proc_now_ms();
	if (S.retry == NULL || now < S.next_due)
		return;
	sink_job **pp = &S.retry;
	int64_t next = INT64_MAX;
	while (*pp) {
		sink_job *j = *pp;
		if (j->due_ms <= now) {
			*pp = j->next;
			enqueue(j);
		} else {
			if (j->due_ms < next)
				next = j->due_ms;
			pp = &j->next;
		}
	}
	S.next_due = next;
}

/* ---- the dispatcher ------------------------------------------------------------ */

/* First round after a stop was asked: what waits (queued, or for a
 * retry) is dropped, and the chunks of those jobs with nothing in flight
 * are abandoned; what is in flight gets until the deadline. */
static void
begin_stop(void)
{
	S.stop_deadline = proc_now_ms() + STOP_GRACE_MS;
	sink_chunk *drop = NULL;
	for (int i = 0; i <= S.nq; i++) {
		sink_job *j = i < S.nq ? S.q[i].head : S.retry;
		for (; j; j = j->next) {
			sink_chunk *c = j->chunk;
			if (c->inflight == 0 && c->left > 0) {
				c->left = -1;   /* marked: listed once */
				c->next = drop;
				drop = c;
			}
		}
		if (i < S.nq)
			S.q[i].head = S.q[i].tail = NULL;
	}
	S.retry = NULL;
	while (drop) {
		sink_chunk *nx = drop->next;
		chunk_free(drop);
		drop = nx;
	}
}

static void
status_update(void)
{
	int64_t now = proc_now_ms(), oldest = 0;
	for (int i = 0; i <= S.nq; i++)
		for (sink_job *j = i < S.nq ? S.q[i].head : S.retry; j; j = j->next) {
			int64_t since = j->first_fail_ms ? j->first_fail_ms : j->queued_ms;
			if (since && (oldest == 0 || since < oldest))
				oldest = since;
		}
	uint64_t pending = spool_pending(S.in.sp), bytes = spool_pending_bytes(S.in.sp);
	proc_set_pending(pending);
	proc_set_delivery(bytes, oldest ? now - oldest : 0);
	proc_set_spool(pending, bytes, oldest ? now - oldest : 0);
}

/* One round over the source spool: completions, due retries, new jobs
 * while the window has room, batches that are due; then a wait for the
 * next thing to do (a completion, new jobs, a timer), at most 100 ms.
 * Returns -1 when the stage is stopping and nothing is in flight any
 * more (or the grace time is over), else 0. */
static int
step(spool *src)
{
	static int64_t last_status, last_tick;
	take_completions();
	int64_t now = proc_now_ms(), wait = 100;
	if (proc_stopping() && S.stop_deadline == 0)
		begin_stop();
	if (S.stop_deadline) {
		if (S.inflight == 0 || now >= S.stop_deadline)
			return -1;
	} else {
		requeue_due();
		while (atomic_load(&S.window_jobs) < S.window && take(src, 0) > 0)
			;
		int64_t next = cut_batches();
		if (next < wait)
			wait = next;
		if (S.retry && S.next_due - now < wait)
			wait = S.next_due - now;
		if (S.ops->tick && now - last_tick >= 100) {
			S.ops->tick(S.ops->state);
			last_tick = now;
		}
	}
	if (now - last_status >= 500) {
		status_update();
		last_status = now;
	}
	if (wait < 1)
		wait = 1;
	/* Full window or all requests in flight: a completion is what can
	 * move things, and it signals.  Otherwise new jobs also kick. */
	struct timespec dl;
	deadline_in(&dl, (int)wait);
	pthread_mutex_lock(&S.mu);
	if (S.done_head == NULL && !S.kick)
		pthread_cond_timedwait(&S.cv, &S.mu, &dl);
	pthread_mutex_unlock(&S.mu);
	return 0;
}

/* Delivers what an adopted spool holds (spool_adopt_orphans): rounds on
 * it alone until all of it is acknowledged, or the stage stops and none
 * of its chunks is left (the spool is closed when this returns). */
static void
drain_orphan(spool *o, const char *name, void *arg)
{
	(void)arg;
	uint64_t left = spool_pending(o);
	if (left > 0)
		log_info("adopting %llu job(s) from the spool of %s", (unsigned long long)left, name);
	for (;;) {
		int r = step(o);
		if (atomic_load(&S.chunks_of_orphan) == 0 && (r < 0 || S.stop_deadline || spool_pending(o) == 0))
			break;
		if (r < 0) {
			/* Stopping with some of its chunks still out: they settle
			 * as their requests end (the action's stop ends them). */
			struct timespec dl;
			deadline_in(&dl, 10);
			pthread_mutex_lock(&S.mu);
			if (S.done_head == NULL)
				pthread_cond_timedwait(&S.cv, &S.mu, &dl);
			pthread_mutex_unlock(&S.mu);
		}
	}
}

static void *
dispatcher_main(void *arg)
{
	(void)arg;
	int64_t last_adopt = 0;
	while (step(S.in.sp) == 0) {
		int64_t now = proc_now_ms();
		if (!S.stop_deadline && S.inflight == 0 && S.retry == NULL &&
		    atomic_load(&S.window_jobs) == 0 && now - last_adopt > 1000) {
			/* Spools of instances that are gone (scaled down, rolled,
			 * replaced) are delivered from here, when idle. */
			stage_input_adopt(&S.in, drain_orphan, NULL);
			last_adopt = proc_now_ms();
		}
	}
	return NULL;
}

int
sink_main(int argc, char **argv, const sink_ops *ops)
{
	char stage[128], name[128], err[512];
	/* The action's names: its stage from the binary's name when the
	 * source serves several (iotrules-sink-<stage>), its failedAction
	 * from the table. */
	static sink_ops own;
	own = *ops;
	if (own.action == NULL) {
		const char *base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		own.action = strncmp(base, "iotrules-sink-", 14) == 0 ? base + 14 : base;
	}
	const action_type *t = action_by_stage(own.action);
	if (own.failed_action == NULL && t == NULL) {
		fprintf(stderr, "iotrules-sink-%s: no such action type (common/actions.def)\n", own.action);
		return 100;
	}
	if (own.failed_action == NULL)
		own.failed_action = t->failed_action;
	ops = &own;
	snprintf(stage, sizeof(stage), "sink-%s", ops->action);
	proc_init(stage);
	S.ops = ops;
	S.tries = 3;
	S.backoff_ms = 100;
	S.batch = ops->batch_max > 0 ? ops->batch_max : 1;
	S.inflight_max = 64;
	S.window = 8192;
	S.linger_ms = ops->linger_ms;
	S.retry_s = 3600;
	pthread_mutex_init(&S.mu, NULL);
	pthread_cond_init(&S.cv, NULL);
	pthread_mutex_init(&S.rmu, NULL);
	pthread_cond_init(&S.rcv, NULL);
	snprintf(name, sizeof(name), "sink-%s-1", ops->action);
	S.pc.name = name;
	char prog[80];
	snprintf(prog, sizeof(prog), "iotrules-sink-%s", ops->action);
	opt_init(prog, &argc, &argv);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (proc_opt(&S.pc, argc, argv, &i))
			continue;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout, ops);
			return 0;
		}
		int taken = stage_input_opt(&S.in, argc, argv, &i);
		if (taken < 0)
			opt_usage_error("bad value for %s", o);
		if (taken)
			continue;
		if (ops->option) {
			int r = ops->option(ops->state, argc, argv, &i);
			if (r < 0)
				opt_usage_error("bad value for %s", o);
			if (r > 0)
				continue;
		}
		if (strncmp(o, "--", 2) != 0)
			opt_usage_error("unexpected argument '%s'", o);
		const char *v = opt_value(argc, argv, &i);
		if (strcmp(o, "--tries") == 0) S.tries = (int)opt_int(o, v, 1, 1000);
		else if (strcmp(o, "--backoff-ms") == 0) S.backoff_ms = (int)opt_int(o, v, 1, 60000);
		else if (strcmp(o, "--batch") == 0) S.batch = (int)opt_int(o, v, 1, S.batch);
		else if (strcmp(o, "--retry-s") == 0) S.retry_s = (int)opt_int(o, v, 0, 1 << 30);
		else if (strcmp(o, "--inflight") == 0) S.inflight_max = (int)opt_int(o, v, 1, 4096);
		else if (strcmp(o, "--window") == 0) S.window = (int)opt_int(o, v, 1, 1 << 20);
		else if (strcmp(o, "--linger-ms") == 0) S.linger_ms = (int)opt_int(o, v, 0, 60000);
		else if (strcmp(o, "--workers") == 0) (void)v;   /* the old runtime's; --inflight now */
		else opt_usage_error("unknown option %s", o);
	}
	if (!S.pc.run_dir || !S.pc.state_dir)
		opt_usage_error("--run-dir and --state-dir are required");
	if (proc_check_ipc_paths(S.pc.run_dir, S.pc.name, err, sizeof(err)) < 0)
		log_die(100, "%s", err);
	if (ops->max_inflight > 0 && S.inflight_max > ops->max_inflight)
		S.inflight_max = ops->max_inflight;
	if (ops->start && ops->start(ops->state) < 0)
		log_die(111, "cannot start the %s sink", ops->action);

	char kind[200], hopdir[200];
	snprintf(kind, sizeof(kind), "sinks/%s", ops->action);
	snprintf(hopdir, sizeof(hopdir), "jobs/%s", ops->action);
	S.in.what = "jobs";
	S.in.appended = kick;
	if (stage_input_open(&S.in, &S.pc, kind, hopdir, 2, err, sizeof(err)) < 0)
		log_die(111, "%s", err);
	S.fail = hop_sender_open(S.pc.run_dir, "failures", S.pc.name, 2, err, sizeof(err));
	if (S.fail == NULL)
		log_die(111, "failures hop: %s", err);
	proc_stats_start(&S.pc, stage);
	proc_set_delivery(0, 0);
	proc_stop_watchdog(4500);
	pthread_t dt, rt;
	if (pthread_create(&rt, NULL, reporter_main, NULL) != 0 ||
	    pthread_create(&dt, NULL, dispatcher_main, NULL) != 0)
		log_die(111, "cannot start the delivery threads");
	proc_ready();
	while (!proc_stopping())
		proc_sleep_ms(100);
	/* Stop accepting (a job batch arriving now is refused and resent to
	 * another instance); the dispatcher drops what waits and gives what
	 * is in flight 3 s; then the error handler's hop is shut (a report
	 * not taken leaves its chunk unacknowledged) and the action's
	 * clients are stopped, completing what is still in flight.  Every
	 * chunk not finished stays in the spool for the next start or
	 * another instance.  Nothing is acknowledged that was not done. */
	stage_input_stop(&S.in);
	struct timespec dl;
	deadline_in(&dl, STOP_GRACE_MS + 200);
	int joined = pthread_timedjoin_np(dt, NULL, &dl) == 0;
	hop_sender_shutdown(S.fail);
	if (ops->stop)
		ops->stop(ops->state);
	if (!joined)
		pthread_join(dt, NULL);
	if (S.stop_deadline == 0)
		begin_stop();
	take_completions();
	pthread_mutex_lock(&S.rmu);
	S.rstop = 1;
	pthread_cond_signal(&S.rcv);
	pthread_mutex_unlock(&S.rmu);
	pthread_join(rt, NULL);
	free(S.q);
	hop_sender_close(S.fail);
	proc_set_pending(spool_pending(S.in.sp));
	stage_input_close(&S.in);
	proc_stats_stop();
	log_info("stopped");
	return 0;
}
