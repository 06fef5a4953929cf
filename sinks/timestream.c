/* iotrules-sink-timestream: the timestream action (ACTIONS.md §2.22): one
 * Timestream record per attribute of the result (sinks/lib/tsrecord), the
 * timestamp parameter (or the time the message came in) as Time/TimeUnit.
 *
 * Jobs for one table go together in WriteRecords (100 records: a job
 * counts its records as units).  Timestream answers a request with
 * rejected records 400 RejectedRecordsException, their RecordIndex listed
 * (the others are written): a job with a rejected record fails for good,
 * the others are done.  The records' address comes from DescribeEndpoints
 * (sinks/lib/awsdisco) unless an endpoint is configured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sinks/lib/awsdisco.h"
#include "sinks/lib/awssink.h"
#include "sinks/lib/entrylist.h"
#include "sinks/lib/ruletime.h"
#include "sinks/lib/tsrecord.h"

static int judge_rejected(sink_job **jobs, int n, const aws_response *r, const awssink_call *call);
static void send_discovered(const aws_request *rq, aws_done_fn done, void *arg);

static const awssink_call CALL = {.what = "Failed to write records to Amazon Timestream",
    .service = "Amazon Timestream", .judge_error = judge_rejected, .send = send_discovered};
static const awsdisco_service DISCO = {"timestream", "TIMESTREAM_WRITE", "ingest.timestream.{region}.amazonaws.com",
    "Timestream_20181101.DescribeEndpoints", "application/x-amz-json-1.0"};

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *db = sink_param(j, "databaseName"), *table = sink_param(j, "tableName"), *bad;
	const env_slice *d = &j->env.s[ENV_RESULT];
	char why[300] = "";
	buf dims = BUF_ZERO;
	ruletime t;
	snprintf(j->resource, sizeof(j->resource), "%s/%s", db, table);
	if (db[0] == 0 || table[0] == 0)
		snprintf(why, sizeof(why), "the databaseName or tableName is empty");
	else if ((bad = ruletime_get(j, "timestamp", &t)))
		snprintf(why, sizeof(why), "%s", bad);
	else if (tsrecord_dimensions(&dims, cJSON_GetObjectItemCaseSensitive(j->params, "dimensions"), why, sizeof(why)) == 0)
		j->units = tsrecord_build(&j->entry, d->p, d->n, &dims, t.value, t.unit, why, sizeof(why));
	buf_free(&dims);
	if (why[0]) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s\n%s", db, table, sink_param(j, "roleArn"));
	return 0;
}

/* A RejectedRecordsException: the jobs whose records are listed fail
 * for good, the others were written.  1, or 0 when it is another error
 * or none is listed (all fail as usual). */
static int
judge_rejected(sink_job **jobs, int n, const aws_response *r, const awssink_call *call)
{
	if (strcmp(r->error_code, "RejectedRecordsException") != 0)
		return 0;
	cJSON *doc = cJSON_ParseWithLength(r->body, r->body_len), *e;
	struct rejected { int first, count; const char *reason; } *rj = calloc((size_t)n, sizeof(*rj));
	int listed = 0;
	if (rj == NULL)
		log_die(111, "out of memory");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "RejectedRecords")) {
		int idx = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "RecordIndex")), k = 0;
		while (k < n && idx >= jobs[k]->units)   /* records are in job order */
			idx -= jobs[k++]->units;
		if (k == n || idx < 0)
			continue;
		if (rj[k].count++ == 0)
			rj[k] = (struct rejected){idx, 1, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "Reason"))};
		listed++;
	}
	for (int k = 0; k < n && listed; k++) {
		char msg[600];
		snprintf(msg, sizeof(msg), "record %d of %d of this message rejected: %s%s", rj[k].first + 1,
		    jobs[k]->units, rj[k].reason ? rj[k].reason : "(no reason)", rj[k].count > 1 ? " (and more)" : "");
		if (rj[k].count)
			awssink_entry(jobs[k], call, r->status, "RejectedRecordsException", msg);
		else
			sink_job_done(jobs[k], SINK_OK);
	}
	free(rj);
	cJSON_Delete(doc);
	return listed > 0;
}

/* WriteRecords goes to the discovered endpoint. */
static void
send_discovered(const aws_request *rq, aws_done_fn done, void *arg)
{
	awsdisco_send(&DISCO, rq, done, arg);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	const char *db = sink_param(jobs[0], "databaseName"), *table = sink_param(jobs[0], "tableName");
	buf body = BUF_ZERO;
	buf_adds(&body, "{\"DatabaseName\":");
	buf_add_json_str(&body, db, strlen(db));
	buf_adds(&body, ",\"TableName\":");
	buf_add_json_str(&body, table, strlen(table));
	buf_adds(&body, ",\"Records\":");
	entrylist_add(&body, jobs, n);
	buf_addc(&body, '}');
	aws_request rq = {.service = "timestream", .endpoint_id = "TIMESTREAM_WRITE",
	    .target = "Timestream_20181101.WriteRecords", .content_type = "application/x-amz-json-1.0",
	    .body = body.data, .body_len = body.len, .role_arn = awssink_role(jobs[0])};
	awssink_send(&rq, jobs, n, &CALL);
	buf_free(&body);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = TSRECORD_MAX;
	return awssink_main(argc, argv, &ops);
}
