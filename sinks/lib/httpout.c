#include "sinks/lib/httpout.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/aws.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"

#define MAX_GROUP 10   /* AWS's most messages per batch */

/* A job handed to the thread, with what send learnt of its destination. */
typedef struct hjob {
	sink_job *j;
	int64_t t0;            /* when its first try began (a lower bound for retries) */
	char *ca;              /* CA file, or NULL: the system's */
	int allow_http;
	char *key;             /* batch group; NULL: not batched */
	int size_max, open_max, across;
	size_t bytes_max;
	struct hjob *next;
} hjob;

/* A request: one job, or a batch. */
typedef struct hreq {
	httpout *h;
	CURL *c;
	struct curl_slist *hdrs;
	buf body, answer;      /* answer: the first 512 bytes, for messages */
	size_t answer_len;
	int conn_close;
	hjob *jobs[MAX_GROUP];
	int n;
	char ebuf[CURL_ERROR_SIZE];
	struct hreq *prev, *next;   /* in flight on the multi handle */
} hreq;

typedef struct group {
	char *key;
	hjob *jobs[MAX_GROUP];
	int n;
	size_t bytes;          /* the body so far: "[" e1 "," e2 ... "]" */
	int64_t open_ms;
} group;

struct httpout {
	char *config_path;
	int retry_s;
	dest_list dests;                 /* the runtime's thread's */
	int any_url;                     /* httpout_any_url: no destinations needed */
	struct timespec mtime;
	off_t size;
	int64_t last_stat;

	pthread_t thr;
	pthread_mutex_t mu;
	hjob *in_head, *in_tail;         /* from send, under mu */
	int stop;
	CURLM *multi;
	group g[64];                     /* the thread's */
	int ng;
	hreq *running;                   /* curl requests in flight */
	aws_client *aws;
	char aws_err[300];
};

sink_status
httpout_verdict(httpout_end end, long status, size_t body_len, int conn_close, int retry_s, int64_t elapsed_ms,
    char *why, size_t cap)
{
	sink_status st;
	why[0] = 0;
	if (end == HTTPOUT_ANSWERED && status >= 200 && status <= 299)
		return SINK_OK;
	if (end == HTTPOUT_NO_CONNECT || end == HTTPOUT_OTHER)
		st = SINK_RETRY;
	else if (end == HTTPOUT_CLOSED)
		return snprintf(why, cap, "the server closed the connection without an answer (not retried)"), SINK_FATAL;
	else if (end == HTTPOUT_TLS)
		return snprintf(why, cap, "TLS: the certificate was not verified (not retried)"), SINK_FATAL;
	else if (end == HTTPOUT_TIMEOUT)
		st = SINK_RETRY;
	else if (body_len > HTTPOUT_RETRY_BODY_MAX)
		return snprintf(why, cap, "the answer's body is larger than 16384 bytes (not retried)"), SINK_FATAL;
	else if (status != 429 && (status < 500 || status > 599))
		return SINK_FATAL;
	else if (conn_close)
		return snprintf(why, cap, "the server closed the connection after its answer (not retried)"), SINK_FATAL;
	else
		st = status == 429 ? SINK_THROTTLED : SINK_RETRY;
	/* AWS's own rules end here; a budget (retry_s > 0) rides out the rest. */
	if (retry_s == 0 && (end == HTTPOUT_TIMEOUT || elapsed_ms > HTTPOUT_TIMEOUT_MS))
		return snprintf(why, cap, "the request timeout of %d ms was exceeded (not retried)", HTTPOUT_TIMEOUT_MS),
		    SINK_FATAL;
	return st;
}

/* ---- destinations --------------------------------------------------------- */

static void
reload(httpout *h, int force)
{
	struct stat st;
	if (h->config_path == NULL)
		return;
	if (stat(h->config_path, &st) != 0) {
		log_warn("%s: cannot stat: the destinations stay as they were", h->config_path);
		return;
	}
	if (!force && st.st_mtim.tv_sec == h->mtime.tv_sec && st.st_mtim.tv_nsec == h->mtime.tv_nsec &&
	    st.st_size == h->size)
		return;
	dest_list l;
	char err[800];
	if (dest_load(h->config_path, &l, err, sizeof(err)) < 0) {
		log_warn("%s; the destinations stay as they were", err);
		return;
	}
	h->mtime = st.st_mtim;
	h->size = st.st_size;
	dest_free(&h->dests);
	h->dests = l;
	log_info("%s: %d destination(s) loaded", h->config_path, l.n);
}

