#include "evaluate/lib/sqlaws.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/aws.h"
#include "common/log.h"
#include "common/proc.h"
#include "sinks/lib/ddbjson.h"

#define CALL_TIMEOUT_MS 2000
#define REOPEN_MS 10000

static struct {
	pthread_mutex_t mu;
	aws_client *client;
	int64_t reopen_ms;    /* after a failed open: not before this */
	char why[512];        /* why it failed */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The client, opened on first use; NULL with err set when it cannot. */
static aws_client *
client(char *err, size_t errcap)
{
	pthread_mutex_lock(&S.mu);
	if (S.client == NULL && proc_now_ms() >= S.reopen_ms) {
		aws_client_opts o = {.timeout_ms = CALL_TIMEOUT_MS};
		S.client = aws_client_open(&o, S.why, sizeof(S.why));
		if (S.client == NULL) {
			S.reopen_ms = proc_now_ms() + REOPEN_MS;
			log_error("SQL functions: the AWS client cannot open: %s", S.why);
		}
	}
	aws_client *c = S.client;
	if (c == NULL)
		snprintf(err, errcap, "the AWS client cannot open: %s", S.why);
	pthread_mutex_unlock(&S.mu);
	return c;
}

/* Sends rq and waits; 0 with the answer in r (the caller frees it), or -1
 * with err naming what failed and the service's code and message. */
static int
call(const aws_request *rq, const char *what, aws_response *r, char *err, size_t errcap)
{
	aws_client *c = client(err, errcap);
	if (c == NULL)
		return -1;
	aws_call(c, rq, r);
	if (r->verdict == AWS_OK)
		return 0;
	if (r->status == 0)
		snprintf(err, errcap, "%s: no answer: %s", what, r->error_message);
	else
		snprintf(err, errcap, "%s: %s (Status Code: %ld; Error Code: %s)", what,
		    r->error_message[0] ? r->error_message : "(no message)", r->status,
		    r->error_code[0] ? r->error_code : "none");
	aws_response_free(r);
	return -1;
}

static int
get_item(const char *table, const char *key, const char *role_arn, buf *out, char *err, size_t errcap)
{
	buf body = BUF_ZERO;
	buf_adds(&body, "{\"TableName\":");
	buf_add_json_str(&body, table, strlen(table));
	buf_printf(&body, ",\"Key\":%s}", key);
	aws_request rq = {.service = "dynamodb", .endpoint_id = "DYNAMODB",
	    .target = "DynamoDB_20120810.GetItem", .content_type = "application/x-amz-json-1.0",
	    .body = body.data, .body_len = body.len, .role_arn = role_arn};
	aws_response r;
	int rc = call(&rq, "DynamoDB GetItem failed", &r, err, errcap);
	buf_free(&body);
	if (rc < 0)
		return -1;
	cJSON *doc = cJSON_ParseWithLength(r.body, r.body_len);
	cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, "Item");
	char *text = cJSON_IsObject(item) ? cJSON_PrintUnformatted(item) : NULL;
	int conv = text ? ddbjson_item_to_json(out, text, strlen(text)) : DDBJSON_OK;
	if (text == NULL)
		snprintf(err, errcap, "table %s has no item with the key %s", table, key);
	else if (conv != DDBJSON_OK)
		snprintf(err, errcap, "the item of table %s cannot be read: %s", table, ddbjson_strerror(conv));
	cJSON_free(text);
	cJSON_Delete(doc);
	aws_response_free(&r);
	return text && conv == DDBJSON_OK ? 0 : -1;
}

static int
invoke(const char *function, const void *payload, size_t n, const char *role_arn, buf *out, char *err,
    size_t errcap)
{
	aws_lambda_target t;
	if (aws_lambda_target_parse(function, &t) < 0) {
		snprintf(err, errcap, "%s is not a Lambda function name or ARN", function);
		return -1;
	}
	aws_request rq = {.service = "lambda", .endpoint_id = "LAMBDA", .region = t.region,
	    .path = t.path, .query = t.query[0] ? t.query : NULL, .content_type = "application/json",
	    .headers = {"X-Amz-Invocation-Type: RequestResponse"}, .body = payload, .body_len = n,
	    .role_arn = role_arn};
	aws_response r;
	if (call(&rq, "Lambda Invoke failed", &r, err, errcap) < 0)
		return -1;
	if (r.body_len)
		buf_add(out, r.body, r.body_len);
	else
		buf_adds(out, "null");
	aws_response_free(&r);
	return 0;
}

static const sql_external HOST = {get_item, invoke};

const sql_external *
sqlaws_external(void)
{
	return &HOST;
}

void
sqlaws_close(void)
{
	pthread_mutex_lock(&S.mu);
	aws_client *c = S.client;
	S.client = NULL;
	S.reopen_ms = INT64_MAX;
	pthread_mutex_unlock(&S.mu);
	if (c)
		aws_client_close(c);
}
