#include "sinks/lib/cwquery.h"

#include <string.h>

#define FORM "application/x-www-form-urlencoded; charset=utf-8"

static struct {
	const char *action;
	const awssink_call *call;
} Q;

void
cwq_param(buf *b, const char *name, const char *value)
{
	buf_printf(b, "&%s=", name);
	aws_uri_encode(b, value, strlen(value), 0);
}

/* One job a send (batch_max 0). */
static void
send_job(void *state, sink_job **jobs, int n)
{
	(void)state;
	(void)n;
	sink_job *j = jobs[0];
	buf b = BUF_ZERO;
	buf_printf(&b, "Action=%s&Version=2010-08-01", Q.action);
	buf_add(&b, j->entry.data, j->entry.len);
	aws_request rq = {.service = "monitoring", .endpoint_id = "CLOUDWATCH", .content_type = FORM,
	    .body = b.data, .body_len = b.len, .role_arn = awssink_role(j)};
	awssink_send(&rq, jobs, 1, Q.call);
	buf_free(&b);
}

int
cwq_main(int argc, char **argv, int (*prepare)(void *, sink_job *), const char *action,
    const awssink_call *call)
{
	sink_ops ops = {0};
	Q.action = action;
	Q.call = call;
	ops.prepare = prepare;
	ops.send = send_job;
	return awssink_main(argc, argv, &ops);
}
