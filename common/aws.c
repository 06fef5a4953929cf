#include "common/aws.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/awsconf.h"
#include "common/awscreds.h"
#include "common/log.h"

/* ---- classification -------------------------------------------------------- */

static int
in_list(const char *code, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(code, list[i]) == 0)
			return 1;
	return 0;
}

static const char *const throttling_codes[] = {"Throttling", "ThrottlingException", "ThrottledException",
    "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
    "RequestThrottled", "SlowDown", "EC2ThrottledException", "KMSThrottlingException",
    "ThrottlingError",   /* Amazon Location's per-entry code (BatchUpdateDevicePosition Errors[]) */
    NULL};

static const char *const transient_codes[] = {"RequestTimeout", "RequestTimeoutException",
    "PriorRequestNotComplete", "InternalFailure", "InternalError", "InternalServerError",
    "InternalServerErrorException", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException", "IDPCommunicationError",
    /* Endpoint discovery (Timestream): the discovered address is no
     * longer good; the caller discovers again and retries, as the SDKs. */
    "InvalidEndpointException",
    NULL};

/* Answers after which the credentials are fetched again. */
static const char *const expired_codes[] = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", NULL};

aws_verdict
aws_classify(long status, const char *code)
{
	if (status == 0)
		return AWS_TRANSIENT;
	if (code && *code) {
		if (in_list(code, throttling_codes))
			return AWS_THROTTLED;
		if (in_list(code, transient_codes) || in_list(code, expired_codes))
			return AWS_TRANSIENT;
	}
	if (status >= 200 && status < 300)
		return AWS_OK;
	if (status == 429)
		return AWS_THROTTLED;
	if (status >= 500)
		return AWS_TRANSIENT;
	return AWS_PERMANENT;
}

aws_verdict
aws_classify_code(const char *code)
{
	if (code == NULL || *code == 0)
		return AWS_OK;
	if (in_list(code, throttling_codes))
		return AWS_THROTTLED;
	if (in_list(code, transient_codes) || in_list(code, expired_codes))
		return AWS_TRANSIENT;
	return AWS_PERMANENT;
}

/* ---- small helpers ------------------------------------------------------------- */

void
aws_uri_encode(buf *out, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_reserve(out, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/'))
			buf_addc(out, (char)ch);
		else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			buf_add(out, e, 3);
		}
	}
}

