/* iotrules-sink-kinesis: the kinesis action (ACTIONS.md §2.13): the result
 * as one record of a Kinesis data stream, partition key templated (a
 * random UUID when none is given).  Jobs for one stream go together in
 * PutRecords (500 records, 5 MiB); each record's own answer decides its
 * job, so a partial failure resends only the records that failed. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/awssink.h"

#define MAX_RECORD (1 << 20)   /* data + partition key */

static void judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call);

static const awssink_call CALL = {.what = "Failed to put record",
    .service = "Amazon Kinesis", .judge = judge};

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *stream = sink_param(j, "streamName");
	const char *pk = sink_param(j, "partitionKey");
	char uuid[37];
	snprintf(j->resource, sizeof(j->resource), "%s", stream);
	if (pk[0] == 0) {
		awssink_uuid(uuid);
		pk = uuid;
	}
	const env_slice *d = &j->env.s[ENV_RESULT];
	if (stream[0] == 0 || strlen(pk) > 256 || d->n + strlen(pk) > MAX_RECORD) {
		sink_error_message(j, CALL.what, stream[0] == 0 ? "the streamName is empty"
		    : strlen(pk) > 256 ? "the partition key is longer than 256 characters"
		    : "the record is larger than 1 MiB");
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", stream, sink_param(j, "roleArn"));
	buf_adds(&j->entry, "{\"PartitionKey\":");
	buf_add_json_str(&j->entry, pk, strlen(pk));
	buf_adds(&j->entry, ",\"Data\":\"");
	awssink_add_base64(&j->entry, d->p, d->n, NULL);
	buf_adds(&j->entry, "\"}");
	return 0;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	aws_request rq = {.service = "kinesis", .endpoint_id = "KINESIS",
	    .target = "Kinesis_20131202.PutRecords", .content_type = "application/x-amz-json-1.1",
	    .role_arn = awssink_role(jobs[0])};
	awssink_send_entries(&rq, "StreamName", sink_param(jobs[0], "streamName"), "Records", jobs, n, &CALL);
}

/* PutRecords answers 200 with one entry per record, in order: an
 * ErrorCode marks a record that was not written. */
static void
judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call)
{
	cJSON *recs = cJSON_GetObjectItemCaseSensitive(body, "Records");
	for (int i = 0; i < n; i++) {
		cJSON *e = cJSON_GetArrayItem(recs, i);
		if (e == NULL) {
			awssink_entry(jobs[i], call, r->status, "InternalFailure", "no answer for this record");
			continue;
		}
		cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "ErrorCode");
		cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "ErrorMessage");
		awssink_entry(jobs[i], call, r->status, cJSON_IsString(code) ? code->valuestring : NULL,
		    cJSON_IsString(msg) ? msg->valuestring : "");
	}
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "kinesis";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = 500;
	ops.batch_bytes = 5 << 20;
	return awssink_main(argc, argv, &ops);
}
