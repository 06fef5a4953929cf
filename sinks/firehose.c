/* iotrules-sink-firehose: the firehose action (ACTIONS.md §2.7): the result
 * as a record of a Firehose delivery stream, the separator appended after
 * it; in batchMode an array result gives one record per element (at most
 * 500).  Jobs for one stream go together in PutRecordBatch (500 records,
 * 4 MiB); each record's own answer counts, and a job whose records did not
 * all pass is retried with only the records that failed. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/awssink.h"

#define MAX_RECORD 1024000          /* bytes of data per record */
#define MAX_RECORDS 500
#define MAX_REQUEST (4 << 20)

static void judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call);

static const awssink_call CALL = {.what = "Failed to put record",
    .service = "Amazon Kinesis Firehose", .judge = judge};

/* Appends one {"Data": base64(data + sep)} record; -1 when it is too big. */
static int
add_record(sink_job *j, const char *data, size_t n, const char *sep)
{
	if (n + strlen(sep) > MAX_RECORD)
		return -1;
	if (j->entry.len)
		buf_addc(&j->entry, ',');
	buf_adds(&j->entry, "{\"Data\":\"");
	awssink_add_base64(&j->entry, data, n, sep);
	buf_adds(&j->entry, "\"}");
	j->units++;
	return 0;
}

/* The records of a job: one, or in batchMode one per element of an
 * array result.  NULL, or why the job cannot be sent. */
static const char *
records(sink_job *j, const char *sep)
{
	const env_slice *d = &j->env.s[ENV_RESULT];
	awssink_elems it;
	const char *p;
	size_t n;
	j->units = 0;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j->params, "batchMode")) || !awssink_array(d->p, d->n, &it))
		return add_record(j, d->p, d->n, sep) < 0 ? "the record is larger than 1,000 KiB" : NULL;
	while (awssink_array_next(&it, &p, &n)) {
		if (j->units == MAX_RECORDS)
			return "the batchMode array has more than 500 elements";
		if (add_record(j, p, n, sep) < 0)
			return "a record is larger than 1,000 KiB";
	}
	if (j->units == 0)
		return "the batchMode array is empty";
	return j->entry.len > MAX_REQUEST ? "the batchMode records are larger than 4 MiB" : NULL;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *stream = sink_param(j, "deliveryStreamName");
	snprintf(j->resource, sizeof(j->resource), "%s", stream);
	const char *why = stream[0] ? records(j, sink_param(j, "separator")) : "the deliveryStreamName is empty";
	if (why) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", stream, sink_param(j, "roleArn"));
	return 0;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	aws_request rq = {.service = "firehose", .endpoint_id = "FIREHOSE",
	    .target = "Firehose_20150804.PutRecordBatch", .content_type = "application/x-amz-json-1.1",
	    .role_arn = awssink_role(jobs[0])};
	awssink_send_entries(&rq, "DeliveryStreamName", sink_param(jobs[0], "deliveryStreamName"), "Records",
	    jobs, n, &CALL);
}

/* Keeps only the records of j's entry whose answers failed (the entry is
 * ours again while the job is in flight), so a retry resends just those.
 * Records are {"Data":"<base64>"}: no '}' inside one. */
static void
keep_failed(sink_job *j, const int *failed)
{
	buf keep = BUF_ZERO;
	const char *p = j->entry.data, *end = p + j->entry.len;
	int kept = 0;
	for (int k = 0; k < j->units && p < end; k++) {
		const char *e = memchr(p, '}', (size_t)(end - p)) + 1;
		if (failed[k]) {
			if (kept++)
				buf_addc(&keep, ',');
			buf_add(&keep, p, (size_t)(e - p));
		}
		p = e + 1;   /* past the ',' */
	}
	buf_free(&j->entry);
	j->entry = keep;
	j->units = kept;
}

/* PutRecordBatch answers 200 with one RequestResponses entry per record,
 * in order; an ErrorCode marks a record that was not written.  A job is
 * OK when all its records are; otherwise it takes the verdict of its
 * first failed record. */
static void
judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call)
{
	cJSON *resp = cJSON_GetObjectItemCaseSensitive(body, "RequestResponses");
	cJSON *e = resp ? resp->child : NULL;
	int all_ok = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(body, "FailedPutCount")) == 0 && resp;
	for (int i = 0; i < n; i++) {
		sink_job *j = jobs[i];
		int failed[MAX_RECORDS] = {0}, nfail = 0;
		const char *code = NULL, *msg = "";
		for (int k = 0; k < j->units; k++, e = e ? e->next : NULL) {
			cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "ErrorCode");
			const char *ec = e == NULL ? "InternalFailure" : cJSON_IsString(c) ? c->valuestring : NULL;
			if (all_ok || ec == NULL || ec[0] == 0)
				continue;
			failed[k] = 1;
			if (nfail++ == 0) {
				cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "ErrorMessage");
				code = ec;
				msg = cJSON_IsString(m) ? m->valuestring : e ? "" : "no answer for this record";
			}
		}
		if (nfail && nfail < j->units)
			keep_failed(j, failed);
		awssink_entry(j, call, r->status, code, msg);
	}
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "firehose";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = MAX_RECORDS;
	ops.batch_bytes = MAX_REQUEST;
	return awssink_main(argc, argv, &ops);
}
