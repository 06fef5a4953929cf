#include "sinks/lib/ddbsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define TARGET "DynamoDB_20120810."
#define MAX_WRITES 25                         /* BatchWriteItem */
#define BATCH_BYTES ((16 << 20) - (64 << 10)) /* 16 MB a request, room for the wrapping */

static const awssink_call CALL = {.what = "Failed to write the item", .service = "Amazon DynamoDB"};

/* A job's entry: <op><key>\n<rest>.  op 'P': rest is the item; 'D': rest
 * is empty; 'U': rest is the UpdateItem members after Key.  key is empty
 * when not known. */
typedef struct ddb_write {
	char op;
	const char *key, *rest;
	size_t keylen, restlen;
} ddb_write;

static ddb_write
write_of(const sink_job *j)
{
	const char *e = j->entry.data, *nl = memchr(e, '\n', j->entry.len);
	return (ddb_write){e[0], e + 1, nl + 1, (size_t)(nl - e - 1), (size_t)(e + j->entry.len - nl - 1)};
}

int
ddbsink_refuse(sink_job *j, const char *table, const char *why)
{
	snprintf(j->resource, sizeof(j->resource), "%s", table);
	sink_error_message(j, CALL.what, why);
	return -1;
}

static int
set_entry(sink_job *j, char op, const char *table, const buf *key, const char *rest, size_t restlen)
{
	if (table[0] == 0)
		return ddbsink_refuse(j, table, "the tableName is empty");
	snprintf(j->resource, sizeof(j->resource), "%s", table);
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", table, sink_param(j, "roleArn"));
	buf_addc(&j->entry, op);
	if (key)
		buf_add(&j->entry, key->data, key->len);
	buf_addc(&j->entry, '\n');
	buf_add(&j->entry, rest, restlen);
	if (j->entry.len > BATCH_BYTES)
		return ddbsink_refuse(j, table, "the item is larger than a DynamoDB request can be (16 MB)");
	return 0;
}

int
ddbsink_put(sink_job *j, const char *table, const buf *key, const buf *item)
{
	return set_entry(j, 'P', table, key, item->data, item->len);
}

int
ddbsink_delete(sink_job *j, const char *table, const buf *key)
{
	return set_entry(j, 'D', table, key, "", 0);
}

int
ddbsink_update(sink_job *j, const char *table, const buf *key, const char *field, const buf *value)
{
	buf rest = BUF_ZERO;
	buf_adds(&rest, ",\"UpdateExpression\":\"SET #p = :v\",\"ExpressionAttributeNames\":{\"#p\":");
	buf_add_json_str(&rest, field, strlen(field));
	buf_adds(&rest, "},\"ExpressionAttributeValues\":{\":v\":");
	buf_add(&rest, value->data, value->len);
	buf_addc(&rest, '}');
	int r = set_entry(j, 'U', table, key, rest.data, rest.len);
	buf_free(&rest);
	j->solo = 1;
	return r;
}

/* ---- sending ------------------------------------------------------------------ */

/* A BatchWriteItem in flight: its jobs, and for each the job whose write
 * stands for it (itself, or a later write to the same key). */
typedef struct ddb_batch {
	char table[256];
	int n;
	int stand[MAX_WRITES];
	sink_job *jobs[MAX_WRITES];
} ddb_batch;

static void
request(aws_request *rq, const char *op, const buf *body, const sink_job *j)
{
	*rq = (aws_request){.service = "dynamodb", .endpoint_id = "DYNAMODB", .target = op,
	    .content_type = "application/x-amz-json-1.0", .body = body->data, .body_len = body->len,
	    .role_arn = awssink_role(j)};
}

/* Sends the write of job w alone (PutItem, DeleteItem, UpdateItem) for
 * the n jobs it stands for (w among them); each completes with its answer. */
static void
send_alone(const char *table, sink_job *w, sink_job **jobs, int n)
{
	ddb_write x = write_of(w);
	buf b = BUF_ZERO;
	buf_adds(&b, "{\"TableName\":");
	buf_add_json_str(&b, table, strlen(table));
	if (x.op == 'P') {
		buf_adds(&b, ",\"Item\":");
		buf_add(&b, x.rest, x.restlen);
	} else {
		buf_adds(&b, ",\"Key\":");
		buf_add(&b, x.key, x.keylen);
		buf_add(&b, x.rest, x.restlen);
	}
	buf_addc(&b, '}');
	aws_request rq;
	request(&rq, x.op == 'P' ? TARGET "PutItem" : x.op == 'D' ? TARGET "DeleteItem" : TARGET "UpdateItem", &b, w);
	awssink_send(&rq, jobs, n, &CALL);
	buf_free(&b);
}

/* Each write of bt sent alone, with the jobs it stands for. */
static void
send_each_alone(ddb_batch *bt)
{
	for (int s = 0; s < bt->n; s++) {
		if (bt->stand[s] != s)
			continue;
		sink_job *group[MAX_WRITES];
		int k = 0;
		for (int i = 0; i < bt->n; i++)
			if (bt->stand[i] == s)
				group[k++] = bt->jobs[i];
		send_alone(bt->table, bt->jobs[s], group, k);
	}
}

