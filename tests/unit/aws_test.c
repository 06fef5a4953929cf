/* Unit tests of the AWS client: classification, encoding, error and
 * credential parsing, and end to end against a small HTTP server in this
 * process (a thread per connection, canned answers by path), which
 * records what it was sent.  It does not check signatures (the
 * integration tests' recorder does): it checks what the client sends
 * (headers, URL, body) and how it reads answers and refreshes
 * credentials from each source. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/aws.h"
#include "common/awscreds.h"
#include "tests/unit/tap.h"

/* ---- the server ---------------------------------------------------------------- */

static int srv_fd, srv_port, srv_live;   /* srv_live: connection threads, under srv_mu */
static pthread_t srv_thr;
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_head[8192], last_body[8192];
static int n_creds, n_sts, n_imds, n_requests, n_conns;
static int creds_ttl_s = 3600;

static int count(int *n);

static void
iso_in(int s, char *out, size_t cap)
{
	time_t t = time(NULL) + s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
answer(int fd, int status, const char *extra, const char *body)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status, strlen(body),
	    extra ? extra : "");
	if (write(fd, head, n) < 0 || write(fd, body, strlen(body)) < 0)
		return;
}

static void
route(int fd, const char *head, const char *body)
{
	char path[512] = "", exp[64], doc[1024];
	sscanf(head, "%*s %511s", path);
	int k;
	iso_in(creds_ttl_s, exp, sizeof(exp));
	if (strcmp(path, "/creds") == 0) {
		pthread_mutex_lock(&srv_mu);
		k = ++n_creds;
		pthread_mutex_unlock(&srv_mu);
		if (strstr(head, "Authorization: ctok\r\n") == NULL)
			return answer(fd, 403, NULL, "{\"message\":\"no token\"}");
		snprintf(doc, sizeof(doc), "{\"AccessKeyId\":\"ASIACONT%d\",\"SecretAccessKey\":\"s\",\"Token\":\"ctoken%d\","
		    "\"Expiration\":\"%s\"}", k, k, exp);
		return answer(fd, 200, NULL, doc);
	}
	if (strcmp(path, "/latest/api/token") == 0)
		return strncmp(head, "PUT ", 4) == 0 && strstr(head, "X-aws-ec2-metadata-token-ttl-seconds: 21600")
		    ? answer(fd, 200, NULL, "itok") : answer(fd, 405, NULL, "");
	if (strncmp(path, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
		if (strstr(head, "X-aws-ec2-metadata-token: itok\r\n") == NULL)
			return answer(fd, 401, NULL, "");
		if (path[43] == 0)
			return answer(fd, 200, NULL, "therole\n");
		pthread_mutex_lock(&srv_mu);
		k = ++n_imds;
		pthread_mutex_unlock(&srv_mu);
		snprintf(doc, sizeof(doc), "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAIMDS%d\",\"SecretAccessKey\":\"s\","
		    "\"Token\":\"itoken\",\"Expiration\":\"%s\"}", k, exp);
		return answer(fd, strcmp(path + 43, "therole") == 0 ? 200 : 404, NULL, doc);
	}
	if (strcmp(path, "/sts/") == 0) {
		pthread_mutex_lock(&srv_mu);
		k = ++n_sts;
		pthread_mutex_unlock(&srv_mu);
		if (strstr(body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123%3Arole%2Fdenied"))
			return answer(fd, 403, NULL, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
			    "<Message>not you</Message></Error></ErrorResponse>");
		snprintf(doc, sizeof(doc), "<R><Result><Credentials><AccessKeyId>ASIASTS%d</AccessKeyId><SecretAccessKey>s"
		    "</SecretAccessKey><SessionToken>st&amp;k</SessionToken><Expiration>%s</Expiration></Credentials>"
		    "</Result></R>", k, exp);
		return answer(fd, 200, NULL, doc);
	}
	pthread_mutex_lock(&srv_mu);
	n_requests++;
	snprintf(last_head, sizeof(last_head), "%s", head);
	snprintf(last_body, sizeof(last_body), "%s", body);
	pthread_mutex_unlock(&srv_mu);
	if (strcmp(path, "/throttle") == 0)
		return answer(fd, 400, "x-amzn-ErrorType: ThrottlingException:http://internal/\r\nRetry-After: 3\r\n",
		    "{\"message\":\"Rate exceeded\"}");
	if (strcmp(path, "/xml") == 0)
		return answer(fd, 404, NULL, "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>"
		    "<Message>The bucket &quot;b&quot; does not exist</Message></Error>");
	if (strcmp(path, "/expired") == 0)
		return answer(fd, 400, NULL, "{\"__type\":\"com.amazon.coral.service#ExpiredTokenException\","
		    "\"message\":\"The security token included in the request is expired\"}");
	if (strcmp(path, "/slow") == 0)
		sleep(2);
	answer(fd, 200, NULL, "{\"ok\":1}");
}

static void *
conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[65536];
	size_t have = 0;
	for (;;) {
		char *end;
		b[have] = 0;
		while ((end = strstr(b, "\r\n\r\n")) == NULL) {
			ssize_t n = read(fd, b + have, sizeof(b) - 1 - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
			b[have] = 0;
		}
		size_t hl = (size_t)(end + 4 - b), cl = 0;
		const char *c = strcasestr(b, "\r\nContent-Length:");
		if (c && c < end)
			cl = strtoul(c + 17, NULL, 10);
		if (hl + cl >= sizeof(b))
			goto out;
		while (have < hl + cl) {
			ssize_t n = read(fd, b + have, sizeof(b) - 1 - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		char head[8192], body[8192];
		snprintf(head, sizeof(head), "%.*s", (int)hl, b);
		snprintf(body, sizeof(body), "%.*s", (int)cl, b + hl);
		route(fd, head, body);
		memmove(b, b + hl + cl, have - hl - cl);
		have -= hl + cl;
	}
out:
	close(fd);
	pthread_mutex_lock(&srv_mu);
	srv_live--;
	pthread_mutex_unlock(&srv_mu);
	return NULL;
}

static void *
srv_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(srv_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_mutex_lock(&srv_mu);
		srv_live++;
		n_conns++;
		pthread_mutex_unlock(&srv_mu);
		if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else {
			close(fd);
			pthread_mutex_lock(&srv_mu);
			srv_live--;
			pthread_mutex_unlock(&srv_mu);
		}
	}
}

static void
srv_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	srv_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(srv_fd, 64) < 0 ||
	    getsockname(srv_fd, (struct sockaddr *)&a, &len) < 0)
		exit(1);
	srv_port = ntohs(a.sin_port);
	pthread_create(&srv_thr, NULL, srv_main, NULL);
}

/* Stops accepting and waits (3 s at most) for the connections to end:
 * every client is closed by then, so valgrind sees no thread left. */
static void
srv_stop(void)
{
	shutdown(srv_fd, SHUT_RDWR);
	pthread_join(srv_thr, NULL);
	close(srv_fd);
	for (int i = 0; i < 300 && count(&srv_live) > 0; i++)
		usleep(10000);
	usleep(50000);   /* the last thread's exit after its count */
}

/* ---- helpers ---------------------------------------------------------------------- */

static char dir[] = "/tmp/iotrules-aws-XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
}

static void
clear_env(void)
{
	const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL};
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static int
count(int *n)
{
	pthread_mutex_lock(&srv_mu);
	int v = *n;
	pthread_mutex_unlock(&srv_mu);
	return v;
}

static int
head_has(const char *s)
{
	pthread_mutex_lock(&srv_mu);
	int r = strstr(last_head, s) != NULL;
	pthread_mutex_unlock(&srv_mu);
	return r;
}

static int
body_has(const char *s)
{
	pthread_mutex_lock(&srv_mu);
	int r = strstr(last_body, s) != NULL;
	pthread_mutex_unlock(&srv_mu);
	return r;
}

static aws_request
req(const char *path)
{
	aws_request r;
	memset(&r, 0, sizeof(r));
	r.service = "firehose";
	r.endpoint_id = "FIREHOSE";
	r.path = path;
	r.content_type = "application/x-amz-json-1.1";
	r.target = "Firehose_20150804.PutRecord";
	r.body = "{\"a\":1}";
	r.body_len = 7;
	return r;
}

/* One call; 1 if it answered status with verdict. */
static int
call_is(aws_client *c, const aws_request *rq, long status, aws_verdict v, aws_response *keep)
{
	aws_response r;
	aws_call(c, rq, &r);
	int ok = r.status == status && r.verdict == v;
	if (!ok)
		printf("# got %ld %d %s %s\n", r.status, r.verdict, r.error_code, r.error_message);
	if (keep)
		*keep = r;
	else
		aws_response_free(&r);
	return ok;
}

struct closed { pthread_mutex_t mu; int n, st0; };

static void
on_done(void *arg, const aws_response *r)
{
	struct closed *k = arg;
	pthread_mutex_lock(&k->mu);
	k->n++;
	k->st0 += r->status == 0 && r->verdict == AWS_TRANSIENT && strcmp(r->error_message, "client closed") == 0;
	pthread_mutex_unlock(&k->mu);
}

/* ---- the tests ---------------------------------------------------------------------- */

static void
test_pure(void)
{
	ok(aws_classify(200, "") == AWS_OK && aws_classify(204, NULL) == AWS_OK, "2xx is OK");
	ok(aws_classify(0, NULL) == AWS_TRANSIENT, "no answer is TRANSIENT");
	ok(aws_classify(500, "") == AWS_TRANSIENT && aws_classify(502, NULL) == AWS_TRANSIENT &&
	    aws_classify(503, "") == AWS_TRANSIENT && aws_classify(504, "") == AWS_TRANSIENT, "5xx is TRANSIENT");
	ok(aws_classify(429, "") == AWS_THROTTLED, "429 is THROTTLED");
	const char *thr[] = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
	    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
	    "SlowDown", "EC2ThrottledException", NULL};
	int all = 1;
	for (int i = 0; thr[i]; i++)
		all &= aws_classify(400, thr[i]) == AWS_THROTTLED && aws_classify_code(thr[i]) == AWS_THROTTLED;
	ok(all, "every throttling code of ERRORS.md 6 is THROTTLED, as answer and as entry");
	ok(aws_classify(503, "SlowDown") == AWS_THROTTLED, "503 SlowDown is THROTTLED, not TRANSIENT");
	const char *tr[] = {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "ExpiredToken",
	    "ExpiredTokenException", "RequestExpired", NULL};
	all = 1;
	for (int i = 0; tr[i]; i++)
		all &= aws_classify(400, tr[i]) == AWS_TRANSIENT;
	ok(all, "the transient and expired-token codes of a 400 are TRANSIENT");
	ok(aws_classify(400, "ValidationException") == AWS_PERMANENT && aws_classify(403, "AccessDeniedException") ==
	    AWS_PERMANENT && aws_classify(404, "") == AWS_PERMANENT && aws_classify(400, "ConditionalCheckFailedException")
	    == AWS_PERMANENT, "other 4xx are PERMANENT");
	ok(aws_classify_code(NULL) == AWS_OK && aws_classify_code("") == AWS_OK, "no entry code: OK");
	ok(aws_classify_code("InternalFailure") == AWS_TRANSIENT && aws_classify_code("ServiceUnavailable") ==
	    AWS_TRANSIENT && aws_classify_code("InternalServerError") == AWS_TRANSIENT &&
	    aws_classify_code("InternalError") == AWS_TRANSIENT &&
	    aws_classify_code("ServiceUnavailableException") == AWS_TRANSIENT, "entry codes: internal failures TRANSIENT");
	ok(aws_classify_code("KMSThrottlingException") == AWS_THROTTLED, "entry code KMSThrottlingException THROTTLED");
	ok(aws_classify_code("ValidationError") == AWS_PERMANENT && aws_classify_code("AccessDenied") == AWS_PERMANENT,
	    "other entry codes PERMANENT");

	buf b = BUF_ZERO;
	const char *s = "a-b_c.d~e/f g+h:i%é*";
	aws_uri_encode(&b, s, strlen(s), 0);
	is_str(b.data, "a-b_c.d~e%2Ff%20g%2Bh%3Ai%25%C3%A9%2A", "aws_uri_encode: all but unreserved, upper-case hex");
	buf_reset(&b);
	aws_uri_encode(&b, s, strlen(s), 1);
	is_str(b.data, "a-b_c.d~e/f%20g%2Bh%3Ai%25%C3%A9%2A", "aws_uri_encode keep_slash keeps '/'");
	buf_reset(&b);
	aws_uri_encode(&b, "a\0b", 3, 0);
	is_str(b.data, "a%00b", "aws_uri_encode takes a length, NUL included");
	buf_free(&b);

	char r[64];
	ok(aws_arn_region("arn:aws:sqs:eu-west-1:1234:q", r, sizeof(r)) == 0 && strcmp(r, "eu-west-1") == 0,
	    "aws_arn_region of an SQS ARN");
	ok(aws_arn_region("arn:aws-cn:lambda:cn-north-1:1:function:f:prod", r, sizeof(r)) == 0 &&
	    strcmp(r, "cn-north-1") == 0, "another partition");
	ok(aws_arn_region("arn:aws:s3:::bucket", r, sizeof(r)) == -1 && aws_arn_region("sqs:eu", r, sizeof(r)) == -1 &&
	    aws_arn_region("arn:aws:sqs", r, sizeof(r)) == -1 && aws_arn_region(NULL, r, sizeof(r)) == -1,
	    "no region, not an ARN, too short: -1");
	ok(aws_arn_region("arn:aws:sqs:eu-west-1:1:q", r, 5) == -1, "a region longer than out: -1");

	char code[64], msg[128];
	const char *j = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\","
	    "\"message\":\"Requested resource not found\"}";
	aws_parse_error(j, strlen(j), NULL, code, sizeof(code), msg, sizeof(msg));
	ok(strcmp(code, "ResourceNotFoundException") == 0 && strcmp(msg, "Requested resource not found") == 0,
	    "JSON __type after '#' and message (%s, %s)", code, msg);
	j = "{\"__type\":\"InvalidSignatureException:http://internal.amazon.com/coral/\",\"Message\":\"bad\"}";
	aws_parse_error(j, strlen(j), NULL, code, sizeof(code), msg, sizeof(msg));
	ok(strcmp(code, "InvalidSignatureException") == 0 && strcmp(msg, "bad") == 0, "__type cut at ':', Message");
	j = "{\"code\":\"ValidationError\",\"message\":\"x\"}";
	aws_parse_error(j, strlen(j), NULL, code, sizeof(code), msg, sizeof(msg));
	ok(strcmp(code, "ValidationError") == 0, "JSON code");
	j = "{\"Type\":\"User\",\"message\":\"Function not found\"}";
	aws_parse_error(j, strlen(j), "ResourceNotFoundException:http://internal.amazon.com/", code, sizeof(code), msg,
	    sizeof(msg));
	ok(strcmp(code, "ResourceNotFoundException") == 0 && strcmp(msg, "Function not found") == 0,
	    "x-amzn-ErrorType header cut at ':', message from the body");
	j = "<ErrorResponse xmlns=\"x\"><Error><Type>Sender</Type><Code>InvalidParameterValue</Code>"
	    "<Message>a &lt; b</Message></Error><RequestId>1</RequestId></ErrorResponse>";
	aws_parse_error(j, strlen(j), NULL, code, sizeof(code), msg, sizeof(msg));
	ok(strcmp(code, "InvalidParameterValue") == 0 && strcmp(msg, "a < b") == 0, "query-protocol XML error");
	j = "\n<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>";
	aws_parse_error(j, strlen(j), NULL, code, sizeof(code), msg, sizeof(msg));
	ok(strcmp(code, "SlowDown") == 0 && strcmp(msg, "Please reduce") == 0, "S3 XML error");
	j = "{\"error\":{\"type\":\"mapper_parsing_exception\",\"reason\":\"failed\"},\"status\":400}";
	aws_parse_error(j, strlen(j), NULL, code, sizeof(code), msg, sizeof(msg));
	ok(strcmp(code, "mapper_parsing_exception") == 0 && strcmp(msg, "failed") == 0, "OpenSearch error object");
	aws_parse_error("", 0, NULL, code, sizeof(code), msg, sizeof(msg));
	ok(code[0] == 0 && msg[0] == 0, "no body: no code, no message");
	aws_parse_error("Bad Gateway", 11, NULL, code, sizeof(code), msg, sizeof(msg));
	ok(code[0] == 0 && msg[0] == 0, "a text body: none either");
	aws_parse_error("{\"__type\":\"A#B\"", 15, NULL, code, sizeof(code), msg, sizeof(msg));
	ok(code[0] == 0, "truncated JSON: none");

	awsconf_creds c;
	char err[512];
	const char *x = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>"
	    "<SecretAccessKey>sec/ret+</SecretAccessKey><SessionToken>to&amp;ken=</SessionToken>"
	    "<Expiration>2026-12-01T20:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
	ok(awscreds_parse_sts(x, &c, err, sizeof(err)) == 0 && strcmp(c.access_key, "ASIA1") == 0 &&
	    strcmp(c.secret_key, "sec/ret+") == 0 && strcmp(c.session_token, "to&ken=") == 0 &&
	    c.expires_ms == 1796155200000LL, "STS XML credentials, entities decoded");
	x = "<ErrorResponse><Error><Code>ExpiredTokenException</Code><Message>Token expired</Message></Error></ErrorResponse>";
	ok(awscreds_parse_sts(x, &c, err, sizeof(err)) == -1 && strstr(err, "ExpiredTokenException: Token expired"),
	    "STS error reply: code and message (%s)", err);
	ok(awscreds_parse_sts("<Credentials><AccessKeyId>A</AccessKeyId></Credentials>", &c, err, sizeof(err)) == -1,
	    "STS reply without the secret: -1");
	x = "{\"Code\":\"Success\",\"LastUpdated\":\"2026-12-01T19:00:00Z\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIA2\","
	    "\"SecretAccessKey\":\"s2\",\"Token\":\"t2\",\"Expiration\":\"2026-12-01T20:00:00Z\"}";
	ok(awscreds_parse_json(x, &c, err, sizeof(err)) == 0 && strcmp(c.access_key, "ASIA2") == 0 &&
	    strcmp(c.session_token, "t2") == 0 && c.expires_ms == 1796155200000LL, "IMDS JSON credentials");
	ok(awscreds_parse_json("{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", &c, err,
	    sizeof(err)) == -1 && strstr(err, "Failure"), "IMDS Code other than Success: -1 (%s)", err);
	ok(awscreds_parse_json("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"soon\"}", &c, err,
	    sizeof(err)) == -1, "a bad Expiration: -1");
	ok(awscreds_parse_json("not json", &c, err, sizeof(err)) == -1 && awscreds_parse_json("{}", &c, err, sizeof(err))
	    == -1, "not JSON, no keys: -1");
	ok(awscreds_refresh_at(0, 3600000) == 3300000, "an hour's credentials are refreshed 5 minutes before");
	ok(awscreds_refresh_at(0, 60000) == 30000, "60 s credentials at half-life");
	ok(awscreds_refresh_at(1000, 0) == 0, "credentials that do not expire are never refreshed");
}