void
httpout_tick(httpout *h)
{
	int64_t now = proc_now_ms();
	int hup = proc_take_reload();   /* SIGHUP: read it even if it looks unchanged */
	if (hup || now - h->last_stat >= 1000) {
		h->last_stat = now;
		reload(h, hup);
	}
}

/* " (ARN is STATUS)" for a destination that covers a URL but is not
 * ENABLED; "" for none. */
static void
dest_state(const dest *d, char *out, size_t cap)
{
	if (d)
		snprintf(out, cap, " (%s is %s)", d->arn, dest_status_name(d->status));
	else
		out[0] = 0;
}

/* The destination that lets url through, or NULL with why set. */
static const dest *
allowed(const httpout *h, const char *url, char *why, size_t cap)
{
	static const dest any = {0};
	const dest *d = h->any_url ? &any : dest_for_url(&h->dests, url);
	if (d == NULL || d->status != DEST_ENABLED) {
		char state[400];
		dest_state(d, state, sizeof(state));
		snprintf(why, cap, "no ENABLED topic rule destination covers %s%s", url, state);
		return NULL;
	}
	if (strncmp(url, "http://", 7) == 0 && !d->allow_http) {
		snprintf(why, cap, "plain http is not allowed%s%s%s", d->arn ? " by destination " : "",
		    d->arn ? d->arn : "", d->arn ? " (allow_http)" : "");
		return NULL;
	}
	return d;
}

/* ---- prepare: what can be judged before any request ------------------------ */

static int
bad_header(const cJSON *hd)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(hd, "key");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(hd, "value");
	if (!cJSON_IsString(k) || !cJSON_IsString(v) || k->valuestring[0] == 0 || strlen(k->valuestring) > 256)
		return 1;
	/* A templated value must not smuggle in a header of its own. */
	return strpbrk(k->valuestring, ": \t\r\n") != NULL || strpbrk(v->valuestring, "\r\n") != NULL;
}

int
httpout_prepare(httpout *h, sink_job *j)
{
	const char *url = sink_param(j, "url"), *curl = sink_param(j, "confirmationUrl");
	const cJSON *hs = cJSON_GetObjectItemCaseSensitive(j->params, "headers");
	const cJSON *sig = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j->params, "auth"), "sigv4");
	char why[700] = "";
	snprintf(j->resource, sizeof(j->resource), "%s", url);
	j->solo = 1;   /* batches are made here (batchConfig is per action) */
	snprintf(j->dest, sizeof(j->dest), "%s", url);
	if (strlen(url) > 2000 || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
		snprintf(why, sizeof(why), "the url is not an http(s) URL of at most 2000 characters");
	else if (curl[0] && !dest_url_covers(curl, url))
		snprintf(why, sizeof(why), "the url does not start with the confirmationUrl %s", curl);
	else if (hs && (!cJSON_IsArray(hs) || cJSON_GetArraySize(hs) > 100))
		snprintf(why, sizeof(why), "headers must be a list of at most 100 {key, value}");
	else if (sig && (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sig, "signingRegion")) ||
	    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sig, "serviceName"))))
		snprintf(why, sizeof(why), "auth.sigv4 needs signingRegion and serviceName");
	else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j->params, "enableBatching"))) {
		cJSON *doc = cJSON_ParseWithLength(j->env.s[ENV_RESULT].p, j->env.s[ENV_RESULT].n);
		if (doc == NULL)
			snprintf(why, sizeof(why), "a binary (non-JSON) result cannot go into a batch's JSON array");
		cJSON_Delete(doc);
	}
	const cJSON *hd;
	cJSON_ArrayForEach(hd, hs)
		if (why[0] == 0 && bad_header(hd))
			snprintf(why, sizeof(why), "a header needs a key of 1-256 token characters and a value "
			    "without line breaks");
	if (why[0] == 0)
		allowed(h, url, why, sizeof(why));
	if (why[0]) {
		sink_error_message(j, "Failed to send an HTTP request", why);
		return -1;
	}
	buf_add(&j->entry, j->env.s[ENV_RESULT].p, j->env.s[ENV_RESULT].n);
	return 0;
}

