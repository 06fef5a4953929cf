/* iotrules-sink-sns: the sns action (ACTIONS.md §2.19): the result text
 * as one notification, with MessageStructure=json when messageFormat is
 * JSON.  Query protocol: a form body (parameters in the body, never the
 * URL), an XML answer; the region is the ARN's.
 *
 * A topic ARN (arn:...:sns:REGION:ACCOUNT:NAME) goes as TopicArn and its
 * jobs go together in PublishBatch (10 entries, 256 KiB), each entry's
 * own answer deciding its job (Failed[]: SenderFault is permanent,
 * otherwise the code decides).  An endpoint ARN (...:endpoint/...) goes
 * alone in Publish as TargetArn: PublishBatch takes topics only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/lib/awssink.h"

#define MAX_ENTRIES 10
#define FORM "application/x-www-form-urlencoded; charset=utf-8"

static void judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call);

static const awssink_call BATCH = {.what = "Failed to publish to SNS",
    .service = "Amazon SNS", .judge = judge};
static const awssink_call SINGLE = {.what = "Failed to publish to SNS", .service = "Amazon SNS"};

/* 1 for a platform endpoint ARN: its resource part is "endpoint/...". */
static int
is_endpoint(const char *arn)
{
	const char *p = arn;
	for (int i = 0; i < 5 && p; i++)
		if ((p = strchr(p, ':')) != NULL)
			p++;
	return p && strncmp(p, "endpoint/", 9) == 0;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *arn = sink_param(j, "targetArn");
	char region[64];
	snprintf(j->resource, sizeof(j->resource), "%s", arn);
	if (aws_arn_region(arn, region, sizeof(region)) < 0) {
		sink_error_message(j, BATCH.what, "the targetArn is not an SNS ARN with a region");
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", arn, sink_param(j, "roleArn"));
	j->solo = is_endpoint(arn);
	const env_slice *d = &j->env.s[ENV_RESULT];
	aws_uri_encode(&j->entry, d->p, d->n, 0);
	return 0;
}

/* "&NAME=" of the request (Publish), or of its entry i (PublishBatch). */
static void
param(buf *b, int batch, int i, const char *name)
{
	if (batch)
		buf_printf(b, "&PublishBatchRequestEntries.member.%d.%s=", i + 1, name);
	else
		buf_printf(b, "&%s=", name);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	const char *arn = sink_param(jobs[0], "targetArn");
	char region[64];
	aws_arn_region(arn, region, sizeof(region));
	int batch = !jobs[0]->solo;
	buf b = BUF_ZERO;
	buf_printf(&b, "Action=%s&Version=2010-03-31", batch ? "PublishBatch" : "Publish");
	param(&b, 0, 0, batch ? "TopicArn" : "TargetArn");
	aws_uri_encode(&b, arn, strlen(arn), 0);
	for (int i = 0; i < n; i++) {
		if (batch) {
			param(&b, 1, i, "Id");
			buf_printf(&b, "%d", i);
		}
		param(&b, batch, i, "Message");
		buf_add(&b, jobs[i]->entry.data, jobs[i]->entry.len);
		if (strcmp(sink_param(jobs[i], "messageFormat"), "JSON") == 0) {
			param(&b, batch, i, "MessageStructure");
			buf_adds(&b, "json");
		}
	}
	aws_request rq = {.service = "sns", .endpoint_id = "SNS", .region = region, .content_type = FORM,
	    .body = b.data, .body_len = b.len, .role_arn = awssink_role(jobs[0])};
	awssink_send(&rq, jobs, n, batch ? &BATCH : &SINGLE);
	buf_free(&b);
}

/* The <member> elements of the answer's <Successful> or <Failed> list,
 * one at a time: the next one after *at into out; 0 when none is left. */
static int
next_member(const char *xml, const char *list, const char **at, char *out, size_t cap)
{
	char open[32], close[32];
	snprintf(open, sizeof(open), "<%s>", list);
	snprintf(close, sizeof(close), "</%s>", list);
	const char *start = strstr(xml, open), *end = start ? strstr(start, close) : NULL;
	if (end == NULL)
		return 0;
	const char *m = strstr(*at ? *at : start, "<member>");
	const char *me = m ? strstr(m, "</member>") : NULL;
	if (me == NULL || me > end)
		return 0;
	snprintf(out, cap, "%.*s", (int)(me - m), m);
	*at = me;
	return 1;
}

/* PublishBatch answers 200 with Successful and Failed members, by Id. */
static void
judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call)
{
	(void)body;   /* XML */
	awssink_outcome o[2 * MAX_ENTRIES];
	char m[2048], fault[8];
	int no = 0;
	for (int failed = 1; failed >= 0; failed--) {
		const char *at = NULL;
		while (no < 2 * MAX_ENTRIES && next_member(r->body, failed ? "Failed" : "Successful", &at, m, sizeof(m))) {
			awssink_outcome *x = &o[no++];
			x->id[0] = x->code[0] = x->message[0] = fault[0] = 0;
			aws_xml_text(m, "Id", x->id, sizeof(x->id));
			aws_xml_text(m, "Code", x->code, sizeof(x->code));
			aws_xml_text(m, "Message", x->message, sizeof(x->message));
			aws_xml_text(m, "SenderFault", fault, sizeof(fault));
			x->failed = failed;
			x->sender_fault = strcmp(fault, "true") == 0;
		}
	}
	awssink_judge_ids(jobs, n, r->status, call, o, no);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "sns";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = MAX_ENTRIES;
	ops.batch_bytes = 256 << 10;
	return awssink_main(argc, argv, &ops);
}
