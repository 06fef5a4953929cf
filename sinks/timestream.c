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

static const awssink_call CALL = {"Failed to write records to Amazon Timestream", "Amazon Timestream", NULL};
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

typedef struct batch {
	int n;
	sink_job *jobs[];
} batch;

/* A RejectedRecordsException: the jobs whose records are listed fail
 * for good, the others were written.  0, or -1 when none is listed. */
static int
judge_rejected(batch *b, const aws_response *r)
{
	cJSON *doc = cJSON_ParseWithLength(r->body, r->body_len), *e;
	struct rejected { int first, count; const char *reason; } *rj = calloc((size_t)b->n, sizeof(*rj));
	int listed = 0;
	if (rj == NULL)
		log_die(111, "out of memory");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "RejectedRecords")) {
		int idx = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "RecordIndex")), k = 0;
		while (k < b->n && idx >= b->jobs[k]->units)   /* records are in job order */
			idx -= b->jobs[k++]->units;
		if (k == b->n || idx < 0)
			continue;
		if (rj[k].count++ == 0)
			rj[k] = (struct rejected){idx, 1, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "Reason"))};
		listed++;
	}
	for (int k = 0; k < b->n && listed; k++) {
		char msg[600];
		snprintf(msg, sizeof(msg), "record %d of %d of this message rejected: %s%s", rj[k].first + 1,
		    b->jobs[k]->units, rj[k].reason ? rj[k].reason : "(no reason)", rj[k].count > 1 ? " (and more)" : "");
		if (rj[k].count)
			awssink_entry(b->jobs[k], &CALL, r->status, "RejectedRecordsException", msg);
		else
			sink_job_done(b->jobs[k], SINK_OK);
	}
	free(rj);
	cJSON_Delete(doc);
	return listed ? 0 : -1;
}

static void
on_answer(void *arg, const aws_response *r)
{
	batch *b = arg;
	if (r->verdict == AWS_OK) {
		for (int i = 0; i < b->n; i++)
			sink_job_done(b->jobs[i], SINK_OK);
	} else if (strcmp(r->error_code, "RejectedRecordsException") != 0 || judge_rejected(b, r) < 0) {
		awssink_fail_all(b->jobs, b->n, r, &CALL);
	}
	free(b);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	batch *b = malloc(sizeof(*b) + (size_t)n * sizeof(sink_job *));
	if (b == NULL)
		log_die(111, "out of memory");
	b->n = n;
	memcpy(b->jobs, jobs, (size_t)n * sizeof(sink_job *));
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
	awsdisco_send(&DISCO, &rq, on_answer, b);
	buf_free(&body);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "timestream";
	ops.failed_action = "TimestreamAction";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = TSRECORD_MAX;
	return awssink_main(argc, argv, &ops);
}