/* ---- send ---------------------------------------------------------------------- */

static int
int_in(const cJSON *o, const char *k, int lo, int hi, int def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi ? (int)v->valuedouble : def;
}

void
httpout_send(httpout *h, sink_job **jobs, int n)
{
	for (int i = 0; i < n; i++) {
		sink_job *j = jobs[i];
		char why[700];
		/* The destination may have changed since prepare. */
		const dest *d = allowed(h, sink_param(j, "url"), why, sizeof(why));
		if (d == NULL) {
			sink_job_fail(j, SINK_FATAL, "Failed to send an HTTP request", why);
			continue;
		}
		hjob *hj = xcalloc(sizeof(*hj));
		hj->j = j;
		hj->t0 = j->first_fail_ms ? j->first_fail_ms : proc_now_ms();
		const char *ca = d->ca_file ? d->ca_file : getenv("AWS_CA_BUNDLE");
		hj->ca = ca && *ca ? xmust(strdup(ca)) : NULL;
		hj->allow_http = d->allow_http;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j->params, "enableBatching"))) {
			const cJSON *bc = cJSON_GetObjectItemCaseSensitive(j->params, "batchConfig");
			hj->size_max = int_in(bc, "maxBatchSize", 2, 10, 10);
			hj->bytes_max = (size_t)int_in(bc, "maxBatchSizeBytes", 100, 131072, 5120);
			hj->open_max = int_in(bc, "maxBatchOpenMs", 5, 200, 20);
			int across = hj->across = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bc, "batchAcrossTopics"));
			char *auth = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j->params, "auth"));
			buf k = BUF_ZERO;
			buf_printf(&k, "%.*s\n%s\n%.*s\n%d %zu %d\n%s", (int)j->env.s[ENV_RULE].n, j->env.s[ENV_RULE].p,
			    sink_param(j, "url"), across ? 0 : (int)j->env.s[ENV_TOPIC].n, j->env.s[ENV_TOPIC].p,
			    hj->size_max, hj->bytes_max, hj->open_max, auth ? auth : "");
			free(auth);
			hj->key = k.data;
		}
		pthread_mutex_lock(&h->mu);
		if (h->in_tail)
			h->in_tail->next = hj;
		else
			h->in_head = hj;
		h->in_tail = hj;
		pthread_mutex_unlock(&h->mu);
	}
	curl_multi_wakeup(h->multi);
}

/* ---- requests (the thread's) ------------------------------------------------- */

static void
hjob_free(hjob *hj)
{
	free(hj->ca);
	free(hj->key);
	free(hj);
}

/* Completes every job of a request with one verdict. */
static void
finish(hreq *r, sink_status st, const char *received)
{
	char what[200];
	snprintf(what, sizeof(what), r->n > 1 ? "Failed to send a batch of %d messages in an HTTP request"
	    : "Failed to send an HTTP request", r->n);
	char batch[40] = "";
	if (r->jobs[0]->key && st != SINK_OK) {   /* one error document for the batch */
		uint64_t id;
		arc4random_buf(&id, sizeof(id));
		snprintf(batch, sizeof(batch), "%016llx", (unsigned long long)id);
	}
	for (int i = 0; i < r->n; i++) {
		sink_job *j = r->jobs[i]->j;
		snprintf(j->batch, sizeof(j->batch), "%s", batch);
		j->batch_size = r->n;
		j->batch_across = r->jobs[i]->across;
		if (st == SINK_OK)
			sink_job_done(j, SINK_OK);
		else
			sink_job_fail(j, st, what, received);
		hjob_free(r->jobs[i]);
	}
	if (r->c)
		curl_easy_cleanup(r->c);
	curl_slist_free_all(r->hdrs);
	buf_free(&r->body);
	buf_free(&r->answer);
	free(r);
}

