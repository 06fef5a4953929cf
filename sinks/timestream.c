/* iotrules-sink-timestream: the timestream action (ACTIONS.md §2.22): one
 * Timestream record per top-level attribute of the result (null ones
 * skipped), with every configured dimension (VARCHAR), the attribute's
 * name as MeasureName, its value as text, MeasureValueType from the JSON
 * (true/false BOOLEAN, a whole number BIGINT, another number DOUBLE, a
 * string VARCHAR, an object or array VARCHAR holding its compact JSON),
 * and the timestamp parameter (or the time the message came in) as
 * Time/TimeUnit.
 *
 * Jobs for one table go together in WriteRecords (100 records: a job
 * counts its records as units).  Timestream answers a request with
 * rejected records 400 RejectedRecordsException, their RecordIndex listed
 * (the others are written): a job with a rejected record fails for good,
 * the others are done.  The records' address comes from DescribeEndpoints
 * (sinks/lib/awsdisco) unless an endpoint is configured. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sinks/lib/awsdisco.h"
#include "sinks/lib/awssink.h"
#include "sinks/lib/ddbjson.h"
#include "sinks/lib/entrylist.h"
#include "sinks/lib/ruletime.h"

#define MAX_RECORDS 100
#define MAX_VALUE 2048

static const awssink_call CALL = {"Failed to write records to Amazon Timestream", "Amazon Timestream", NULL};
static const awsdisco_service DISCO = {"timestream", "TIMESTREAM_WRITE", "ingest.timestream.{region}.amazonaws.com",
    "Timestream_20181101.DescribeEndpoints", "application/x-amz-json-1.0"};

/* The Dimensions array every record of the job carries; 0, or -1 (why). */
static int
dimensions(const sink_job *j, buf *out, char *why, size_t cap)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j->params, "dimensions"), *e;
	if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) < 1 || cJSON_GetArraySize(d) > 128)
		return snprintf(why, cap, "dimensions must hold 1 to 128 entries"), -1;
	buf_addc(out, '[');
	cJSON_ArrayForEach(e, d) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
		if (n == NULL || v == NULL || n[0] == 0)
			return snprintf(why, cap, "a dimension has no name or no value"), -1;
		if (!strcmp(n, "measure_name") || !strcmp(n, "measure_value") || !strcmp(n, "time") ||
		    !strncmp(n, "ts_", 3) || !strncmp(n, "measure_value", 13) || strchr(n, ':'))
			return snprintf(why, cap, "the dimension name %.200s is reserved or holds ':'", n), -1;
		buf_adds(out, out->data[out->len - 1] == '[' ? "{\"Name\":" : ",{\"Name\":");
		buf_add_json_str(out, n, strlen(n));
		buf_adds(out, ",\"Value\":");
		buf_add_json_str(out, v, strlen(v));
		buf_adds(out, ",\"DimensionValueType\":\"VARCHAR\"}");
	}
	buf_addc(out, ']');
	return 0;
}

/* An attribute's value (DynamoDB form: numbers keep their text) as
 * MeasureValue text and type; NULL type for null (skipped). */