int
aws_arn_region(const char *arn, char *out, size_t cap)
{
	/* arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE */
	if (arn == NULL || strncmp(arn, "arn:", 4) != 0)
		return -1;
	const char *p = arn + 4;
	for (int i = 0; i < 2; i++) {
		p = strchr(p, ':');
		if (p == NULL)
			return -1;
		p++;
	}
	size_t n = strcspn(p, ":");
	if (n == 0 || p[n] != ':' || n >= cap)
		return -1;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

int
aws_xml_text(const char *xml, const char *tag, char *out, size_t cap)
{
	char open[96], close[96];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	const char *a = xml ? strstr(xml, open) : NULL;
	if (a == NULL || cap == 0)
		return 1;
	a += strlen(open);
	const char *b = strstr(a, close);
	if (b == NULL)
		return 1;
	static const struct { const char *ent; char c; } ents[] = {
	    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	const size_t nents = sizeof(ents) / sizeof(ents[0]);
	size_t o = 0;
	while (a < b && o + 1 < cap) {
		size_t i = nents;
		if (*a == '&')
			for (i = 0; i < nents; i++)
				if (strncmp(a, ents[i].ent, strlen(ents[i].ent)) == 0)
					break;
		if (i < nents) {
			out[o++] = ents[i].c;
			a += strlen(ents[i].ent);
		} else
			out[o++] = *a++;
	}
	out[o] = 0;
	return 0;
}

static const char *
json_str(const cJSON *j, const char *k1, const char *k2)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k1);
	if (!cJSON_IsString(v) && k2)
		v = cJSON_GetObjectItemCaseSensitive(j, k2);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Copies s into out, cut at the first ':' (and at white space). */
static void
copy_code(char *out, size_t cap, const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strcspn(s, ": \t\r\n");
	snprintf(out, cap, "%.*s", (int)n, s);
}

void
aws_parse_error(const char *body, size_t len, const char *error_type, char *code, size_t codecap, char *msg,
    size_t msgcap)
{
	code[0] = 0;
	msg[0] = 0;
	if (error_type && *error_type)
		copy_code(code, codecap, error_type);
	size_t i = 0;
	while (body && i < len && isspace((unsigned char)body[i]))
		i++;
	if (body == NULL || i == len)
		return;
	if (body[i] == '{') {
		cJSON *j = cJSON_ParseWithLength(body, len);
		const char *t = json_str(j, "__type", NULL), *m;
		if (code[0] == 0 && t) {
			const char *h = strrchr(t, '#');
			copy_code(code, codecap, h ? h + 1 : t);
		}
		if (code[0] == 0 && (t = json_str(j, "code", "Code")))
			copy_code(code, codecap, t);
		if ((m = json_str(j, "message", "Message")) || (m = json_str(j, "errorMessage", NULL)))
			snprintf(msg, msgcap, "%s", m);
		/* OpenSearch: {"error": {"type": ..., "reason": ...}} */
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
		if (cJSON_IsObject(e)) {
			if (code[0] == 0 && (t = json_str(e, "type", NULL)))
				copy_code(code, codecap, t);
			if (msg[0] == 0 && (m = json_str(e, "reason", NULL)))
				snprintf(msg, msgcap, "%s", m);
		}
		cJSON_Delete(j);
	} else if (body[i] == '<') {
		char *x = strndup(body, len);
		if (x && code[0] == 0)
			aws_xml_text(x, "Code", code, codecap);
		if (x)
			aws_xml_text(x, "Message", msg, msgcap);
		free(x);
	}
}

/* ---- the client ------------------------------------------------------------------ */

/* A request from aws_send to its done call.  Everything it points to
 * lives in its arena. */
typedef struct areq {
	struct areq *q_next, *q_prev;
	arena q_mem;
	aws_request q_rq;          /* the caller's, its strings copied */
	aws_done_fn q_done;
	void *q_arg;
	int64_t q_deadline;        /* monotonic ms: waiting for credentials ends */
	/* On the client's thread: */
	CURL *q_h;
	struct curl_slist *q_hdrs;
	buf q_body;
	char q_errtype[128];
	char q_funcerr[64];   /* X-Amz-Function-Error: Lambda's function failed */
	int q_retry_after_ms;
	uint64_t q_gen;
	char q_ebuf[CURL_ERROR_SIZE];
} areq;

struct ep_cache {
	char id[64];
	int found;
	char url[1024];
};

#define EP_CACHE 64
#define IDLE_HANDLES 64

struct aws_client {
	aws_client_opts c_opts;
	char c_region[64];
	char *c_ca_file;
	awscreds *c_creds;
	CURLM *c_multi;
	pthread_t c_thr;
	atomic_int c_inflight;

	pthread_mutex_t c_mu;
	areq *c_queue, *c_queue_tail;   /* from aws_send, under c_mu */
	int c_closing;                  /* under c_mu */

	/* The client's thread only: */
	areq *c_waiting;                /* for credentials */
	areq *c_active;                 /* on the multi handle, doubly linked */
	CURL *c_idle[IDLE_HANDLES];
	int c_nidle;
	struct ep_cache c_eps[EP_CACHE];
	int c_neps;
	struct curl_slist *c_connect_to;   /* IOTRULES_AWS_CONNECT_TO, or NULL */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
aws_region(const aws_client *c)
{
	return c->c_region;
}

int
aws_inflight(aws_client *c)
{
	return atomic_load(&c->c_inflight);
}

static void
req_free(areq *q)
{
	curl_slist_free_all(q->q_hdrs);
	if (q->q_body.data)
		explicit_bzero(q->q_body.data, q->q_body.len);
	buf_free(&q->q_body);
	arena_free(&q->q_mem);
	free(q);
}

/* Calls the request's done with r and frees it. */
static void
req_finish(aws_client *c, areq *q, aws_response *r)
{
	q->q_done(q->q_arg, r);
	req_free(q);
	atomic_fetch_sub(&c->c_inflight, 1);
}

/* Completes q without an answer. */
static void
req_fail(aws_client *c, areq *q, const char *why)
{
	aws_response r = {0, AWS_TRANSIENT, "", why, 0, "", 0};
	req_finish(c, q, &r);
}

static char *
dup_str(arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

void
aws_send(aws_client *c, const aws_request *rq, aws_done_fn done, void *arg)
{
	areq *q = calloc(1, sizeof(*q));
	if (q == NULL) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\"}\n");
		abort();
	}
	q->q_mem.chunk_size = 2048;
	arena *a = &q->q_mem;
	q->q_rq.service = dup_str(a, rq->service ? rq->service : "");
	q->q_rq.endpoint_id = dup_str(a, rq->endpoint_id);
	q->q_rq.host = dup_str(a, rq->host);
	q->q_rq.region = dup_str(a, rq->region && rq->region[0] ? rq->region : c->c_region);
	q->q_rq.method = dup_str(a, rq->method ? rq->method : "POST");
	q->q_rq.path = dup_str(a, rq->path && rq->path[0] ? rq->path : "/");
	q->q_rq.query = dup_str(a, rq->query && rq->query[0] ? rq->query : NULL);
	q->q_rq.content_type = dup_str(a, rq->content_type);
	q->q_rq.target = dup_str(a, rq->target);
	for (int i = 0; i < 8 && rq->headers[i]; i++)
		q->q_rq.headers[i] = dup_str(a, rq->headers[i]);
	q->q_rq.body = arena_strndup(a, rq->body, rq->body ? rq->body_len : 0);
	q->q_rq.body_len = rq->body ? rq->body_len : 0;
	q->q_rq.s3_bucket = dup_str(a, rq->s3_bucket && rq->s3_bucket[0] ? rq->s3_bucket : NULL);
	q->q_rq.role_arn = dup_str(a, c->c_opts.assume_role && rq->role_arn && rq->role_arn[0] ? rq->role_arn : NULL);
	q->q_rq.url = dup_str(a, rq->url && rq->url[0] ? rq->url : NULL);
	q->q_done = done;
	q->q_arg = arg;
	q->q_deadline = mono_ms() + c->c_opts.timeout_ms;
	atomic_fetch_add(&c->c_inflight, 1);
	pthread_mutex_lock(&c->c_mu);
	if (c->c_closing) {
		pthread_mutex_unlock(&c->c_mu);
		req_fail(c, q, "client closed");
		return;
	}
	if (c->c_queue_tail)
		c->c_queue_tail->q_next = q;
	else
		c->c_queue = q;
	c->c_queue_tail = q;
	curl_multi_wakeup(c->c_multi);
	pthread_mutex_unlock(&c->c_mu);
}

/* ---- building and starting a request (client's thread) ------------------------ */

static const struct ep_cache *
endpoint_of(aws_client *c, const char *id)
{
	for (int i = 0; i < c->c_neps; i++)
		if (strcmp(c->c_eps[i].id, id) == 0)
			return &c->c_eps[i];
	static _Thread_local struct ep_cache tmp;
	struct ep_cache *e = c->c_neps < EP_CACHE ? &c->c_eps[c->c_neps++] : &tmp;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->found = awsconf_endpoint(id, e->url, sizeof(e->url)) == 0;
	if (e->found) {
		size_t n = strlen(e->url);
		while (n > 0 && e->url[n - 1] == '/')
			e->url[--n] = 0;
		log_info("aws: endpoint of %s: %s", id, e->url);
	}
	return e;
}

static void
build_url(aws_client *c, const aws_request *rq, buf *url)
{
	char id[64];
	if (rq->endpoint_id && rq->endpoint_id[0])
		snprintf(id, sizeof(id), "%s", rq->endpoint_id);
	else {
		size_t i;
		for (i = 0; rq->service[i] && i + 1 < sizeof(id); i++)
			id[i] = (char)toupper((unsigned char)rq->service[i]);
		id[i] = 0;
	}
	const struct ep_cache *ep = endpoint_of(c, id);
	const char *bucket = rq->s3_bucket;
	if (rq->url) {
		size_t n = strlen(rq->url);
		while (n > 0 && rq->url[n - 1] == '/')
			n--;
		buf_add(url, rq->url, n);
	} else if (ep->found) {
		buf_adds(url, ep->url);
		if (bucket)
			buf_printf(url, "/%s", bucket);
	} else {
		const char *tpl = rq->host ? rq->host : "{service}.{region}.amazonaws.com";
		buf_adds(url, "https://");
		/* Virtual-hosted S3, unless the bucket's dots would break TLS. */
		if (bucket && strchr(bucket, '.') == NULL)
			buf_printf(url, "%s.", bucket);
		for (const char *p = tpl; *p;) {
			if (strncmp(p, "{region}", 8) == 0) {
				buf_adds(url, rq->region);
				p += 8;
			} else if (strncmp(p, "{service}", 9) == 0) {
				buf_adds(url, rq->service);
				p += 9;
			} else
				buf_addc(url, *p++);
		}
		if (bucket && strchr(bucket, '.'))
			buf_printf(url, "/%s", bucket);
	}
	buf_adds(url, rq->path[0] == '/' ? "" : "/");
	buf_adds(url, rq->path);
	if (rq->query)
		buf_printf(url, "?%s", rq->query);
}

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
	areq *q = arg;
	buf_add(&q->q_body, p, sz * n);
	return sz * n;
}