static void
judge(hreq *r, httpout_end end, long status, const char *detail)
{
	char why[300], received[900];
	int64_t elapsed = proc_now_ms() - r->jobs[0]->t0;
	sink_status st = httpout_verdict(end, status, r->answer_len, r->conn_close, r->h->retry_s, elapsed, why,
	    sizeof(why));
	if (end == HTTPOUT_ANSWERED)
		snprintf(received, sizeof(received), "HTTP %ld%s%s: %.300s", status, why[0] ? ", " : "", why,
		    r->answer.data ? r->answer.data : "");
	else
		snprintf(received, sizeof(received), "%s%s%s", detail, why[0] ? "; " : "", why);
	finish(r, st, received);
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	hreq *r = arg;
	size_t k = size * n;
	if (r->answer.len < 512)
		buf_add(&r->answer, p, k < 512 - r->answer.len ? k : 512 - r->answer.len);
	r->answer_len += k;   /* counted whole: AWS's 16 KiB rule */
	return k;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	hreq *r = arg;
	size_t k = size * n;
	if (k >= 11 && strncasecmp(p, "connection:", 11) == 0) {
		const char *v = p + 11;
		while (*v == ' ')
			v++;
		r->conn_close = strncasecmp(v, "close", 5) == 0;
	}
	return k;
}

static void
on_signed(void *arg, const aws_response *a)
{
	hreq *r = arg;
	r->answer_len = a->body_len;
	buf_add(&r->answer, a->body, a->body_len < 512 ? a->body_len : 512);
	httpout_end end = a->status ? HTTPOUT_ANSWERED
	    : strstr(a->error_message, "Empty reply") ? HTTPOUT_CLOSED
	    : strstr(a->error_message, "imed out") ? HTTPOUT_TIMEOUT : HTTPOUT_NO_CONNECT;
	judge(r, end, a->status, a->error_message);
}

/* The headers of the request: the last job's (AWS's rule for batches). */
static int
add_headers(hreq *r, const cJSON *params, int batch, const char **ctype, const char **list, int cap)
{
	int n = 0;
	const cJSON *hd;
	cJSON_ArrayForEach(hd, cJSON_GetObjectItemCaseSensitive(params, "headers")) {
		const char *k = cJSON_GetObjectItemCaseSensitive(hd, "key")->valuestring;
		const char *v = cJSON_GetObjectItemCaseSensitive(hd, "value")->valuestring;
		if (strcasecmp(k, "content-type") == 0) {
			if (!batch)
				*ctype = v;
			continue;
		}
		buf line = BUF_ZERO;
		buf_printf(&line, v[0] ? "%s: %s" : "%s;", k, v);   /* "k;" is curl's empty header */
		if (list) {
			if (n >= cap)
				return buf_free(&line), -1;
			list[n] = xmust(strdup(line.data));
		} else {
			struct curl_slist *s = curl_slist_append(r->hdrs, line.data);
			if (s == NULL)
				log_die(111, "out of memory");
			r->hdrs = s;
		}
		n++;
		buf_free(&line);
	}
	return n;
}

/* A signed request: through the AWS client (SigV4 by libcurl with its
 * workarounds), at most 8 headers. */