static const char *
measure(const cJSON *a, buf *text)
{
	const cJSON *v = a->child;
	const char *k = v ? v->string : "NULL";
	if (!strcmp(k, "S") || !strcmp(k, "N")) {
		buf_adds(text, v->valuestring);
		if (k[0] == 'S')
			return "VARCHAR";
		errno = 0;
		char *end;
		strtoll(v->valuestring, &end, 10);
		return *end == 0 && errno == 0 ? "BIGINT" : "DOUBLE";
	}
	if (!strcmp(k, "BOOL")) {
		buf_adds(text, cJSON_IsTrue(v) ? "true" : "false");
		return "BOOLEAN";
	}
	if (!strcmp(k, "M") || !strcmp(k, "L")) {
		char *ddb = cJSON_PrintUnformatted(a);
		int e = ddb ? ddbjson_to_json(text, ddb, strlen(ddb)) : -1;
		cJSON_free(ddb);
		return e == 0 ? "VARCHAR" : NULL;
	}
	return NULL;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *db = sink_param(j, "databaseName"), *table = sink_param(j, "tableName"), *unit;
	char why[300] = "";
	buf dims = BUF_ZERO, item = BUF_ZERO, text = BUF_ZERO;
	ruletime t;
	snprintf(j->resource, sizeof(j->resource), "%s/%s", db, table);
	const env_slice *d = &j->env.s[ENV_RESULT];
	cJSON *attrs = NULL, *a;
	j->units = 0;
	if (db[0] == 0 || table[0] == 0)
		snprintf(why, sizeof(why), "the databaseName or tableName is empty");
	else if ((unit = ruletime_get(j, "timestamp", &t)))
		snprintf(why, sizeof(why), "%s", unit);
	else if (dimensions(j, &dims, why, sizeof(why)) == 0 && (ddbjson_item_from_json(&item, d->p, d->n) != 0 ||
	    (attrs = cJSON_ParseWithLength(item.data, item.len)) == NULL))
		snprintf(why, sizeof(why), "the result is not a JSON object");
	cJSON *list = why[0] ? NULL : attrs;
	cJSON_ArrayForEach(a, list) {
		buf_reset(&text);
		const char *type = measure(a, &text);
		if (type == NULL)
			continue;
		if (++j->units > MAX_RECORDS || a->string[0] == 0 || text.len == 0 || text.len > MAX_VALUE) {
			snprintf(why, sizeof(why), j->units > MAX_RECORDS ? "the result has more than 100 attributes"
			    : "the attribute \"%.200s\" has an empty name, or a value empty or longer than 2048", a->string);
			break;
		}
		buf_adds(&j->entry, j->units > 1 ? ",{\"Dimensions\":" : "{\"Dimensions\":");
		buf_add(&j->entry, dims.data, dims.len);
		buf_adds(&j->entry, ",\"MeasureName\":");
		buf_add_json_str(&j->entry, a->string, strlen(a->string));
		buf_adds(&j->entry, ",\"MeasureValue\":");
		buf_add_json_str(&j->entry, text.data, text.len);
		buf_printf(&j->entry, ",\"MeasureValueType\":\"%s\",\"Time\":\"%s\",\"TimeUnit\":\"%s\"}", type, t.value, t.unit);
	}
	if (why[0] == 0 && j->units == 0)
		snprintf(why, sizeof(why), "the result has no attribute to write (null ones are skipped)");
	cJSON_Delete(attrs);
	buf_free(&dims);
	buf_free(&item);
	buf_free(&text);
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
	int *first = calloc((size_t)b->n, sizeof(int)), *count = calloc((size_t)b->n, sizeof(int)), listed = 0;
	const char **reason = calloc((size_t)b->n, sizeof(char *));
	if (first == NULL || count == NULL || reason == NULL)
		log_die(111, "out of memory");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "RejectedRecords")) {
		int idx = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "RecordIndex")), k = 0;
		while (k < b->n && idx >= b->jobs[k]->units)
			idx -= b->jobs[k++]->units;
		if (k == b->n || idx < 0)
			continue;
		listed++;
		if (count[k]++ == 0) {
			first[k] = idx;
			reason[k] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "Reason"));
		}
	}
	for (int k = 0; k < b->n && listed; k++) {
		char msg[600];
		snprintf(msg, sizeof(msg), "record %d of %d of this message rejected: %s%s", first[k] + 1, b->jobs[k]->units,
		    reason[k] ? reason[k] : "(no reason)", count[k] > 1 ? " (and more of its records)" : "");
		if (count[k])
			awssink_entry(b->jobs[k], &CALL, r->status, "RejectedRecordsException", msg);
		else
			sink_job_done(b->jobs[k], SINK_OK);
	}
	free(first);
	free(count);
	free(reason);
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
	ops.batch_max = MAX_RECORDS;
	return awssink_main(argc, argv, &ops);
}