static void
test_env(void)
{
	char err[512], url[128];
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	setenv("AWS_SESSION_TOKEN", "sesstok", 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv_port);
	setenv("AWS_ENDPOINT_URL", url, 1);
	aws_client_opts o = {0, 5000, 1000, 4};
	int g;
	aws_client *c = aws_client_open(&o, err, sizeof(err));
	if (!ok(c != NULL, "open with credentials from the environment")) {
		printf("# %s\n", err);
		return;
	}
	is_str(aws_region(c), "eu-central-1", "region from AWS_REGION");
	aws_request rq = req("/ok");
	aws_response r;
	ok(call_is(c, &rq, 200, AWS_OK, &r) && strcmp(r.body, "{\"ok\":1}") == 0 && r.error_code[0] == 0,
	    "a signed POST answered 200 with its body");
	aws_response_free(&r);
	ok(head_has("POST /ok HTTP/1.1\r\n") && head_has("Content-Type: application/x-amz-json-1.1\r\n") &&
	    head_has("X-Amz-Target: Firehose_20150804.PutRecord\r\n") && head_has("X-Amz-Security-Token: sesstok\r\n") &&
	    head_has("Credential=AKIDTEST/") && head_has("/eu-central-1/firehose/aws4_request") &&
	    !head_has("Expect:") && !head_has("x-amz-content-sha256") && body_has("{\"a\":1}"),
	    "target, content type, token, credential scope and body; no Expect, no payload hash for non-S3");
	rq = req("/k%20ey");
	rq.service = "s3";
	rq.endpoint_id = "S3";
	rq.s3_bucket = "bkt";
	rq.method = "PUT";
	rq.query = "a=1&b=2";
	rq.content_type = "application/json";
	rq.target = NULL;
	rq.headers[0] = "x-amz-meta-k: v";
	ok(call_is(c, &rq, 200, AWS_OK, NULL) && head_has("PUT /bkt/k%20ey?a=1&b=2 HTTP/1.1\r\n") &&
	    head_has("x-amz-content-sha256: 015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862\r\n") &&
	    head_has("x-amz-meta-k: v\r\n") && head_has("/s3/aws4_request"),
	    "S3 PUT: path-style with an endpoint, payload hash, extra header");
	rq.method = "GET";
	rq.content_type = NULL;
	rq.body = NULL;
	rq.body_len = 0;
	ok(call_is(c, &rq, 200, AWS_OK, NULL) && head_has("GET /bkt/k%20ey?a=1&b=2 HTTP/1.1\r\n") &&
	    head_has("x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") &&
	    !head_has("Content-Type") && !head_has("Content-Length"), "S3 GET: empty payload hash, no body, no type");
	rq = req("/throttle");
	g = call_is(c, &rq, 400, AWS_THROTTLED, &r);
	ok(g && strcmp(r.error_code, "ThrottlingException") == 0 &&
	    strcmp(r.error_message, "Rate exceeded") == 0 && r.retry_after_ms == 3000,
	    "x-amzn-ErrorType, message and Retry-After (%s, %d ms)", r.error_code, r.retry_after_ms);
	aws_response_free(&r);
	rq = req("/xml");
	ok(call_is(c, &rq, 404, AWS_PERMANENT, &r) && strcmp(r.error_code, "NoSuchBucket") == 0 &&
	    strcmp(r.error_message, "The bucket \"b\" does not exist") == 0, "XML error: PERMANENT with code");
	aws_response_free(&r);
	rq = req("/expired");
	ok(call_is(c, &rq, 400, AWS_TRANSIENT, &r) && strcmp(r.error_code, "ExpiredTokenException") == 0,
	    "an expired-token answer is TRANSIENT");
	aws_response_free(&r);
	rq = req("/ok");
	ok(call_is(c, &rq, 200, AWS_OK, NULL), "and the next request works (environment credentials again)");

	int c0 = count(&n_conns);
	g = 1;
	for (int i = 0; i < 10; i++)
		g &= call_is(c, &rq, 200, AWS_OK, NULL);
	c0 = count(&n_conns) - c0;
	ok(g && c0 == 0, "10 requests one after the other reuse the connection (%d new)", c0);

	/* Many at once, from this thread. */
	struct closed k = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
	c0 = count(&n_conns);
	for (int i = 0; i < 40; i++)
		aws_send(c, &rq, on_done, &k);
	for (int i = 0; i < 500 && aws_inflight(c) > 0; i++)
		usleep(10000);
	c0 = count(&n_conns) - c0;
	ok(aws_inflight(c) == 0 && count(&k.n) == 40, "40 concurrent requests all done (%d)", count(&k.n));
	ok(c0 <= 3, "on at most max_connections (4) connections, one of them kept from before (%d new)", c0);

	/* Close with requests in flight. */
	rq = req("/slow");
	struct closed k2 = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
	for (int i = 0; i < 3; i++)
		aws_send(c, &rq, on_done, &k2);
	usleep(200000);
	ok(aws_inflight(c) == 3, "3 slow requests in flight");
	aws_client_close(c);
	ok(k2.n == 3 && k2.st0 == 3, "close completes them: status 0, TRANSIENT, \"client closed\" (%d, %d)", k2.n,
	    k2.st0);

	unsetenv("AWS_ENDPOINT_URL");
	setenv("AWS_ENDPOINT_URL_FIREHOSE", "http://127.0.0.1:1", 1);
	c = aws_client_open(&o, err, sizeof(err));
	rq = req("/ok");
	g = c && call_is(c, &rq, 0, AWS_TRANSIENT, &r);
	ok(g && strstr(r.error_message, "127.0.0.1"),
	    "connection refused: status 0, TRANSIENT, curl's text (%s)", c ? r.error_message : err);
	if (c)
		aws_response_free(&r);
	aws_client_close(c);
	unsetenv("AWS_ENDPOINT_URL_FIREHOSE");
	setenv("AWS_ENDPOINT_URL", url, 1);
}