static void
start_signed(httpout *h, hreq *r, const cJSON *params, const char *url, const char *ctype)
{
	const cJSON *sig = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(params, "auth"), "sigv4");
	if (h->aws == NULL && h->aws_err[0] == 0) {
		aws_client_opts o = {.timeout_ms = HTTPOUT_TIMEOUT_MS};
		h->aws = aws_client_open(&o, h->aws_err, sizeof(h->aws_err));
		if (h->aws == NULL)
			log_error("auth.sigv4: %s", h->aws_err);
	}
	const char *list[8] = {NULL};
	int nh = add_headers(r, params, r->jobs[0]->key != NULL, &ctype, list, 8);
	if (h->aws == NULL || nh < 0) {
		finish(r, SINK_FATAL, h->aws == NULL ? h->aws_err : "auth.sigv4: at most 8 headers can be signed here");
		for (int i = 0; i < 8; i++)
			free((char *)list[i]);
		return;
	}
	/* The client takes a base URL and the path and query apart. */
	const char *auth = strstr(url, "://") + 3, *path = auth + strcspn(auth, "/?#");
	buf base = BUF_ZERO, p = BUF_ZERO;
	buf_add(&base, url, (size_t)(path - url));
	buf_add(&p, path, strcspn(path, "?#"));
	const char *q = strchr(path, '?');
	aws_request rq = {.service = cJSON_GetObjectItemCaseSensitive(sig, "serviceName")->valuestring,
	    .region = cJSON_GetObjectItemCaseSensitive(sig, "signingRegion")->valuestring,
	    .url = base.data, .path = p.len ? p.data : "/", .query = q ? q + 1 : NULL, .content_type = ctype,
	    .body = r->body.data, .body_len = r->body.len};
	for (int i = 0; i < 8; i++)
		rq.headers[i] = list[i];
	aws_send(h->aws, &rq, on_signed, r);
	for (int i = 0; i < 8; i++)
		free((char *)list[i]);
	buf_free(&base);
	buf_free(&p);
}

static void
start(httpout *h, hjob **jobs, int n)
{
	hreq *r = xcalloc(sizeof(*r));
	r->h = h;
	r->n = n;
	memcpy(r->jobs, jobs, (size_t)n * sizeof(*jobs));
	const sink_job *last = jobs[n - 1]->j;
	const char *url = sink_param(last, "url");
	const char *ctype = "application/json";
	if (jobs[0]->key == NULL) {
		const env_slice *res = &last->env.s[ENV_RESULT];
		cJSON *doc = cJSON_ParseWithLength(res->p, res->n);
		if (doc == NULL)
			ctype = "application/octet-stream";
		cJSON_Delete(doc);
		buf_add(&r->body, res->p, res->n);
	} else {
		buf_addc(&r->body, '[');
		for (int i = 0; i < n; i++) {
			if (i)
				buf_addc(&r->body, ',');
			buf_add(&r->body, jobs[i]->j->entry.data, jobs[i]->j->entry.len);
		}
		buf_addc(&r->body, ']');
	}
	if (cJSON_GetObjectItemCaseSensitive(last->params, "auth")) {
		start_signed(h, r, last->params, url, ctype);
		return;
	}
	add_headers(r, last->params, jobs[0]->key != NULL, &ctype, NULL, 0);
	buf ct = BUF_ZERO;
	buf_printf(&ct, "Content-Type: %s", ctype);
	struct curl_slist *s = curl_slist_append(r->hdrs, ct.data);
	if (s)
		s = curl_slist_append(r->hdrs = s, "Expect:");   /* no 1 s wait for a 100 Continue */
	buf_free(&ct);
	r->c = curl_easy_init();
	if (s == NULL || r->c == NULL)
		log_die(111, "out of memory");
	r->hdrs = s;
	CURL *c = r->c;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PRIVATE, r);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, jobs[0]->allow_http ? "https,http" : "https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->ebuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTPOUT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "iotrules");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (jobs[0]->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, jobs[0]->ca);
	if (curl_multi_add_handle(h->multi, c) != CURLM_OK) {
		judge(r, HTTPOUT_OTHER, 0, "curl_multi_add_handle failed");
		return;
	}
	r->next = h->running;
	if (r->next)
		r->next->prev = r;
	h->running = r;
}

static void
unlink_req(httpout *h, hreq *r)
{
	curl_multi_remove_handle(h->multi, r->c);
	if (r->prev)
		r->prev->next = r->next;
	else
		h->running = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static httpout_end
end_of(CURLcode cc, CURL *c)
{
	curl_off_t pre = 0;
	switch (cc) {
	case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
		return HTTPOUT_NO_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pre);
		return pre == 0 ? HTTPOUT_NO_CONNECT : HTTPOUT_TIMEOUT;
	case CURLE_GOT_NOTHING: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_PARTIAL_FILE:
		return HTTPOUT_CLOSED;
	case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CONNECT_ERROR: case CURLE_SSL_CACERT_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_SSL_CERTPROBLEM:
		return HTTPOUT_TLS;
	default:
		return HTTPOUT_OTHER;
	}
}

