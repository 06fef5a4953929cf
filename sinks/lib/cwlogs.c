#include "sinks/lib/cwlogs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define HDR (sizeof(int64_t) + sizeof(uint32_t))
#define JSON11 "application/x-amz-json-1.1"

const awssink_call cwlogs_put = {.what = "Failed to put log events", .service = "Amazon CloudWatch Logs"};
static const awssink_call CREATE = {.what = "Failed to create log stream",
    .service = "Amazon CloudWatch Logs"};

/* An entry is a run of events: int64 timestamp, uint32 n, then n bytes,
 * the event's JSON {"timestamp":..,"message":..}. */
typedef struct event {
	int64_t ts;
	int job, seq;           /* index in its request's jobs; arrival order */
	const char *json;
	uint32_t n;
} event;

/* A job's time range, for cutting a send into requests of < 24 h. */
typedef struct span {
	int64_t lo, hi;
	int job;
} span;

/* One PutLogEvents request: its jobs, the job of each (sorted) event, the
 * count of each job's events by outcome, and the bodies, kept to send it
 * again once the stream is created.  One allocation: jobs, then counts,
 * then evjob. */
enum { EV_ALL, EV_OLD, EV_NEW, EV_EXPIRED, EV_KINDS };
typedef struct put {
	int n, nev, created;
	int (*count)[EV_KINDS];
	int *evjob;
	buf body, create;
	char *role;
	sink_job *jobs[];
} put;

void
cwlogs_add_event(sink_job *j, int64_t ts, const char *msg, size_t n)
{
	size_t at = j->entry.len;
	uint32_t len = 0;
	buf_add(&j->entry, &ts, sizeof(ts));
	buf_add(&j->entry, &len, sizeof(len));
	buf_printf(&j->entry, "{\"timestamp\":%lld,\"message\":", (long long)ts);
	buf_add_json_str(&j->entry, msg, n);
	buf_addc(&j->entry, '}');
	len = (uint32_t)(j->entry.len - at - HDR);
	memcpy(j->entry.data + at + sizeof(ts), &len, sizeof(len));
	j->units++;
}

/* The event of entry e at *off into ev, and *off past it; 0 at the end. */
static int
next_event(const buf *e, size_t *off, event *ev)
{
	if (*off + HDR > e->len)
		return 0;
	memcpy(&ev->ts, e->data + *off, sizeof(ev->ts));
	memcpy(&ev->n, e->data + *off + sizeof(ev->ts), sizeof(ev->n));
	ev->json = e->data + *off + HDR;
	*off += HDR + ev->n;
	return 1;
}

static int
by_time(const void *a, const void *b)
{
	const event *x = a, *y = b;
	return x->ts != y->ts ? (x->ts < y->ts ? -1 : 1) : x->seq - y->seq;
}

static int
by_start(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return x->lo != y->lo ? (x->lo < y->lo ? -1 : 1) : x->job - y->job;
}

static void
put_free(put *p)
{
	buf_free(&p->body);
	buf_free(&p->create);
	free(p->role);
	free(p);
}

/* An index of rejectedLogEventsInfo, within [0, nev]; dflt when absent. */
static int
index_of(const cJSON *info, const char *name, int dflt, int nev)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(info, name);
	if (!cJSON_IsNumber(v))
		return dflt;
	return v->valuedouble < 0 ? 0 : v->valuedouble > nev ? nev : (int)v->valuedouble;
}

/* A 200 answer: each job is done, or fails for its rejected events. */
static void
judge(put *p, const aws_response *r)
{
	cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(body, "rejectedLogEventsInfo");
	int from_new = index_of(info, "tooNewLogEventStartIndex", p->nev, p->nev);
	int to_old = index_of(info, "tooOldLogEventEndIndex", 0, p->nev);
	int to_expired = index_of(info, "expiredLogEventEndIndex", 0, p->nev);
	cJSON_Delete(body);
	for (int i = 0; i < p->nev; i++) {
		int *k = p->count[p->evjob[i]];
		k[EV_ALL]++;
		if (i < to_expired)
			k[EV_EXPIRED]++;
		else if (i < to_old)
			k[EV_OLD]++;
		else if (i >= from_new)
			k[EV_NEW]++;
	}
	for (int i = 0; i < p->n; i++) {
		int *k = p->count[i], bad = k[EV_OLD] + k[EV_NEW] + k[EV_EXPIRED];
		if (bad == 0) {
			sink_job_done(p->jobs[i], SINK_OK);
			continue;
		}
		char rec[512];
		snprintf(rec, sizeof(rec), "%d of its %d log events rejected: %d too old, %d too new, %d expired "
		    "(Service: %s; Status Code: %ld; rejectedLogEventsInfo)", bad, k[EV_ALL], k[EV_OLD], k[EV_NEW],
		    k[EV_EXPIRED], cwlogs_put.service, r->status);
		sink_job_fail(p->jobs[i], SINK_FATAL, cwlogs_put.what, rec);
	}
}