static size_t
on_header(char *p, size_t sz, size_t n, void *arg)
{
	areq *q = arg;
	size_t len = sz * n;
	char line[512];
	snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
	line[strcspn(line, "\r\n")] = 0;
	char *v = strchr(line, ':');
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new answer (after a redirect or a 100): forget the last. */
		q->q_errtype[0] = 0;
		q->q_funcerr[0] = 0;
		q->q_retry_after_ms = 0;
		return len;
	}
	if (v == NULL)
		return len;
	*v++ = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(line, "x-amzn-ErrorType") == 0)
		snprintf(q->q_errtype, sizeof(q->q_errtype), "%s", v);
	else if (strcasecmp(line, "X-Amz-Function-Error") == 0)
		snprintf(q->q_funcerr, sizeof(q->q_funcerr), "%s", v);
	else if (strcasecmp(line, "Retry-After") == 0 && q->q_retry_after_ms == 0) {
		char *end;
		long s = strtol(v, &end, 10);
		if (end != v && *end == 0 && s >= 0)
			q->q_retry_after_ms = s > 86400 ? 86400000 : (int)s * 1000;
		else {
			time_t t = curl_getdate(v, NULL), now = time(NULL);
			if (t > now)
				q->q_retry_after_ms = t - now > 86400 ? 86400000 : (int)(t - now) * 1000;
		}
	} else if (strcasecmp(line, "x-amz-retry-after") == 0) {
		/* Milliseconds; it wins over Retry-After. */
		long ms = strtol(v, NULL, 10);
		if (ms > 0)
			q->q_retry_after_ms = ms > 86400000 ? 86400000 : (int)ms;
	}
	return len;
}