static void
test_sources(void)
{
	char err[512], v[256];
	aws_client_opts o = {0, 5000, 1000, 4};
	aws_client *c;
	aws_request rq = req("/ok");

	clear_env();
	c = aws_client_open(&o, err, sizeof(err));
	ok(c == NULL && strstr(err, "no AWS credentials") && strstr(err, "AWS_EC2_METADATA_DISABLED"),
	    "no source at all: open fails and says why (%s)", err);

	/* Container, with a token file; an expired-token answer refetches. */
	snprintf(v, sizeof(v), "http://127.0.0.1:%d/creds", srv_port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", v, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c == NULL && strstr(err, "HTTP 403") && !strstr(err, "wrong"),
	    "container: a refused token fails open, without showing it (%s)", err);
	snprintf(v, sizeof(v), "%s/ctok", dir);
	write_file("ctok", "ctok\n");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", v, 1);
	int n0 = count(&n_creds);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c != NULL, "container: the token file wins over the variable");
	if (c) {
		ok(call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=ASIACONT") &&
		    head_has("X-Amz-Security-Token: ctoken"), "container credentials sign the request");
		rq = req("/expired");
		ok(call_is(c, &rq, 400, AWS_TRANSIENT, NULL), "expired token: TRANSIENT");
		rq = req("/ok");
		int g = call_is(c, &rq, 200, AWS_OK, NULL);
		ok(g && count(&n_creds) == n0 + 2,
		    "then fresh credentials were fetched once (%d fetches)", count(&n_creds) - n0);
		aws_client_close(c);
	}
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c == NULL && strstr(err, "plain http"), "container: plain http to another host is refused (%s)", err);
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

	/* IMDSv2. */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	snprintf(v, sizeof(v), "http://127.0.0.1:%d/", srv_port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", v, 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=ASIAIMDS") &&
	    head_has("X-Amz-Security-Token: itoken"), "IMDSv2: token, role, credentials");
	aws_client_close(c);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c == NULL && strstr(err, "IMDS"), "IMDS unreachable: open fails naming it (%s)", err);
	clear_env();

	/* Web identity. */
	snprintf(v, sizeof(v), "http://127.0.0.1:%d/sts/", srv_port);
	setenv("AWS_ENDPOINT_URL_STS", v, 1);
	write_file("webtok", "eyJweb.token\n");
	snprintf(v, sizeof(v), "%s/webtok", dir);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", v, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123:role/web", 1);
	setenv("AWS_ROLE_SESSION_NAME", "sess1", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=ASIASTS") &&
	    head_has("X-Amz-Security-Token: st&k"), "web identity: STS credentials sign the request");
	aws_client_close(c);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123:role/denied", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c == NULL && strstr(err, "AccessDenied: not you") && strstr(err, "AssumeRoleWithWebIdentity") &&
	    !strstr(err, "eyJweb"), "web identity refused: code and message, never the token (%s)", err);
	clear_env();

	/* A role profile, and an action's role. */
	char p[256];
	write_file("credentials", "[src]\naws_access_key_id = AKIDSRC\naws_secret_access_key = srcsecret\n");
	write_file("config", "[profile role]\nrole_arn = arn:aws:iam::123:role/prof\nsource_profile = src\n"
	    "[profile bad]\nrole_arn = arn:aws:iam::123:role/x\n");
	snprintf(p, sizeof(p), "%s/credentials", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/config", dir);
	setenv("AWS_CONFIG_FILE", p, 1);
	setenv("AWS_PROFILE", "role", 1);
	int s0 = count(&n_sts);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=ASIASTS") && count(&n_sts) == s0 + 1,
	    "profile role_arn + source_profile: AssumeRole once, its credentials sign");
	aws_client_close(c);
	setenv("AWS_PROFILE", "bad", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c == NULL && strstr(err, "source_profile"), "role_arn without a source: open fails (%s)", err);
	unsetenv("AWS_PROFILE");

	setenv("AWS_ACCESS_KEY_ID", "AKIDBASE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	o.assume_role = 1;
	c = aws_client_open(&o, err, sizeof(err));
	rq.role_arn = "arn:aws:iam::123:role/action";
	s0 = count(&n_sts);
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=ASIASTS") &&
	    call_is(c, &rq, 200, AWS_OK, NULL) && count(&n_sts) == s0 + 1,
	    "an action's role_arn with assume_role: assumed once, cached");
	rq.role_arn = "arn:aws:iam::123:role/denied";
	aws_response r;
	int g = c && call_is(c, &rq, 0, AWS_TRANSIENT, &r);
	ok(g && strstr(r.error_message, "AccessDenied"),
	    "a role that cannot be assumed: status 0 with STS's answer (%s)", c ? r.error_message : "");
	if (c)
		aws_response_free(&r);
	rq.role_arn = NULL;
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=AKIDBASE"),
	    "without role_arn: the client's own credentials");
	aws_client_close(c);
	o.assume_role = 0;
	c = aws_client_open(&o, err, sizeof(err));
	rq.role_arn = "arn:aws:iam::123:role/action";
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("Credential=AKIDBASE"),
	    "role_arn is ignored without assume_role");
	aws_client_close(c);
	clear_env();

	/* Short-lived credentials are refreshed at half-life. */
	creds_ttl_s = 4;
	snprintf(v, sizeof(v), "http://127.0.0.1:%d/creds", srv_port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", v, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ctok", 1);
	n0 = count(&n_creds);
	c = aws_client_open(&o, err, sizeof(err));
	rq.role_arn = NULL;
	int good = 1;
	for (int i = 0; i < 6 && c; i++) {
		good &= call_is(c, &rq, 200, AWS_OK, NULL);
		usleep(600000);
	}
	g = count(&n_creds) - n0;
	ok(c && good && g >= 2, "4 s credentials refreshed during 3.6 s of requests, none failed "
	    "(%d fetches)", g);
	aws_client_close(c);
	creds_ttl_s = 3600;
	clear_env();
}

