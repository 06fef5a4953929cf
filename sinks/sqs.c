/* iotrules-sink-sqs: the sqs action (ACTIONS.md §2.20): the result as one
 * message, its text or (useBase64) its base64.  Jobs for one queue go
 * together in SendMessageBatch (10 entries, 256 KiB), JSON protocol, to
 * the SQS endpoint with QueueUrl in the body; each entry's own answer
 * decides its job (Failed[]: SenderFault is permanent, otherwise the code
 * decides), so a partial failure resends only the failed entries.
 * [decision] A binary result without useBase64 that is not valid UTF-8
 * fails at once: SQS carries text only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "sinks/lib/awssink.h"

#define MAX_ENTRIES 10

static void judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call);

static const awssink_call CALL = {.what = "Failed to send message", .service = "Amazon SQS", .judge = judge};

/* The region of an AWS queue URL (https://sqs.REGION.amazonaws.com/...,
 * or the legacy https://REGION.queue.amazonaws.com/...) into out; ""
 * for any other host: the client's region. */
static void
queue_region(const char *url, char *out, size_t cap)
{
	char host[256];
	const char *h = strstr(url, "://");
	out[0] = 0;
	if (h == NULL || strcspn(h + 3, ":/") >= sizeof(host))
		return;
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(h + 3, ":/"), h + 3);
	char *aws = strstr(host, ".amazonaws.com"), *q;
	if (aws == NULL)
		return;
	*aws = 0;
	const char *region = NULL;
	if (strncmp(host, "sqs.", 4) == 0)
		region = host + 4;
	else if ((q = strstr(host, ".queue")) != NULL && q[6] == 0) {
		*q = 0;
		region = host;
	}
	if (region && region[0] && strchr(region, '.') == NULL && strlen(region) < cap)
		memcpy(out, region, strlen(region) + 1);
}

static int
use_base64(const sink_job *j)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j->params, "useBase64");
	return cJSON_IsTrue(v) || (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0);
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *url = sink_param(j, "queueUrl");
	const env_slice *d = &j->env.s[ENV_RESULT];
	int b64 = use_base64(j);
	snprintf(j->resource, sizeof(j->resource), "%s", url);
	if (url[0] == 0 || (!b64 && !utf8_valid(d->p, d->n))) {
		sink_error_message(j, CALL.what, url[0] == 0 ? "the queueUrl is empty"
		    : "the result is binary and not valid UTF-8; set useBase64 to send it");
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", url, sink_param(j, "roleArn"));
	if (b64) {
		buf_addc(&j->entry, '"');
		awssink_add_base64(&j->entry, d->p, d->n, NULL);
		buf_addc(&j->entry, '"');
	} else
		buf_add_json_str(&j->entry, d->p, d->n);
	return 0;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	const char *url = sink_param(jobs[0], "queueUrl");
	char region[64];
	queue_region(url, region, sizeof(region));
	buf b = BUF_ZERO;
	buf_adds(&b, "{\"QueueUrl\":");
	buf_add_json_str(&b, url, strlen(url));
	buf_adds(&b, ",\"Entries\":[");
	for (int i = 0; i < n; i++) {
		buf_printf(&b, "%s{\"Id\":\"%d\",\"MessageBody\":", i ? "," : "", i);
		buf_add(&b, jobs[i]->entry.data, jobs[i]->entry.len);
		buf_addc(&b, '}');
	}
	buf_adds(&b, "]}");
	aws_request rq = {.service = "sqs", .endpoint_id = "SQS", .region = region,
	    .target = "AmazonSQS.SendMessageBatch", .content_type = "application/x-amz-json-1.0",
	    .body = b.data, .body_len = b.len, .role_arn = awssink_role(jobs[0])};
	awssink_send(&rq, jobs, n, &CALL);
	buf_free(&b);
}

/* SendMessageBatch answers 200 with Successful[] and Failed[], by Id. */
static void
judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call)
{
	awssink_outcome o[2 * MAX_ENTRIES];
	int no = 0;
	for (int failed = 1; failed >= 0; failed--) {
		cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, failed ? "Failed" : "Successful")) {
			if (no == 2 * MAX_ENTRIES)
				break;
			cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "Id");
			cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "Code");
			cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "Message");
			awssink_outcome *x = &o[no++];
			x->failed = failed;
			x->sender_fault = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "SenderFault"));
			snprintf(x->id, sizeof(x->id), "%s", cJSON_IsString(id) ? id->valuestring : "");
			snprintf(x->code, sizeof(x->code), "%s", cJSON_IsString(code) ? code->valuestring : "");
			snprintf(x->message, sizeof(x->message), "%s", cJSON_IsString(msg) ? msg->valuestring : "");
		}
	}
	awssink_judge_ids(jobs, n, r->status, call, o, no);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "sqs";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = MAX_ENTRIES;
	ops.batch_bytes = 256 << 10;
	return awssink_main(argc, argv, &ops);
}
