#include "evaluate/lib/sqlaws.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/aws.h"
#include "common/awsconf.h"
#include "common/log.h"
#include "common/proc.h"
#include "sinks/lib/ddbjson.h"

#define CALL_TIMEOUT_MS 2000
#define REOPEN_MS 10000
#define SECRET_TTL_MS (15 * 60 * 1000)   /* AWS IoT caches a secret up to 15 min */
#define SECRET_SLOTS 64

/* The endpoints get_thing_shadow and get_registry_data need configured. */
enum { EP_IOT_DATA, EP_IOT, EP_N };
static const char *const EP_ID[EP_N] = {"IOT_DATA_PLANE", "IOT"};

static struct {
	pthread_mutex_t mu;
	aws_client *client;
	int64_t reopen_ms;    /* after a failed open: not before this */
	char why[512];        /* why it failed */
	int assume_role;
	int ep_checked[EP_N], ep_set[EP_N];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Cached secrets: what GetSecretValue answered for (roleArn, secretId). */
typedef struct secret {
	char *key;            /* roleArn "\n" secretId; NULL: a free slot */
	char *string, *binary;
	int64_t until_ms;
} secret;

static struct {
	pthread_mutex_t mu;
	secret slot[SECRET_SLOTS];
} C = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The client, opened on first use; NULL with err set when it cannot. */
static aws_client *
client(char *err, size_t errcap)
{
	pthread_mutex_lock(&S.mu);
	if (S.client == NULL && proc_now_ms() >= S.reopen_ms) {
		aws_client_opts o = {.timeout_ms = CALL_TIMEOUT_MS, .assume_role = S.assume_role};
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

/* ---- get_secret ---- */

static void
secret_clear(secret *s)
{
	free(s->key);
	free(s->string);
	free(s->binary);
	memset(s, 0, sizeof(*s));
}

int
sqlaws_secret_pick(const char *string, const char *binary, int want_binary, const char *key, buf *out,
    char *err, size_t errcap)
{
	if (want_binary || key == NULL) {
		const char *v = want_binary ? binary : string;
		if (v == NULL) {
			snprintf(err, errcap, "the secret has no %s (it holds a %s)", want_binary ? "SecretBinary" : "SecretString",
			    want_binary ? "SecretString" : "SecretBinary");
			return -1;
		}
		buf_add_json_str(out, v, strlen(v));
		return 0;
	}
	if (string == NULL) {
		snprintf(err, errcap, "the secret has no SecretString (it holds a SecretBinary), so no key %s", key);
		return -1;
	}
	cJSON *doc = cJSON_Parse(string);
	const cJSON *v = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, key) : NULL;
	char *text = v ? cJSON_PrintUnformatted(v) : NULL;
	if (text)
		buf_adds(out, text);
	else if (!cJSON_IsObject(doc))
		snprintf(err, errcap, "the SecretString is not a JSON object, so it has no key %s", key);
	else if (v == NULL)
		snprintf(err, errcap, "the SecretString has no key %s", key);
	else
		snprintf(err, errcap, "out of memory");
	cJSON_free(text);
	cJSON_Delete(doc);
	return text ? 0 : -1;
}

/* Picks from the cached secret of key: 1 found (0 or -1 in *rc, as
 * sqlaws_secret_pick), 0 not cached. */
static int
secret_cached(const char *key, int binary, const char *member, buf *out, int *rc, char *err, size_t errcap)
{
	int found = 0;
	int64_t now = proc_now_ms();
	pthread_mutex_lock(&C.mu);
	for (int i = 0; i < SECRET_SLOTS && !found; i++) {
		secret *s = &C.slot[i];
		if (s->key && now >= s->until_ms)
			secret_clear(s);
		else if (s->key && strcmp(s->key, key) == 0) {
			*rc = sqlaws_secret_pick(s->string, s->binary, binary, member, out, err, errcap);
			found = 1;
		}
	}
	pthread_mutex_unlock(&C.mu);
	return found;
}

/* Keeps a secret (string/binary: malloc'd, taken over) in a free slot,
 * else in place of the one that expires first. */
static void
secret_keep(const char *key, char *string, char *binary)
{
	pthread_mutex_lock(&C.mu);
	secret *victim = &C.slot[0];
	for (int i = 0; i < SECRET_SLOTS; i++) {
		secret *s = &C.slot[i];
		if (s->key && strcmp(s->key, key) == 0) {   /* fetched twice at once */
			victim = s;
			break;
		}
		if (victim->key && (s->key == NULL || s->until_ms < victim->until_ms))
			victim = s;
	}
	secret_clear(victim);
	victim->key = strdup(key);
	victim->string = string;
	victim->binary = binary;
	victim->until_ms = proc_now_ms() + SECRET_TTL_MS;
	if (victim->key == NULL)
		secret_clear(victim);
	pthread_mutex_unlock(&C.mu);
}

/* A string member of doc, copied; NULL when absent. */
static char *
dup_member(const cJSON *doc, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
	return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static int
get_secret(const char *id, int binary, const char *member, const char *role_arn, buf *out, char *err,
    size_t errcap)
{
	char region[64] = "", why[400] = "";
	buf key = BUF_ZERO;
	buf_printf(&key, "%s\n%s", role_arn ? role_arn : "", id);
	int rc = -1;
	if (secret_cached(key.data, binary, member, out, &rc, why, sizeof(why))) {
		if (rc < 0)
			snprintf(err, errcap, "secret %s: %s", id, why);
		buf_free(&key);
		return rc;
	}
	buf body = BUF_ZERO;
	buf_adds(&body, "{\"SecretId\":");
	buf_add_json_str(&body, id, strlen(id));
	buf_addc(&body, '}');
	/* A secret's ARN names its region; a name is in the client's. */
	aws_arn_region(id, region, sizeof(region));
	aws_request rq = {.service = "secretsmanager", .endpoint_id = "SECRETS_MANAGER", .region = region,
	    .target = "secretsmanager.GetSecretValue", .content_type = "application/x-amz-json-1.1",
	    .body = body.data, .body_len = body.len, .role_arn = role_arn};
	aws_response r;
	rc = call(&rq, "Secrets Manager GetSecretValue failed", &r, err, errcap);
	buf_free(&body);
	if (rc < 0) {
		buf_free(&key);
		return -1;
	}
	cJSON *doc = cJSON_ParseWithLength(r.body, r.body_len);
	char *string = dup_member(doc, "SecretString"), *bin = dup_member(doc, "SecretBinary");
	aws_response_free(&r);
	cJSON_Delete(doc);
	if (string == NULL && bin == NULL) {
		snprintf(err, errcap, "secret %s: the answer holds neither SecretString nor SecretBinary", id);
		buf_free(&key);
		return -1;
	}
	rc = sqlaws_secret_pick(string, bin, binary, member, out, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errcap, "secret %s: %s", id, why);
	secret_keep(key.data, string, bin);
	buf_free(&key);
	return rc;
}

/* ---- get_thing_shadow, get_registry_data ---- */

/* 1 if an endpoint is configured for ep; checked once, as common/aws
 * resolves each endpoint once. */
static int
endpoint_set(int ep)
{
	pthread_mutex_lock(&S.mu);
	if (!S.ep_checked[ep]) {
		char url[1024];
		S.ep_set[ep] = awsconf_endpoint(EP_ID[ep], url, sizeof(url)) == 0;
		S.ep_checked[ep] = 1;
	}
	int set = S.ep_set[ep];
	pthread_mutex_unlock(&S.mu);
	return set;
}

/* "/things/NAME" into path; -1 with err for a name that cannot go in a
 * signed path: AWS allows [A-Za-z0-9:_-], and libcurl 7.88 signs an
 * escaped ':' wrongly. */
static int
thing_path(buf *path, const char *thing, char *err, size_t errcap)
{
	size_t n = strlen(thing);
	if (n > 128 || strspn(thing, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
		snprintf(err, errcap, "thing name %.140s: only letters, digits, '_' and '-' (at most 128) can be sent%s",
		    thing, strchr(thing, ':') ? " (':' is signed wrongly by libcurl 7.88)" : "");
		return -1;
	}
	buf_adds(path, "/things/");
	buf_adds(path, thing);
	return 0;
}

/* GET path (with query, may be NULL) from the IoT endpoint ep; the
 * answer's body appended to out. */
static int
iot_get(int ep, const char *what, const char *path, const char *query, const char *role_arn, buf *out,
    char *err, size_t errcap)
{
	if (!endpoint_set(ep)) {
		if (ep == EP_IOT_DATA)
			snprintf(err, errcap, "no IoT data endpoint is configured, and AWS's is account-specific: set "
			    "AWS_ENDPOINT_URL_IOT_DATA_PLANE (https://PREFIX-ats.iot.REGION.amazonaws.com) or the "
			    "profile's iot_data_plane endpoint_url");
		else
			snprintf(err, errcap, "no IoT endpoint is configured: set AWS_ENDPOINT_URL_IOT "
			    "(AWS's is https://iot.REGION.amazonaws.com) or the profile's iot endpoint_url");
		return -1;
	}
	aws_request rq = {.service = ep == EP_IOT_DATA ? "iotdata" : "iot", .endpoint_id = EP_ID[ep],
	    .method = "GET", .path = path, .query = query, .role_arn = role_arn};
	aws_response r;
	if (call(&rq, what, &r, err, errcap) < 0)
		return -1;
	buf_add(out, r.body, r.body_len);
	aws_response_free(&r);
	return 0;
}

static int
get_thing_shadow(const char *thing, const char *shadow, const char *role_arn, buf *out, char *err,
    size_t errcap)
{
	buf path = BUF_ZERO, query = BUF_ZERO;
	int rc = thing_path(&path, thing, err, errcap);
	if (rc == 0) {
		buf_adds(&path, "/shadow");
		if (shadow) {
			buf_adds(&query, "name=");
			aws_uri_encode(&query, shadow, strlen(shadow), 0);
		}
		rc = iot_get(EP_IOT_DATA, "IoT GetThingShadow failed", path.data, query.data, role_arn, out, err,
		    errcap);
	}
	buf_free(&path);
	buf_free(&query);
	return rc;
}

static int
get_registry_data(const char *api, const char *thing, const char *role_arn, buf *out, char *err,
    size_t errcap)
{
	int groups = strcmp(api, "ListThingGroupsForThing") == 0;
	char what[64];
	snprintf(what, sizeof(what), "IoT %s failed", groups ? "ListThingGroupsForThing" : "DescribeThing");
	buf path = BUF_ZERO;
	int rc = thing_path(&path, thing, err, errcap);
	if (rc == 0) {
		if (groups)
			buf_adds(&path, "/thing-groups");
		/* One page of the API's largest size: 250 groups. */
		rc = iot_get(EP_IOT, what, path.data, groups ? "maxResults=250" : NULL, role_arn, out, err, errcap);
	}
	buf_free(&path);
	return rc;
}

static const sql_external HOST = {.get_item = get_item, .invoke = invoke, .get_secret = get_secret,
    .get_thing_shadow = get_thing_shadow, .get_registry_data = get_registry_data};

const sql_external *
sqlaws_external(void)
{
	return &HOST;
}

void
sqlaws_set_assume_role(int on)
{
	pthread_mutex_lock(&S.mu);
	S.assume_role = on;
	pthread_mutex_unlock(&S.mu);
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
	pthread_mutex_lock(&C.mu);
	for (int i = 0; i < SECRET_SLOTS; i++)
		secret_clear(&C.slot[i]);
	pthread_mutex_unlock(&C.mu);
}
