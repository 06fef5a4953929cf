#include "sinks/lib/awsdisco.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/awsconf.h"
#include "common/log.h"
#include "common/proc.h"
#include "sinks/lib/awssink.h"

typedef struct waiter {
	awsdisco_fn fn;
	void *arg;
	struct waiter *next;
} waiter;

/* One role's address.  Entries live as long as the process (a handful:
 * one per roleArn), so an answer can always find its own. */
typedef struct entry {
	char role[256];
	char host[256];         /* "" none */
	int64_t expires_ms;     /* proc_now_ms */
	int discovering;        /* a DescribeEndpoints is out */
	waiter *waiting, **tail;
	struct entry *next;
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;

/* Under mu. */
static entry *
entry_of(const char *role)
{
	entry *e;
	for (e = entries; e; e = e->next)
		if (strcmp(e->role, role) == 0)
			return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		log_die(111, "out of memory");
	snprintf(e->role, sizeof(e->role), "%s", role);
	e->tail = &e->waiting;
	e->next = entries;
	entries = e;
	return e;
}

/* The Address of the first endpoint of a DescribeEndpoints answer into
 * host, and its cache period; 0, or -1 when the answer names none. */
static int
parse_answer(const aws_response *r, char *host, size_t cap, int64_t *period_ms)
{
	cJSON *doc = cJSON_ParseWithLength(r->body, r->body_len);
	cJSON *ep = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "Endpoints"), 0);
	cJSON *a = cJSON_GetObjectItemCaseSensitive(ep, "Address");
	cJSON *p = cJSON_GetObjectItemCaseSensitive(ep, "CachePeriodInMinutes");
	int ok = cJSON_IsString(a) && a->valuestring[0] && strlen(a->valuestring) < cap &&
	    strpbrk(a->valuestring, "/?#@ ") == NULL && cJSON_IsNumber(p) && p->valuedouble >= 0;
	if (ok) {
		snprintf(host, cap, "%s", a->valuestring);
		*period_ms = p->valuedouble > 525600 ? 525600LL * 60000 : (int64_t)(p->valuedouble * 60000);
	}
	cJSON_Delete(doc);
	return ok ? 0 : -1;
}

static void
on_described(void *arg, const aws_response *r)
{
	entry *e = arg;
	char host[256] = "";
	int64_t period = 0;
	aws_response bad = *r;
	int good = r->verdict == AWS_OK && parse_answer(r, host, sizeof(host), &period) == 0;
	if (r->verdict == AWS_OK && !good) {
		bad.verdict = AWS_TRANSIENT;
		bad.error_message = "DescribeEndpoints answered no endpoint address";
	}
	pthread_mutex_lock(&mu);
	if (good) {
		snprintf(e->host, sizeof(e->host), "%s", host);
		e->expires_ms = proc_now_ms() + period;
	}
	waiter *w = e->waiting;
	e->waiting = NULL;
	e->tail = &e->waiting;
	e->discovering = 0;
	pthread_mutex_unlock(&mu);
	if (good)
		log_info("discovered endpoint %s (cached %lld min)", host, (long long)(period / 60000));
	else
		log_warn("endpoint discovery failed: %s %s", r->error_code, bad.error_message);
	while (w) {
		waiter *next = w->next;
		w->fn(w->arg, good ? host : NULL, good ? NULL : &bad);
		free(w);
		w = next;
	}
}

void
awsdisco_get(const awsdisco_service *s, const char *role, awsdisco_fn fn, void *arg)
{
	char host[256];
	pthread_mutex_lock(&mu);
	entry *e = entry_of(role ? role : "");
	if (e->host[0] && proc_now_ms() < e->expires_ms) {
		snprintf(host, sizeof(host), "%s", e->host);
		pthread_mutex_unlock(&mu);
		fn(arg, host, NULL);
		return;
	}
	waiter *w = calloc(1, sizeof(*w));
	if (w == NULL)
		log_die(111, "out of memory");
	w->fn = fn;
	w->arg = arg;
	*e->tail = w;
	e->tail = &w->next;
	int start = !e->discovering;
	e->discovering = 1;
	pthread_mutex_unlock(&mu);
	if (!start)
		return;
	aws_request rq = {.service = s->service, .endpoint_id = s->endpoint_id, .host = s->host,
	    .target = s->target, .content_type = s->content_type, .body = "{}", .body_len = 2,
	    .role_arn = role && role[0] ? role : NULL};
	aws_send(awssink_client(), &rq, on_described, e);
}

void
awsdisco_forget(const char *role, const char *host)
{
	pthread_mutex_lock(&mu);
	entry *e = entry_of(role ? role : "");
	if (strcmp(e->host, host) == 0)
		e->host[0] = 0;
	pthread_mutex_unlock(&mu);
}

/* A data call waiting for its address: rq's strings copied after it. */
typedef struct call {
	aws_request rq;
	aws_done_fn done;
	void *arg;
	char host[256];
	char mem[];
} call;

static void
on_data(void *arg, const aws_response *r)
{
	call *c = arg;
	if (strcmp(r->error_code, "InvalidEndpointException") == 0)
		awsdisco_forget(c->rq.role_arn, c->host);
	c->done(c->arg, r);
	free(c);
}

static void
on_host(void *arg, const char *host, const aws_response *err)
{
	call *c = arg;
	if (err) {
		c->done(c->arg, err);
		free(c);
		return;
	}
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->rq.host = c->host;
	aws_send(awssink_client(), &c->rq, on_data, c);
}

/* Moves r's strings and body into p (when not NULL); returns the bytes
 * they take. */
static size_t
copy_strs(aws_request *r, char *p)
{
	const char **f[] = {&r->service, &r->endpoint_id, &r->region, &r->method, &r->path, &r->query,
	    &r->content_type, &r->target, &r->s3_bucket, &r->role_arn, &r->headers[0], &r->headers[1],
	    &r->headers[2], &r->headers[3], &r->headers[4], &r->headers[5], &r->headers[6], &r->headers[7]};
	size_t n = r->body_len;
	if (p && r->body_len)
		r->body = memcpy(p, r->body, r->body_len);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (*f[i] == NULL)
			continue;
		size_t k = strlen(*f[i]) + 1;
		if (p)
			*f[i] = memcpy(p + n, *f[i], k);
		n += k;
	}
	return n;
}

void
awsdisco_send(const awsdisco_service *s, const aws_request *rq, aws_done_fn done, void *arg)
{
	static int checked, configured;   /* one service per process */
	if (!checked) {
		char ep[1024];
		configured = awsconf_endpoint(s->endpoint_id, ep, sizeof(ep)) == 0;
		checked = 1;
	}
	if (configured) {
		aws_send(awssink_client(), rq, done, arg);
		return;
	}
	aws_request t = *rq;
	call *c = calloc(1, sizeof(*c) + copy_strs(&t, NULL));
	if (c == NULL)
		log_die(111, "out of memory");
	c->rq = t;
	copy_strs(&c->rq, c->mem);
	c->done = done;
	c->arg = arg;
	awsdisco_get(s, rq->role_arn, on_host, c);
}
