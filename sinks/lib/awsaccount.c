#include "sinks/lib/awsaccount.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "sinks/lib/awssink.h"

/* A job waiting for its role's answer. */
typedef struct waiter {
	sink_job *j;
	awsaccount_fn fn;
	struct waiter *next;
} waiter;

/* One role's account: known, or being asked (waiters), or neither. */
typedef struct entry {
	char *role;
	char partition[32];
	char account[32];
	int asking;
	waiter *waiting;
	struct entry *next;
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;

/* STS answered for entry e: keep what it said, then complete every job
 * that waited (outside the lock: fn sends requests). */
static void
on_identity(void *arg, const aws_response *r)
{
	entry *e = arg;
	char arn[512] = "", account[32] = "";
	int good = r->verdict == AWS_OK && aws_xml_text(r->body, "Account", account, sizeof(account)) == 0 &&
	    aws_xml_text(r->body, "Arn", arn, sizeof(arn)) == 0 && strncmp(arn, "arn:", 4) == 0 && account[0];
	aws_response err = *r;
	if (r->verdict == AWS_OK && !good) {
		err.verdict = AWS_TRANSIENT;
		err.error_message = "GetCallerIdentity answered without an Account and Arn";
	}
	pthread_mutex_lock(&mu);
	if (good) {
		/* arn:PARTITION:iam::ACCOUNT:... */
		snprintf(e->partition, sizeof(e->partition), "%.*s", (int)strcspn(arn + 4, ":"), arn + 4);
		snprintf(e->account, sizeof(e->account), "%s", account);
	}
	e->asking = 0;
	waiter *w = e->waiting;
	e->waiting = NULL;
	pthread_mutex_unlock(&mu);
	while (w) {
		waiter *next = w->next;
		if (good)
			w->fn(w->j, e->partition, e->account, NULL);
		else
			w->fn(w->j, NULL, NULL, &err);
		free(w);
		w = next;
	}
}

void
awsaccount_get(sink_job *j, const char *role, awsaccount_fn fn)
{
	role = role ? role : "";
	if (awssink_account_id()) {
		/* Configured (config account_id): the rules' account, as AWS
		 * builds the ARN in the rule's own account. */
		const char *region = aws_region(awssink_client());
		fn(j, strncmp(region, "cn-", 3) == 0 ? "aws-cn" : strncmp(region, "us-gov-", 7) == 0 ? "aws-us-gov" : "aws",
		    awssink_account_id(), NULL);
		return;
	}
	pthread_mutex_lock(&mu);
	entry *e = entries;
	while (e && strcmp(e->role, role) != 0)
		e = e->next;
	if (e == NULL) {
		e = xcalloc(sizeof(*e));
		if ((e->role = strdup(role)) == NULL)
			log_die(111, "out of memory");
		e->next = entries;
		entries = e;
	}
	if (e->account[0]) {
		pthread_mutex_unlock(&mu);
		fn(j, e->partition, e->account, NULL);
		return;
	}
	waiter *w = xcalloc(sizeof(*w));
	w->j = j;
	w->fn = fn;
	w->next = e->waiting;
	e->waiting = w;
	int ask = !e->asking;
	e->asking = 1;
	pthread_mutex_unlock(&mu);
	if (!ask)
		return;
	static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";
	aws_request rq = {.service = "sts", .endpoint_id = "STS",
	    .content_type = "application/x-www-form-urlencoded; charset=utf-8",
	    .body = body, .body_len = sizeof(body) - 1, .role_arn = role[0] ? role : NULL};
	aws_send(awssink_client(), &rq, on_identity, e);
}