/* Jobs not sent because the sink stops: redone after the restart. */
static void
drop(hjob **jobs, int n)
{
	for (int i = 0; i < n; i++) {
		sink_job_fail(jobs[i]->j, SINK_RETRY, "Failed to send an HTTP request", "the sink stopped");
		hjob_free(jobs[i]);
	}
}

static void
flush(httpout *h, int gi)
{
	group *g = &h->g[gi];
	start(h, g->jobs, g->n);
	free(g->key);
	h->g[gi] = h->g[--h->ng];
}

/* Adds a job to its batch: the batch leaves first if this job would
 * overflow its bytes, and at once when full. */
static void
add(httpout *h, hjob *hj)
{
	int gi = 0;
	while (gi < h->ng && strcmp(h->g[gi].key, hj->key) != 0)
		gi++;
	size_t len = hj->j->entry.len;
	if (gi < h->ng && h->g[gi].bytes + len + 1 > hj->bytes_max) {
		flush(h, gi);
		gi = h->ng;
	}
	if (gi == h->ng) {
		if (h->ng == (int)(sizeof(h->g) / sizeof(h->g[0])))
			flush(h, 0);   /* the oldest-created group leaves early */
		gi = h->ng++;
		h->g[gi] = (group){.key = xmust(strdup(hj->key)), .bytes = 1, .open_ms = proc_now_ms()};
	}
	group *g = &h->g[gi];
	g->jobs[g->n++] = hj;
	g->bytes += len + 1;
	if (g->n >= hj->size_max || g->bytes >= hj->bytes_max)
		flush(h, gi);
}

static void *
thread_main(void *arg)
{
	httpout *h = arg;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		hjob *in = h->in_head;
		h->in_head = h->in_tail = NULL;
		int stop = h->stop;
		pthread_mutex_unlock(&h->mu);
		while (in) {
			hjob *nx = in->next;
			if (stop)
				drop(&in, 1);
			else if (in->key)
				add(h, in);
			else
				start(h, &in, 1);
			in = nx;
		}
		int64_t now = proc_now_ms(), wait = 1000;
		for (int i = h->ng - 1; i >= 0; i--) {
			int64_t due = h->g[i].open_ms + h->g[i].jobs[0]->open_max;
			if (stop) {
				drop(h->g[i].jobs, h->g[i].n);
				free(h->g[i].key);
				h->g[i] = h->g[--h->ng];
			} else if (due <= now) {
				flush(h, i);
			} else if (due - now < wait) {
				wait = due - now;
			}
		}
		if (stop)
			break;
		int still;
		curl_multi_perform(h->multi, &still);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(h->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			hreq *r;
			long status = 0;
			CURL *c = m->easy_handle;
			CURLcode cc = m->data.result;
			curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			unlink_req(h, r);
			judge(r, cc == CURLE_OK ? HTTPOUT_ANSWERED : end_of(cc, c), status,
			    r->ebuf[0] ? r->ebuf : curl_easy_strerror(cc));
		}
		curl_multi_poll(h->multi, NULL, 0, (int)(wait > 0 ? wait : 1), NULL);
	}
	/* Stopping: what is still in flight is redone after the restart. */
	while (h->running) {
		hreq *r = h->running;
		unlink_req(h, r);
		finish(r, SINK_RETRY, "the sink stopped before the answer");
	}
	return NULL;
}

void
httpout_any_url(httpout *h)
{
	h->any_url = 1;
}