static void test_connect_to(void);

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);   /* the server answers clients that left */
	setenv("HOME", dir, 1);
	char p[256];
	snprintf(p, sizeof(p), "%s/none", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	setenv("AWS_CONFIG_FILE", p, 1);
	setenv("AWS_REGION", "eu-central-1", 1);
	srv_start();
	test_pure();
	test_env();
	test_sources();
	test_connect_to();
	srv_stop();
	const char *files[] = {"ctok", "webtok", "credentials", "config", NULL};
	for (int i = 0; files[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
	return done_testing();
}

/* ---- IOTRULES_AWS_CONNECT_TO and the discovery/Location codes (issue 9) ---------- */

static void
test_connect_to(void)
{
	char err[512], url[128], map[256];
	aws_client_opts o = {0, 5000, 1000, 4};
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	unsetenv("AWS_ENDPOINT_URL");

	/* A name that resolves nowhere (.invalid, RFC 2606): only the
	 * mapping can reach the server, and the Host stays the name. */
	snprintf(url, sizeof(url), "http://svc.example.invalid:8123");
	setenv("AWS_ENDPOINT_URL_FIREHOSE", url, 1);
	snprintf(map, sizeof(map), " other.invalid:1:127.0.0.1:2 , svc.example.invalid:8123:127.0.0.1:%d,", srv_port);
	setenv("IOTRULES_AWS_CONNECT_TO", map, 1);
	aws_client *c = aws_client_open(&o, err, sizeof(err));
	aws_request rq = req("/ok");
	ok(c && call_is(c, &rq, 200, AWS_OK, NULL) && head_has("POST /ok HTTP/1.1\r\n") &&
	    head_has("Host: svc.example.invalid:8123\r\n") && head_has("/eu-central-1/firehose/aws4_request"),
	    "IOTRULES_AWS_CONNECT_TO: host:port mapped to 127.0.0.1, Host header and signature of the name");
	aws_client_close(c);

	unsetenv("IOTRULES_AWS_CONNECT_TO");
	c = aws_client_open(&o, err, sizeof(err));
	aws_response r;
	int g = c && call_is(c, &rq, 0, AWS_TRANSIENT, &r);
	ok(g, "without it the name does not resolve: status 0, TRANSIENT (%s)", g ? r.error_message : err);
	if (g)
		aws_response_free(&r);
	aws_client_close(c);

	const char *bad[] = {"svc.example.invalid:8123", "a:1:b", "a:1:b:2:c", "a:x:b:2", "a:1:b:70000",
	    "[::1:1:b:2", NULL};
	int all = 1;
	for (int i = 0; bad[i]; i++) {
		setenv("IOTRULES_AWS_CONNECT_TO", bad[i], 1);
		c = aws_client_open(&o, err, sizeof(err));
		all &= c == NULL && strstr(err, "IOTRULES_AWS_CONNECT_TO") && strstr(err, bad[i]);
		aws_client_close(c);
	}
	ok(all, "a malformed entry fails open, naming the variable and the entry (%s)", err);
	setenv("IOTRULES_AWS_CONNECT_TO", "::127.0.0.1:1,[::1]:443:[::1]:8443,h:443::", 1);
	c = aws_client_open(&o, err, sizeof(err));
	ok(c != NULL, "empty hosts and ports, [IPv6] addresses accepted (%s)", c ? "" : err);
	aws_client_close(c);
	unsetenv("IOTRULES_AWS_CONNECT_TO");
	unsetenv("AWS_ENDPOINT_URL_FIREHOSE");

	ok(aws_classify(421, "InvalidEndpointException") == AWS_TRANSIENT,
	    "InvalidEndpointException (discovered endpoint gone): TRANSIENT, so it is retried after rediscovery");
	ok(aws_classify_code("ThrottlingError") == AWS_THROTTLED && aws_classify_code("ConflictError") == AWS_PERMANENT,
	    "Location entry codes: ThrottlingError THROTTLED, ConflictError PERMANENT");
}