/* The write of bt that an UnprocessedItems entry is (the same item to
 * put, or the same key to delete); -1 if none.  parsed caches the
 * writes' JSON. */
static int
match(ddb_batch *bt, const cJSON *e, cJSON **parsed)
{
	const cJSON *put = cJSON_GetObjectItemCaseSensitive(e, "PutRequest");
	const cJSON *want = put ? cJSON_GetObjectItemCaseSensitive(put, "Item")
	    : cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "DeleteRequest"), "Key");
	for (int s = 0; want && s < bt->n; s++) {
		ddb_write x = write_of(bt->jobs[s]);
		if (bt->stand[s] != s || x.op != (put ? 'P' : 'D'))
			continue;
		if (parsed[s] == NULL)
			parsed[s] = put ? cJSON_ParseWithLength(x.rest, x.restlen) : cJSON_ParseWithLength(x.key, x.keylen);
		if (cJSON_Compare(parsed[s], want, 1))
			return s;
	}
	return -1;
}

/* A 200 answer: the writes in UnprocessedItems are retried, the others
 * are done.  An entry that matches no write (or an answer that is not
 * JSON) retries them all: writing an item twice leaves the same table,
 * losing one would not. */
static void
judge(ddb_batch *bt, const aws_response *r)
{
	cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
	cJSON *un = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "UnprocessedItems"), bt->table);
	cJSON *parsed[MAX_WRITES] = {0}, *e;
	int again[MAX_WRITES] = {0}, all = body == NULL;
	cJSON_ArrayForEach(e, un) {
		int s = match(bt, e, parsed);
		if (s < 0)
			all = 1;
		else
			again[s] = 1;
	}
	for (int i = 0; i < bt->n; i++) {
		cJSON_Delete(parsed[i]);
		awssink_entry(bt->jobs[i], &CALL, r->status, all || again[bt->stand[i]] ? "ProvisionedThroughputExceededException" : NULL,
		    all ? "the answer did not say which items were written" : "the item was returned in UnprocessedItems");
	}
	cJSON_Delete(body);
}

/* An error answer: every job gets it, as awssink_send reports one. */
static void
on_batch(void *arg, const aws_response *r)
{
	ddb_batch *bt = arg;
	if (r->verdict == AWS_OK)
		judge(bt, r);
	else if (r->status == 400 && strcmp(r->error_code, "ValidationException") == 0)
		send_each_alone(bt);
	else
		awssink_fail_all(bt->jobs, bt->n, r, &CALL);
	free(bt);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	ddb_batch *bt = calloc(1, sizeof(*bt));
	if (bt == NULL)
		log_die(111, "out of memory");
	if (n > MAX_WRITES)   /* the runtime cuts at ops->batch_max */
		log_die(111, "ddbsink: a batch of %d writes", n);
	const char *nl = strchr(jobs[0]->dest, '\n');
	snprintf(bt->table, sizeof(bt->table), "%.*s", (int)(nl - jobs[0]->dest), jobs[0]->dest);
	bt->n = n;
	int writes = 0, last = 0;
	for (int i = 0; i < n; i++) {
		bt->jobs[i] = jobs[i];
		bt->stand[i] = i;
		ddb_write x = write_of(jobs[i]);
		for (int k = n - 1; k > i && x.keylen; k--) {
			ddb_write y = write_of(jobs[k]);
			if (y.keylen == x.keylen && memcmp(y.key, x.key, x.keylen) == 0) {
				bt->stand[i] = k;
				break;
			}
		}
		if (bt->stand[i] == i)
			writes++, last = i;
	}
	if (writes == 1) {
		send_alone(bt->table, jobs[last], jobs, n);
		free(bt);
		return;
	}
	buf b = BUF_ZERO;
	buf_adds(&b, "{\"RequestItems\":{");
	buf_add_json_str(&b, bt->table, strlen(bt->table));
	buf_adds(&b, ":[");
	for (int i = 0, first = 1; i < n; i++) {
		if (bt->stand[i] != i)
			continue;
		ddb_write x = write_of(jobs[i]);
		buf_adds(&b, first ? "" : ",");
		buf_adds(&b, x.op == 'P' ? "{\"PutRequest\":{\"Item\":" : "{\"DeleteRequest\":{\"Key\":");
		buf_add(&b, x.op == 'P' ? x.rest : x.key, x.op == 'P' ? x.restlen : x.keylen);
		buf_adds(&b, "}}");
		first = 0;
	}
	buf_adds(&b, "]}}");
	aws_request rq;
	request(&rq, TARGET "BatchWriteItem", &b, jobs[0]);
	aws_send(awssink_client(), &rq, on_batch, bt);
	buf_free(&b);
}

int
ddbsink_main(int argc, char **argv, const char *action,
    int (*prepare)(void *state, sink_job *j))
{
	sink_ops ops = {.action = action, .prepare = prepare, .send = send_jobs,
	    .batch_max = MAX_WRITES, .batch_bytes = BATCH_BYTES};
	return awssink_main(argc, argv, &ops);
}