httpout *
httpout_open(const char *config_path, int retry_s, char *err, size_t cap)
{
	httpout *h = xcalloc(sizeof(*h));
	h->retry_s = retry_s;
	if (config_path) {
		h->config_path = xmust(strdup(config_path));
		struct stat st;
		if (dest_load(config_path, &h->dests, err, cap) < 0 || stat(config_path, &st) != 0) {
			free(h->config_path);
			free(h);
			return NULL;
		}
		h->mtime = st.st_mtim;
		h->size = st.st_size;
	}
	h->last_stat = proc_now_ms();
	pthread_mutex_init(&h->mu, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	h->multi = curl_multi_init();
	if (h->multi == NULL || pthread_create(&h->thr, NULL, thread_main, h) != 0) {
		snprintf(err, cap, "cannot start the HTTP client");
		return NULL;
	}
	return h;
}

void
httpout_close(httpout *h)
{
	pthread_mutex_lock(&h->mu);
	h->stop = 1;
	pthread_mutex_unlock(&h->mu);
	curl_multi_wakeup(h->multi);
	pthread_join(h->thr, NULL);
	if (h->aws)
		aws_client_close(h->aws);   /* completes its requests */
	/* Jobs sent after the thread ended. */
	for (hjob *hj = h->in_head, *nx; hj; hj = nx) {
		nx = hj->next;
		sink_job_fail(hj->j, SINK_RETRY, "Failed to send an HTTP request", "the sink stopped");
		hjob_free(hj);
	}
	curl_multi_cleanup(h->multi);
	dest_free(&h->dests);
	free(h->config_path);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* ---- the rule loader's check ------------------------------------------------ */

static int
refuse(char *msg, size_t cap, const char *fmt, const char *a)
{
	snprintf(msg, cap, fmt, a);
	return -1;
}

/* 1 if o has the number k within [lo, hi] or no k at all. */
static int
in_range(const cJSON *o, const char *k, double lo, double hi)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return v == NULL || (cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
	    v->valuedouble == (double)(long)v->valuedouble);
}

int
httpout_check_action(const cJSON *params, const dest_list *dests, char *msg, size_t cap)
{
	static const char *const keys[] = {"url", "confirmationUrl", "headers", "auth", "enableBatching",
	    "batchConfig"};
	const cJSON *c;
	cJSON_ArrayForEach(c, params) {
		size_t i = 0;
		while (i < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[i], c->string) != 0)
			i++;
		if (i == sizeof(keys) / sizeof(keys[0]))
			return refuse(msg, cap, "unknown parameter '%s'", c->string);
	}
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(params, "url");
	const cJSON *cu = cJSON_GetObjectItemCaseSensitive(params, "confirmationUrl");
	if (!cJSON_IsString(u) || strlen(u->valuestring) > 2000)
		return refuse(msg, cap, "url must be a string of at most 2000 characters%s", "");
	const char *url = u->valuestring;
	int tpl = strstr(url, "${") != NULL;
	if (!tpl && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return refuse(msg, cap, "url %s is not an https:// URL", url);
	if (cu && !cJSON_IsString(cu))
		return refuse(msg, cap, "confirmationUrl must be a string%s", "");
	const char *conf = cu ? cu->valuestring : NULL;
	if (tpl && conf == NULL)
		return refuse(msg, cap, "url %s has a template: a confirmationUrl is needed (AWS)", url);
	if (conf && !tpl && !strstr(conf, "${") && !dest_url_covers(conf, url))
		return refuse(msg, cap, "url does not start with the confirmationUrl %s", conf);
	const cJSON *hs = cJSON_GetObjectItemCaseSensitive(params, "headers"), *hd;
	if (hs && (!cJSON_IsArray(hs) || cJSON_GetArraySize(hs) > 100))
		return refuse(msg, cap, "headers must be a list of at most 100 {key, value}%s", "");
	cJSON_ArrayForEach(hd, hs) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(hd, "key");
		if (!cJSON_IsString(k) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(hd, "value")) ||
		    k->valuestring[0] == 0 || strlen(k->valuestring) > 256 || cJSON_GetArraySize(hd) != 2)
			return refuse(msg, cap, "each header needs a key (1-256 characters) and a value%s", "");
	}
	const cJSON *auth = cJSON_GetObjectItemCaseSensitive(params, "auth");
	if (auth) {
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(auth, "sigv4");
		if (!cJSON_IsObject(auth) || cJSON_GetArraySize(auth) != 1 || !cJSON_IsObject(s) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, "signingRegion")) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, "serviceName")) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, "roleArn")))
			return refuse(msg, cap, "auth must be {\"sigv4\": {signingRegion, serviceName, roleArn}}%s",
			    "");
		if (cJSON_GetArraySize(hs) > 8)
			return refuse(msg, cap, "with auth.sigv4 at most 8 headers are supported here%s", "");
	}
	const cJSON *eb = cJSON_GetObjectItemCaseSensitive(params, "enableBatching");
	const cJSON *bc = cJSON_GetObjectItemCaseSensitive(params, "batchConfig");
	if (eb && !cJSON_IsBool(eb))
		return refuse(msg, cap, "enableBatching must be true or false%s", "");
	if (bc && (!cJSON_IsObject(bc) || !in_range(bc, "maxBatchOpenMs", 5, 200) ||
	    !in_range(bc, "maxBatchSize", 2, 10) || !in_range(bc, "maxBatchSizeBytes", 100, 131072) ||
	    (cJSON_GetObjectItemCaseSensitive(bc, "batchAcrossTopics") &&
	    !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(bc, "batchAcrossTopics")))))
		return refuse(msg, cap, "batchConfig out of range (maxBatchOpenMs 5-200, maxBatchSize 2-10, "
		    "maxBatchSizeBytes 100-131072, batchAcrossTopics a boolean)%s", "");
	cJSON_ArrayForEach(c, bc)
		if (strcmp(c->string, "maxBatchOpenMs") && strcmp(c->string, "maxBatchSize") &&
		    strcmp(c->string, "maxBatchSizeBytes") && strcmp(c->string, "batchAcrossTopics"))
			return refuse(msg, cap, "unknown batchConfig field '%s'", c->string);
	/* Which URL needs a destination: AWS's rule (ACTIONS.md 2.8). */
	const char *need = conf ? conf : url;
	if (strstr(need, "${"))
		return 0;   /* checked per delivery */
	const dest *d = dest_for_url(dests, need);
	if (d && d->status == DEST_ENABLED)
		return 0;
	char state[400];
	dest_state(d, state, sizeof(state));
	snprintf(msg, cap, "no ENABLED topic rule destination covers %s%s: its deliveries fail to the "
	    "errorAction until one is confirmed (iotrules destination confirm ARN)", need, state);
	return 1;
}