static void put_done(void *arg, const aws_response *r);

static void
call(put *p, const char *op, const buf *body, aws_done_fn done)
{
	char target[64];
	snprintf(target, sizeof(target), "Logs_20140328.%s", op);
	aws_request rq = {.service = "logs", .endpoint_id = "CLOUDWATCH_LOGS", .target = target,
	    .content_type = JSON11, .body = body->data, .body_len = body->len, .role_arn = p->role};
	aws_send(awssink_client(), &rq, done, p);
}

/* CreateLogStream answered: the stream is there (now or already), so the
 * events go again; or every job fails with its error. */
static void
create_done(void *arg, const aws_response *r)
{
	put *p = arg;
	if (r->verdict == AWS_OK || strcmp(r->error_code, "ResourceAlreadyExistsException") == 0) {
		call(p, "PutLogEvents", &p->body, put_done);
		return;
	}
	awssink_fail_all(p->jobs, p->n, r, &CREATE);
	put_free(p);
}

static void
put_done(void *arg, const aws_response *r)
{
	put *p = arg;
	if (r->verdict == AWS_OK) {
		judge(p, r);
	} else if (!p->created && strcmp(r->error_code, "ResourceNotFoundException") == 0) {
		p->created = 1;
		call(p, "CreateLogStream", &p->create, create_done);
		return;
	} else {
		awssink_fail_all(p->jobs, p->n, r, &cwlogs_put);
	}
	put_free(p);
}

/* One request for the jobs of g[0..k), their events sorted. */
static void
put_jobs(sink_job **jobs, const span *g, int k, const char *group, const char *stream, const char *role)
{
	int nev = 0;
	for (int i = 0; i < k; i++)
		nev += jobs[g[i].job]->units;
	put *p = xmust(calloc(1, sizeof(*p) + (size_t)k * (sizeof(sink_job *) + sizeof(*p->count))
	    + (size_t)nev * sizeof(int)));
	event *ev = xmust(malloc((size_t)(nev ? nev : 1) * sizeof(*ev)));
	p->n = k;
	p->count = (void *)&p->jobs[k];
	p->evjob = (int *)&p->count[k];
	int m = 0;
	for (int i = 0; i < k; i++) {
		p->jobs[i] = jobs[g[i].job];
		for (size_t off = 0; m < nev && next_event(&p->jobs[i]->entry, &off, &ev[m]); m++) {
			ev[m].job = i;
			ev[m].seq = m;
		}
	}
	p->nev = m;
	qsort(ev, (size_t)m, sizeof(*ev), by_time);
	buf_adds(&p->create, "{\"logGroupName\":");
	buf_add_json_str(&p->create, group, strlen(group));
	buf_adds(&p->create, ",\"logStreamName\":");
	buf_add_json_str(&p->create, stream, strlen(stream));
	buf_add(&p->body, p->create.data, p->create.len);
	buf_adds(&p->create, "}");
	buf_adds(&p->body, ",\"logEvents\":[");
	for (int i = 0; i < m; i++) {
		p->evjob[i] = ev[i].job;
		if (i)
			buf_addc(&p->body, ',');
		buf_add(&p->body, ev[i].json, ev[i].n);
	}
	buf_adds(&p->body, "]}");
	free(ev);
	p->role = role ? xmust(strdup(role)) : NULL;
	call(p, "PutLogEvents", &p->body, put_done);
}

void
cwlogs_send(sink_job **jobs, int n, const char *group, const char *stream, const char *role)
{
	span *s = xmust(malloc((size_t)n * sizeof(*s)));
	for (int i = 0; i < n; i++) {
		event ev;
		s[i] = (span){INT64_MAX, INT64_MIN, i};
		for (size_t off = 0; next_event(&jobs[i]->entry, &off, &ev);) {
			s[i].lo = ev.ts < s[i].lo ? ev.ts : s[i].lo;
			s[i].hi = ev.ts > s[i].hi ? ev.ts : s[i].hi;
		}
	}
	/* Jobs by their first event; a request takes jobs while all its
	 * events stay within 24 h of its earliest. */
	qsort(s, (size_t)n, sizeof(*s), by_start);
	for (int a = 0, b; a < n; a = b) {
		int64_t hi = s[a].hi;
		for (b = a + 1; b < n && (s[b].hi > hi ? s[b].hi : hi) - s[a].lo < CWLOGS_MAX_SPAN_MS; b++)
			hi = s[b].hi > hi ? s[b].hi : hi;
		put_jobs(jobs, s + a, b - a, group, stream, role);
	}
	free(s);
}