static int
add_header(struct curl_slist **sl, const char *line)
{
	struct curl_slist *t = curl_slist_append(*sl, line);
	if (t == NULL)
		return -1;
	*sl = t;
	return 0;
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* libcurl 7.88 signs the path as CURLOPT_URL holds it, while every AWS
 * service but S3 signs the path it receives URI-encoded once more
 * (BACKENDS.md caveat 1d).  For a path with %-escapes (an OpenSearch
 * document id with a space, ':' or 'é') the URL libcurl signs is the
 * path with each '%' encoded again ("%20" -> "%2520", exactly what the
 * server computes), and CURLOPT_REQUEST_TARGET sends the path as it is.
 * So libcurl still does all the signing.  Fills *signed_url and *target
 * and returns 1 when the request needs this, else 0. */
static int
twice_encoded(const aws_request *rq, const char *url, buf *signed_url, buf *target)
{
	if (strcmp(rq->service, "s3") == 0 || strchr(rq->path, '%') == NULL)
		return 0;
	const char *host = strstr(url, "://");
	host = host ? host + 3 : url;
	const char *path = host + strcspn(host, "/?");
	size_t pn = strcspn(path, "?");
	buf_add(signed_url, url, (size_t)(path - url));
	for (size_t i = 0; i < pn; i++) {
		if (path[i] == '%')
			buf_adds(signed_url, "%25");
		else
			buf_addc(signed_url, path[i]);
	}
	buf_adds(signed_url, path + pn);
	buf_adds(target, path);
	return 1;
}

/* Starts q with the credentials cr: 0 on the multi handle, -1 failed
 * (q already completed). */
static int
req_start(aws_client *c, areq *q, const awsconf_creds *cr)
{
	const aws_request *rq = &q->q_rq;
	buf url = BUF_ZERO, line = BUF_ZERO;
	int bad = 0;
	build_url(c, rq, &url);
	int get_like = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0 ||
	    (strcmp(rq->method, "POST") != 0 && strcmp(rq->method, "PUT") != 0 && rq->body_len == 0);
	const char *ct = rq->content_type ? rq->content_type : get_like ? NULL : "application/octet-stream";
	if (ct) {
		buf_printf(&line, "Content-Type: %s", ct);
		bad |= add_header(&q->q_hdrs, line.data);
	}
	if (rq->target) {
		buf_reset(&line);
		buf_printf(&line, "X-Amz-Target: %s", rq->target);
		bad |= add_header(&q->q_hdrs, line.data);
	}
	if (cr->session_token[0]) {
		buf_reset(&line);
		buf_printf(&line, "X-Amz-Security-Token: %s", cr->session_token);
		bad |= add_header(&q->q_hdrs, line.data);
		explicit_bzero(line.data, line.len);
	}
	if (strcmp(rq->service, "s3") == 0) {
		char hex[65];
		sha256_hex(rq->body, rq->body_len, hex);
		buf_reset(&line);
		buf_printf(&line, "x-amz-content-sha256: %s", hex);
		bad |= add_header(&q->q_hdrs, line.data);
	}
	/* No "Expect:" header to disable 100-continue: libcurl 7.88 signs an
	 * emptied header ("expect" in SignedHeaders) that it then does not
	 * send, so every signature would be wrong.  libcurl adds
	 * "Expect: 100-continue" by itself only to bodies over 1 MB, unsigned,
	 * which servers accept. */
	for (int i = 0; i < 8 && rq->headers[i]; i++)
		bad |= add_header(&q->q_hdrs, rq->headers[i]);
	buf_free(&line);
	buf signed_url = BUF_ZERO, target = BUF_ZERO;
	int twice = twice_encoded(rq, url.data, &signed_url, &target);

	CURL *h = c->c_nidle ? c->c_idle[--c->c_nidle] : curl_easy_init();
	if (h == NULL || bad) {
		if (h)
			curl_easy_cleanup(h);
		buf_free(&url);
		buf_free(&signed_url);
		buf_free(&target);
		req_fail(c, q, "out of memory building the request");
		return -1;
	}
	q->q_h = h;
	char sigv4[160];
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:%s", rq->region, rq->service);
	curl_easy_setopt(h, CURLOPT_URL, twice ? signed_url.data : url.data);
	if (twice)
		curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, target.data);
	curl_easy_setopt(h, CURLOPT_PRIVATE, q);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, q->q_hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, q->q_ebuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->c_opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->c_opts.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "iotrules");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (c->c_ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->c_ca_file);
	if (c->c_connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->c_connect_to);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, cr->access_key);
	curl_easy_setopt(h, CURLOPT_PASSWORD, cr->secret_key);
	if (strcmp(rq->method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (get_like) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (strcmp(rq->method, "GET") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	} else {
		/* In memory, so that libcurl 7.88 signs the payload (caveat 1b). */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		if (strcmp(rq->method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	buf_free(&url);   /* libcurl keeps copies of string options */
	buf_free(&signed_url);
	buf_free(&target);
	CURLMcode mc = curl_multi_add_handle(c->c_multi, h);
	if (mc != CURLM_OK) {
		curl_easy_cleanup(h);
		q->q_h = NULL;
		req_fail(c, q, curl_multi_strerror(mc));
		return -1;
	}
	q->q_prev = NULL;
	q->q_next = c->c_active;
	if (c->c_active)
		c->c_active->q_prev = q;
	c->c_active = q;
	return 0;
}

/* Starts q if its credentials are there: 1 waits (still q's), else done
 * with q. */
static int
req_try(aws_client *c, areq *q)
{
	awsconf_creds cr;
	char err[600];
	int rc = awscreds_get(c->c_creds, q->q_rq.role_arn, &cr, &q->q_gen, err, sizeof(err));
	if (rc == 0) {
		req_start(c, q, &cr);
		explicit_bzero(&cr, sizeof(cr));
		return 0;
	}
	if (rc < 0 || mono_ms() >= q->q_deadline) {
		char why[700];
		snprintf(why, sizeof(why), "credentials unavailable: %s", rc < 0 ? err : "timed out waiting for them");
		req_fail(c, q, why);
		return 0;
	}
	return 1;
}

static void
active_remove(aws_client *c, areq *q)
{
	if (q->q_prev)
		q->q_prev->q_next = q->q_next;
	else
		c->c_active = q->q_next;
	if (q->q_next)
		q->q_next->q_prev = q->q_prev;
	curl_multi_remove_handle(c->c_multi, q->q_h);
	if (c->c_nidle < IDLE_HANDLES) {
		curl_easy_reset(q->q_h);
		c->c_idle[c->c_nidle++] = q->q_h;
	} else
		curl_easy_cleanup(q->q_h);
	q->q_h = NULL;
}

static void
req_done(aws_client *c, areq *q, CURLcode res)
{
	long status = 0;
	char code[128] = "", msg[1024] = "";
	if (res == CURLE_OK)
		curl_easy_getinfo(q->q_h, CURLINFO_RESPONSE_CODE, &status);
	active_remove(c, q);
	if (res != CURLE_OK)
		snprintf(msg, sizeof(msg), "%s", q->q_ebuf[0] ? q->q_ebuf : curl_easy_strerror(res));
	else if (status >= 300 || status < 200)
		aws_parse_error(q->q_body.data, q->q_body.len, q->q_errtype, code, sizeof(code), msg, sizeof(msg));
	if (code[0] && in_list(code, expired_codes))
		awscreds_expired(c->c_creds, q->q_rq.role_arn, q->q_gen);
	buf_add(&q->q_body, "", 0);   /* NUL-terminated even when empty */
	aws_verdict v = aws_classify(status, code);
	if (v == AWS_OK && q->q_funcerr[0]) {
		/* Lambda answers 200 when the function itself failed; the
		 * body is its {"errorMessage", "errorType"}.  Permanent: the
		 * same event fails the same way. */
		cJSON *e = cJSON_ParseWithLength(q->q_body.data, q->q_body.len);
		const char *em = json_str(e, "errorMessage", "errorType");
		snprintf(code, sizeof(code), "FunctionError:%s", q->q_funcerr);
		snprintf(msg, sizeof(msg), "%s", em ? em : "the function failed");
		cJSON_Delete(e);
		v = AWS_PERMANENT;
	}
	aws_response r = {status, v, code, msg, q->q_retry_after_ms, q->q_body.data, q->q_body.len};
	req_finish(c, q, &r);
}

static void *
client_main(void *arg)
{
	aws_client *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->c_mu);
		areq *fresh = c->c_queue;
		c->c_queue = c->c_queue_tail = NULL;
		int closing = c->c_closing;
		pthread_mutex_unlock(&c->c_mu);
		if (closing) {
			while (fresh) {
				areq *q = fresh;
				fresh = q->q_next;
				req_fail(c, q, "client closed");
			}
			break;
		}
		/* Waiting requests first, in their order, then the new ones. */
		areq *w = c->c_waiting, *keep = NULL, **tail = &keep;
		c->c_waiting = NULL;
		for (int pass = 0; pass < 2; pass++) {
			while (w) {
				areq *q = w;
				w = q->q_next;
				q->q_next = NULL;
				if (req_try(c, q) == 1) {
					*tail = q;
					tail = &q->q_next;
				}
			}
			w = fresh;
		}
		c->c_waiting = keep;
		int running = 0;
		curl_multi_perform(c->c_multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(c->c_multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			CURLcode res = m->data.result;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
			req_done(c, (areq *)priv, res);
		}
		curl_multi_poll(c->c_multi, NULL, 0, c->c_waiting ? 100 : 1000, NULL);
	}
	/* Closing: whatever waits or flies ends now. */
	while (c->c_waiting) {
		areq *q = c->c_waiting;
		c->c_waiting = q->q_next;
		req_fail(c, q, "client closed");
	}
	while (c->c_active) {
		areq *q = c->c_active;
		active_remove(c, q);
		req_fail(c, q, "client closed");
	}
	return NULL;
}

/* ---- IOTRULES_AWS_CONNECT_TO -------------------------------------------------- */

/* One "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT" entry as libcurl's
 * CURLOPT_CONNECT_TO takes it: a host is empty (any), a name or an
 * [IPv6] address; a port is empty (any) or 1..65535.  1 when well formed:
 * libcurl itself would ignore a bad entry without a word. */
static int
connect_to_valid(const char *e)
{
	const char *p = e;
	for (int field = 0; field < 4; field++) {
		if (field % 2 == 0 && *p == '[') {
			const char *b = strchr(p, ']');
			if (b == NULL)
				return 0;
			p = b + 1;
		} else if (field % 2 == 0) {
			p += strcspn(p, ":[]");
		} else {
			long port = 0;
			const char *d = p;
			for (; isdigit((unsigned char)*p); p++)
				if ((port = port * 10 + (*p - '0')) > 65535)
					return 0;
			if (p > d && port == 0)
				return 0;
		}
		if (field < 3 && *p++ != ':')
			return 0;
	}
	return *p == 0;
}

/* The comma-separated entries of v as a libcurl list (spaces around
 * entries ignored); 0, or -1 with err naming the bad entry. */
static int
connect_to_parse(const char *v, struct curl_slist **out, char *err, size_t errcap)
{
	while (*v) {
		v += strspn(v, " \t,");
		size_t n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		char e[512];
		snprintf(e, sizeof(e), "%.*s", (int)n, v);
		if (n >= sizeof(e) || !connect_to_valid(e)) {
			snprintf(err, errcap, "IOTRULES_AWS_CONNECT_TO: \"%s\" is not HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT", e);
			return -1;
		}
		struct curl_slist *t = curl_slist_append(*out, e);
		if (t == NULL) {
			snprintf(err, errcap, "out of memory");
			return -1;
		}
		*out = t;
		v += strcspn(v, ",");
	}
	return 0;
}

static void
wake(void *arg)
{
	aws_client *c = arg;
	curl_multi_wakeup(c->c_multi);
}

aws_client *
aws_client_open(const aws_client_opts *o, char *err, size_t errcap)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errcap, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	aws_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	if (o)
		c->c_opts = *o;
	if (c->c_opts.timeout_ms <= 0)
		c->c_opts.timeout_ms = 10000;
	if (c->c_opts.connect_timeout_ms <= 0)
		c->c_opts.connect_timeout_ms = 3000;
	if (c->c_opts.max_connections <= 0)
		c->c_opts.max_connections = 16;
	if (awsconf_region(c->c_region, sizeof(c->c_region)) != 0 || c->c_region[0] == 0)
		snprintf(c->c_region, sizeof(c->c_region), "us-east-1");
	const char *ca = getenv("AWS_CA_BUNDLE");
	char cab[4096];
	if ((ca == NULL || *ca == 0) && awsconf_profile_value("ca_bundle", cab, sizeof(cab)) == 0)
		ca = cab;
	if (ca && *ca && (c->c_ca_file = strdup(ca)) == NULL) {
		free(c);
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	atomic_init(&c->c_inflight, 0);
	pthread_mutex_init(&c->c_mu, NULL);
	c->c_multi = curl_multi_init();
	if (c->c_multi == NULL) {
		snprintf(err, errcap, "curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(c->c_multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->c_opts.max_connections);
	curl_multi_setopt(c->c_multi, CURLMOPT_MAXCONNECTS, (long)c->c_opts.max_connections * 4);
	const char *ct = getenv("IOTRULES_AWS_CONNECT_TO");
	if (ct && *ct) {
		if (connect_to_parse(ct, &c->c_connect_to, err, errcap) < 0)
			goto fail;
		log_info("aws: IOTRULES_AWS_CONNECT_TO: %s", ct);
	}
	c->c_creds = awscreds_open(c->c_region, c->c_ca_file, wake, c, err, errcap);
	if (c->c_creds == NULL)
		goto fail;
	int rc = pthread_create(&c->c_thr, NULL, client_main, c);
	if (rc != 0) {
		snprintf(err, errcap, "cannot start the AWS client's thread: %s", strerror(rc));
		goto fail;
	}
	log_info("aws: region %s, credentials from %s", c->c_region, awscreds_source(c->c_creds));
	return c;
fail:
	awscreds_close(c->c_creds);
	curl_slist_free_all(c->c_connect_to);
	if (c->c_multi)
		curl_multi_cleanup(c->c_multi);
	pthread_mutex_destroy(&c->c_mu);
	free(c->c_ca_file);
	free(c);
	return NULL;
}

void
aws_client_close(aws_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->c_mu);
	c->c_closing = 1;
	curl_multi_wakeup(c->c_multi);
	pthread_mutex_unlock(&c->c_mu);
	pthread_join(c->c_thr, NULL);
	awscreds_close(c->c_creds);
	for (int i = 0; i < c->c_nidle; i++)
		curl_easy_cleanup(c->c_idle[i]);
	curl_multi_cleanup(c->c_multi);
	curl_slist_free_all(c->c_connect_to);
	pthread_mutex_destroy(&c->c_mu);
	free(c->c_ca_file);
	free(c);
}

/* ---- aws_call ---------------------------------------------------------------------- */

struct call_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	aws_response *out;
};

static char *
copy_or_die(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p == NULL) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\"}\n");
		abort();
	}
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static void
call_done(void *arg, const aws_response *r)
{
	struct call_wait *w = arg;
	aws_response *o = w->out;
	*o = *r;
	o->error_code = copy_or_die(r->error_code, strlen(r->error_code));
	o->error_message = copy_or_die(r->error_message, strlen(r->error_message));
	o->body = copy_or_die(r->body, r->body_len);
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
aws_call(aws_client *c, const aws_request *rq, aws_response *out)
{
	struct call_wait w = {.done = 0, .out = out};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	aws_send(c, rq, call_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
}

void
aws_response_free(aws_response *r)
{
	free((char *)r->error_code);
	free((char *)r->error_message);
	free((char *)r->body);
	r->error_code = r->error_message = r->body = NULL;
}

int
aws_lambda_target_parse(const char *fn, aws_lambda_target *t)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	memset(t, 0, sizeof(*t));
	const char *f = strstr(fn, ":function:");
	if (strncmp(fn, "arn:", 4) == 0 && (f == NULL || aws_arn_region(fn, t->region, sizeof(t->region)) < 0))
		return -1;
	const char *name = f ? f + 10 : strncmp(fn, "function:", 9) == 0 ? fn + 9 : fn;
	size_t n = strcspn(name, ":");
	if (n == 0 || n > 140)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (name[i] != '.' && strchr(chars, name[i]) == NULL)
			return -1;
	snprintf(t->path, sizeof(t->path), "/2015-03-31/functions/%.*s/invocations", (int)n, name);
	if (name[n] == 0)
		return 0;
	/* Qualifier: [a-zA-Z0-9$_-]{1,128}; '$' (of $LATEST) percent-encoded. */
	const char *q = name + n + 1;
	size_t len = strlen("Qualifier=");
	memcpy(t->query, "Qualifier=", len);
	if (q[0] == 0 || strlen(q) > 128)
		return -1;
	for (; *q; q++) {
		if (*q == '$') {
			memcpy(t->query + len, "%24", 3);
			len += 3;
		} else if (strchr(chars, *q)) {
			t->query[len++] = *q;
		} else {
			return -1;
		}
	}
	t->query[len] = 0;
	return 0;
}