/* ---- the sink around it (httpout_sink_ops) --------------------------------- */

static struct {
	const char *config;
	int retry_s, with_config, any_url;
	int (*pre)(sink_job *j);
	httpout *out;
} SK = {.retry_s = 3600};   /* 3600: the runtime's default --retry-s */

static int
sk_option(void *state, int argc, char **argv, int *i)
{
	(void)state;
	if (strcmp(argv[*i], "--retry-s") == 0 && *i + 1 < argc) {
		SK.retry_s = atoi(argv[*i + 1]);   /* the runtime checks the value */
		return 0;
	}
	if (!SK.with_config || strcmp(argv[*i], "--config") != 0)
		return 0;
	if (*i + 1 >= argc)
		return -1;
	SK.config = argv[++*i];
	return 1;
}

static int
sk_start(void *state)
{
	(void)state;
	char err[800];
	SK.out = httpout_open(SK.config, SK.retry_s, err, sizeof(err));
	if (SK.out == NULL) {
		log_error("%s", err);
		return -1;
	}
	if (SK.any_url)
		httpout_any_url(SK.out);
	return 0;
}

static int
sk_prepare(void *state, sink_job *j)
{
	(void)state;
	if (SK.pre && SK.pre(j) < 0)
		return -1;
	return httpout_prepare(SK.out, j);
}

static void sk_send(void *state, sink_job **jobs, int n) { (void)state; httpout_send(SK.out, jobs, n); }
static void sk_tick(void *state) { (void)state; httpout_tick(SK.out); }

static void
sk_stop(void *state)
{
	(void)state;
	if (SK.out)
		httpout_close(SK.out);
	SK.out = NULL;
}

void
httpout_sink_ops(sink_ops *ops, int with_config, int any_url, int (*pre)(sink_job *j))
{
	SK.with_config = with_config;
	SK.any_url = any_url;
	SK.pre = pre;
	ops->option = sk_option;
	ops->start = sk_start;
	ops->prepare = sk_prepare;
	ops->send = sk_send;
	ops->tick = sk_tick;
	ops->stop = sk_stop;
	/* Every job goes alone to httpout, which batches per action as its
	 * batchConfig says. */
	ops->batch_max = 1;
	ops->linger_ms = 0;
}
