#include "common/awscreds.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/aws.h"
#include "common/buf.h"
#include "common/log.h"

enum src_kind { SRC_CONF, SRC_PROFILE_ROLE, SRC_WEB_IDENTITY, SRC_CONTAINER, SRC_IMDS };

/* One set of credentials: the chain's (base) or a role's.  Guarded by
 * awscreds.cr_mu. */
struct entry {
	char *e_role;              /* NULL: the base */
	awsconf_creds e_cur;
	int e_have;
	uint64_t e_gen;
	int64_t e_refresh_at;      /* wall ms; 0: never */
	int64_t e_valid_until;     /* used until then (see usable) */
	int64_t e_retry_at;        /* after a failed refresh */
	int e_want;                /* fetch as soon as possible */
	int e_busy;                /* being fetched */
	int e_fails;
	int e_failed;              /* the last fetch failed, at e_err_at */
	int64_t e_err_at;
	char e_err[512];
	struct entry *e_next;
};

struct awscreds {
	char cr_region[64];
	char *cr_ca_file;
	awscreds_notify_fn cr_notify;
	void *cr_notify_arg;
	enum src_kind cr_src;
	char cr_source[96];
	/* What the source needs (none of it secret). */
	char cr_role_arn[2048];
	char cr_session[128];
	char cr_external_id[1280];
	char cr_source_profile[256];
	char cr_credential_source[64];
	char cr_token_file[4096];
	char cr_sts_url[1024];

	pthread_mutex_t cr_mu;
	pthread_cond_t cr_cv;
	pthread_t cr_thr;
	atomic_int cr_stop;
	struct entry cr_base;
	struct entry *cr_roles;
};

/* Error texts may be cut at errcap: vsnprintf says so without a warning. */
static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap);
	va_end(ap);
}

#define STS_CONNECT_MS  2000
#define STS_TOTAL_MS    5000
#define IMDS_CONNECT_MS 1000
#define IMDS_TOTAL_MS   2000

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
awscreds_refresh_at(int64_t now, int64_t expires_ms)
{
	if (expires_ms <= 0)
		return 0;
	int64_t ttl = expires_ms - now, before = 5 * 60 * 1000;
	if (ttl / 2 < before)
		before = ttl / 2;
	return expires_ms - (before > 0 ? before : 0);
}

/* ---- parsing the replies ---------------------------------------------------- */

int
awscreds_parse_sts(const char *xml, awsconf_creds *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	const char *cr = xml ? strstr(xml, "<Credentials>") : NULL;
	char exp[64];
	if (cr == NULL || aws_xml_text(cr, "AccessKeyId", c->access_key, sizeof(c->access_key)) ||
	    aws_xml_text(cr, "SecretAccessKey", c->secret_key, sizeof(c->secret_key)) ||
	    aws_xml_text(cr, "SessionToken", c->session_token, sizeof(c->session_token)) ||
	    aws_xml_text(cr, "Expiration", exp, sizeof(exp))) {
		char code[128], msg[256];
		aws_parse_error(xml ? xml : "", xml ? strlen(xml) : 0, NULL, code, sizeof(code), msg, sizeof(msg));
		if (code[0])
			seterr(err, errcap, "%s: %s", code, msg);
		else
			seterr(err, errcap, "the reply has no Credentials with AccessKeyId, SecretAccessKey, "
			    "SessionToken and Expiration");
		return -1;
	}
	c->expires_ms = awsconf_parse_time(exp);
	if (c->expires_ms < 0) {
		seterr(err, errcap, "the reply's Expiration is not an ISO 8601 time");
		return -1;
	}
	return 0;
}

int
awscreds_parse_json(const char *json, awsconf_creds *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	cJSON *j = cJSON_Parse(json ? json : "");
	cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "Code");
	cJSON *ak = cJSON_GetObjectItemCaseSensitive(j, "AccessKeyId");
	cJSON *sk = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
	cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "Token");
	cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "Expiration");
	int rc = -1;
	if (j == NULL || !cJSON_IsObject(j))
		seterr(err, errcap, "the reply is not a JSON object");
	else if (cJSON_IsString(code) && strcmp(code->valuestring, "Success") != 0)
		seterr(err, errcap, "the reply's Code is \"%.100s\"", code->valuestring);
	else if (!cJSON_IsString(ak) || !cJSON_IsString(sk) || ak->valuestring[0] == 0)
		seterr(err, errcap, "the reply lacks AccessKeyId or SecretAccessKey");
	else if (exp && (!cJSON_IsString(exp) || awsconf_parse_time(exp->valuestring) < 0))
		seterr(err, errcap, "the reply's Expiration is not an ISO 8601 time");
	else {
		snprintf(c->access_key, sizeof(c->access_key), "%s", ak->valuestring);
		snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk->valuestring);
		snprintf(c->session_token, sizeof(c->session_token), "%s", cJSON_IsString(tok) ? tok->valuestring : "");
		c->expires_ms = exp ? awsconf_parse_time(exp->valuestring) : 0;
		rc = 0;
	}
	cJSON_Delete(j);
	return rc;
}

/* ---- blocking HTTP for the credential servers -------------------------------- */

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
	buf *b = arg;
	if (b->len + sz * n > (1u << 20))
		return 0;   /* no credential document is this big */
	buf_add(b, p, sz * n);
	return sz * n;
}

static int
on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	awscreds *cr = arg;
	return atomic_load(&cr->cr_stop) ? 1 : 0;
}

/* One request on its own easy handle.  body NULL: no body (GET unless
 * method says otherwise).  sign: SigV4 for STS.  0 with *status and out
 * set (whatever the status); -1 no answer (err says why). */
static int
http_do(awscreds *cr, const char *method, const char *url, const char *const *hdrs, const char *body,
    const awsconf_creds *sign, int connect_ms, int total_ms, long *status, buf *out, char *err, size_t errcap)
{
	CURL *h = curl_easy_init();
	if (h == NULL) {
		seterr(err, errcap, "curl_easy_init failed");
		return -1;
	}
	struct curl_slist *sl = NULL, *t;
	char ebuf[CURL_ERROR_SIZE] = "", line[4200], sigv4[128];
	int ok = 1;
	for (int i = 0; hdrs && hdrs[i] && ok; i++)
		ok = (t = curl_slist_append(sl, hdrs[i])) != NULL && (sl = t, 1);
	if (sign && sign->session_token[0]) {
		snprintf(line, sizeof(line), "X-Amz-Security-Token: %s", sign->session_token);
		ok = ok && (t = curl_slist_append(sl, line)) != NULL && (sl = t, 1);
	}
	explicit_bzero(line, sizeof(line));
	buf_reset(out);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)total_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, cr);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "iotrules");
	if (cr->cr_ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cr->cr_ca_file);
	if (strncmp(url, "http://", 7) == 0)
		curl_easy_setopt(h, CURLOPT_NOPROXY, "*");   /* link-local and loopback servers */
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (sign) {
		snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:sts", cr->cr_region);
		curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
		curl_easy_setopt(h, CURLOPT_USERNAME, sign->access_key);
		curl_easy_setopt(h, CURLOPT_PASSWORD, sign->secret_key);
	}
	int rc = -1;
	CURLcode cc = ok ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		rc = 0;
	} else
		seterr(err, errcap, "%s: %s", url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
	curl_easy_cleanup(h);
	curl_slist_free_all(sl);
	return rc;
}

/* Reads a small file (a token) without its trailing white space. */
static int
read_token(const char *path, buf *out, char *err, size_t errcap)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		seterr(err, errcap, "%s: %s", path, strerror(errno));
		return -1;
	}
	char tmp[4096];
	size_t n;
	buf_reset(out);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0 && out->len < (1u << 20))
		buf_add(out, tmp, n);
	fclose(f);
	while (out->len > 0 && isspace((unsigned char)out->data[out->len - 1]))
		out->data[--out->len] = 0;
	if (out->len == 0) {
		seterr(err, errcap, "%s is empty", path);
		return -1;
	}
	return 0;
}

/* "what failed: HTTP 403 AccessDenied: message" from an error answer. */
static void
http_error(const char *what, long status, const buf *body, char *err, size_t errcap)
{
	char code[128], msg[256];
	aws_parse_error(body->data ? body->data : "", body->len, NULL, code, sizeof(code), msg, sizeof(msg));
	seterr(err, errcap, "%s: HTTP %ld%s%s%s%s", what, status, code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

static void
form_add(buf *b, const char *key, const char *val)
{
	buf_printf(b, "%s%s=", b->len ? "&" : "", key);
	aws_uri_encode(b, val, strlen(val), 0);
}

/* STS AssumeRole (signed with src) or AssumeRoleWithWebIdentity (src
 * NULL, token given). */
static int
sts_call(awscreds *cr, const awsconf_creds *src, const char *role, const char *session, const char *external_id,
    const char *token, awsconf_creds *out, char *err, size_t errcap)
{
	buf body = BUF_ZERO, reply = BUF_ZERO;
	const char *action = src ? "AssumeRole" : "AssumeRoleWithWebIdentity";
	form_add(&body, "Action", action);
	if (src)
		form_add(&body, "DurationSeconds", "3600");
	if (external_id && external_id[0])
		form_add(&body, "ExternalId", external_id);
	form_add(&body, "RoleArn", role);
	form_add(&body, "RoleSessionName", session);
	form_add(&body, "Version", "2011-06-15");
	if (token)
		form_add(&body, "WebIdentityToken", token);
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: */*", NULL};
	long status = 0;
	char what[2300], e2[512];
	seterr(what, sizeof(what), "STS %s of %.1000s at %.1000s", action, role, cr->cr_sts_url);
	int rc = http_do(cr, "POST", cr->cr_sts_url, hdrs, body.data, src, STS_CONNECT_MS, STS_TOTAL_MS, &status, &reply,
	    e2, sizeof(e2));
	explicit_bzero(body.data, body.len);
	if (rc < 0)
		seterr(err, errcap, "STS %s of %.1000s: %s", action, role, e2);
	else if (status != 200) {
		http_error(what, status, &reply, err, errcap);
		rc = -1;
	} else if (awscreds_parse_sts(reply.data, out, e2, sizeof(e2)) < 0) {
		seterr(err, errcap, "%s: %s", what, e2);
		rc = -1;
	}
	if (reply.data)
		explicit_bzero(reply.data, reply.len);
	buf_free(&body);
	buf_free(&reply);
	return rc;
}

static int
fetch_web_identity(awscreds *cr, awsconf_creds *out, char *err, size_t errcap)
{
	buf tok = BUF_ZERO;
	char session[160];
	if (read_token(cr->cr_token_file, &tok, err, errcap) < 0) {
		buf_free(&tok);
		return -1;
	}
	if (cr->cr_session[0])
		snprintf(session, sizeof(session), "%s", cr->cr_session);
	else
		snprintf(session, sizeof(session), "iotrules-%lld", (long long)now_ms());
	int rc = sts_call(cr, NULL, cr->cr_role_arn, session, NULL, tok.data, out, err, errcap);
	explicit_bzero(tok.data, tok.len);
	buf_free(&tok);
	if (rc == 0)
		snprintf(out->source, sizeof(out->source), "web identity");
	return rc;
}

/* Plain HTTP is allowed only to loopback and the ECS/EKS agent addresses,
 * as the SDKs do. */
static int
container_url_ok(const char *url)
{
	if (strncmp(url, "https://", 8) == 0)
		return 1;
	if (strncmp(url, "http://", 7) != 0)
		return 0;
	const char *h = url + 7;
	static const char *const ok[] = {"127.", "localhost:", "localhost/", "[::1]", "169.254.170.2:",
	    "169.254.170.2/", "169.254.170.23:", "169.254.170.23/", "[fd00:ec2::23]"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(h, ok[i], strlen(ok[i])) == 0)
			return 1;
	return strcmp(h, "localhost") == 0 || strcmp(h, "169.254.170.2") == 0 || strcmp(h, "169.254.170.23") == 0;
}

static int
fetch_container(awscreds *cr, awsconf_creds *out, char *err, size_t errcap)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tfile = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tenv = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char url[2048], e2[512];
	if (rel && *rel)
		snprintf(url, sizeof(url), "http://169.254.170.2%s", rel);
	else if (full && *full)
		snprintf(url, sizeof(url), "%s", full);
	else {
		seterr(err, errcap, "container credentials: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
		    "AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
		return -1;
	}
	if (!(rel && *rel) && !container_url_ok(url)) {
		seterr(err, errcap, "AWS_CONTAINER_CREDENTIALS_FULL_URI %.1000s: plain http is allowed only to "
		    "loopback, 169.254.170.2 and 169.254.170.23", url);
		return -1;
	}
	buf tok = BUF_ZERO, reply = BUF_ZERO, auth = BUF_ZERO;
	int rc = 0;
	if (tfile && *tfile)
		rc = read_token(tfile, &tok, err, errcap);
	else if (tenv && *tenv)
		buf_adds(&tok, tenv);
	if (rc == 0 && tok.len && (strchr(tok.data, '\r') || strchr(tok.data, '\n'))) {
		seterr(err, errcap, "the container authorization token (%s) holds a line break",
		    tfile && *tfile ? tfile : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
		rc = -1;
	}
	long status = 0;
	if (rc == 0) {
		if (tok.len)
			buf_printf(&auth, "Authorization: %s", tok.data);
		const char *hdrs[] = {auth.len ? auth.data : "Accept: application/json", NULL};
		rc = http_do(cr, "GET", url, hdrs, NULL, NULL, STS_CONNECT_MS, STS_TOTAL_MS, &status, &reply, e2,
		    sizeof(e2));
		if (rc < 0)
			seterr(err, errcap, "container credentials: %s", e2);
		else if (status != 200) {
			char what[2100];
			seterr(what, sizeof(what), "container credentials at %.1000s", url);
			http_error(what, status, &reply, err, errcap);
			rc = -1;
		} else if (awscreds_parse_json(reply.data, out, e2, sizeof(e2)) < 0) {
			seterr(err, errcap, "container credentials at %.1000s: %s", url, e2);
			rc = -1;
		} else
			snprintf(out->source, sizeof(out->source), "container");
	}
	if (tok.data)
		explicit_bzero(tok.data, tok.len);
	if (auth.data)
		explicit_bzero(auth.data, auth.len);
	if (reply.data)
		explicit_bzero(reply.data, reply.len);
	buf_free(&tok);
	buf_free(&auth);
	buf_free(&reply);
	return rc;
}

static int
fetch_imds(awscreds *cr, awsconf_creds *out, char *err, size_t errcap)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char base[1024], url[2048], e2[512], role[256], hdr[1200];
	snprintf(base, sizeof(base), "%s", ep && *ep ? ep : "http://169.254.169.254");
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		base[--bl] = 0;
	buf reply = BUF_ZERO;
	long status = 0;
	int rc = -1;
	snprintf(url, sizeof(url), "%s/latest/api/token", base);
	const char *th[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
	if (http_do(cr, "PUT", url, th, "", NULL, IMDS_CONNECT_MS, IMDS_TOTAL_MS, &status, &reply, e2, sizeof(e2)) < 0)
		seterr(err, errcap, "IMDS: %s", e2);
	else if (status != 200 || reply.len == 0 || reply.len > 1000)
		seterr(err, errcap, "IMDS: PUT %s: HTTP %ld", url, status);
	else {
		snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", reply.data);
		const char *gh[] = {hdr, NULL};
		snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
		if (http_do(cr, "GET", url, gh, NULL, NULL, IMDS_CONNECT_MS, IMDS_TOTAL_MS, &status, &reply, e2,
		    sizeof(e2)) < 0)
			seterr(err, errcap, "IMDS: %s", e2);
		else if (status != 200 || reply.len == 0)
			seterr(err, errcap, "IMDS: GET %s: HTTP %ld (no instance profile?)", url, status);
		else {
			snprintf(role, sizeof(role), "%.*s", (int)strcspn(reply.data, "\r\n"), reply.data);
			snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", base, role);
			if (http_do(cr, "GET", url, gh, NULL, NULL, IMDS_CONNECT_MS, IMDS_TOTAL_MS, &status, &reply, e2,
			    sizeof(e2)) < 0)
				seterr(err, errcap, "IMDS: %s", e2);
			else if (status != 200)
				seterr(err, errcap, "IMDS: GET %s: HTTP %ld", url, status);
			else if (awscreds_parse_json(reply.data, out, e2, sizeof(e2)) < 0)
				seterr(err, errcap, "IMDS: %s: %s", url, e2);
			else {
				snprintf(out->source, sizeof(out->source), "imds");
				rc = 0;
			}
		}
	}
	explicit_bzero(hdr, sizeof(hdr));
	if (reply.data)
		explicit_bzero(reply.data, reply.len);
	buf_free(&reply);
	return rc;
}

/* The credentials a role profile's AssumeRole is signed with. */
static int
fetch_role_source(awscreds *cr, awsconf_creds *src, char *err, size_t errcap)
{
	if (cr->cr_source_profile[0]) {
		int rc = awsconf_profile_creds(cr->cr_source_profile, src, err, errcap);
		if (rc == 1)
			seterr(err, errcap, "source_profile %s has no credentials", cr->cr_source_profile);
		return rc == 0 ? 0 : -1;
	}
	if (strcmp(cr->cr_credential_source, "Environment") == 0) {
		const char *ak = getenv("AWS_ACCESS_KEY_ID");
		if (ak == NULL || *ak == 0) {
			seterr(err, errcap, "credential_source Environment: AWS_ACCESS_KEY_ID is not set");
			return -1;
		}
		return awsconf_creds_resolve(src, err, errcap) == 0 ? 0 : -1;
	}
	if (strcmp(cr->cr_credential_source, "Ec2InstanceMetadata") == 0)
		return fetch_imds(cr, src, err, errcap);
	if (strcmp(cr->cr_credential_source, "EcsContainer") == 0)
		return fetch_container(cr, src, err, errcap);
	seterr(err, errcap, "credential_source \"%.40s\" is none of Environment, Ec2InstanceMetadata, EcsContainer",
	    cr->cr_credential_source);
	return -1;
}

static int
fetch_base(awscreds *cr, awsconf_creds *out, char *err, size_t errcap)
{
	awsconf_creds src;
	int rc = -1;
	switch (cr->cr_src) {
	case SRC_CONF:
		rc = awsconf_creds_resolve(out, err, errcap);
		if (rc == 1)
			seterr(err, errcap, "the credentials found at start (%s) are gone", cr->cr_source);
		return rc == 0 ? 0 : -1;
	case SRC_PROFILE_ROLE: {
		char e2[512];
		if (fetch_role_source(cr, &src, e2, sizeof(e2)) < 0) {
			seterr(err, errcap, "%s: %s", cr->cr_source, e2);
			break;
		}
		rc = sts_call(cr, &src, cr->cr_role_arn, cr->cr_session[0] ? cr->cr_session : "iotrules",
		    cr->cr_external_id, NULL, out, err, errcap);
		explicit_bzero(&src, sizeof(src));
		break;
	}
	case SRC_WEB_IDENTITY:
		return fetch_web_identity(cr, out, err, errcap);
	case SRC_CONTAINER:
		return fetch_container(cr, out, err, errcap);
	case SRC_IMDS:
		return fetch_imds(cr, out, err, errcap);
	}
	if (rc == 0)
		snprintf(out->source, sizeof(out->source), "%.63s", cr->cr_source);
	return rc;
}

/* ---- the cache and its thread ------------------------------------------------ */

/* Credentials are used until a few seconds before they expire, so that
 * a request signed with them still arrives in time: 5 s, or a quarter of
 * their lifetime when that is shorter (test credentials of a few
 * seconds). */
static int
usable(const struct entry *e, int64_t now)
{
	return e->e_have && (e->e_cur.expires_ms == 0 || now < e->e_valid_until);
}

static void
set_creds(struct entry *e, const awsconf_creds *c, int64_t now)
{
	e->e_cur = *c;
	e->e_have = 1;
	e->e_gen++;
	e->e_refresh_at = awscreds_refresh_at(now, c->expires_ms);
	int64_t margin = (c->expires_ms - now) / 4;
	e->e_valid_until = c->expires_ms - (margin > 5000 ? 5000 : margin > 0 ? margin : 0);
	e->e_failed = 0;
	e->e_fails = 0;
	e->e_retry_at = 0;
}

/* The entry to fetch now, or NULL and *next the wall time to look again. */
static struct entry *
due(awscreds *cr, int64_t now, int64_t *next)
{
	*next = now + 60000;
	for (struct entry *e = &cr->cr_base; e; e = e == &cr->cr_base ? cr->cr_roles : e->e_next) {
		if (e->e_busy)
			continue;
		if (e->e_want)
			return e;
		if (e->e_have && e->e_refresh_at) {
			int64_t at = e->e_refresh_at > e->e_retry_at ? e->e_refresh_at : e->e_retry_at;
			if (now >= at)
				return e;
			if (at < *next)
				*next = at;
		}
	}
	return NULL;
}

static void *
refresh_main(void *arg)
{
	awscreds *cr = arg;
	pthread_mutex_lock(&cr->cr_mu);
	while (!atomic_load(&cr->cr_stop)) {
		int64_t now = now_ms(), next;
		struct entry *e = due(cr, now, &next);
		if (e == NULL) {
			struct timespec ts = {next / 1000, (next % 1000) * 1000000};
			pthread_cond_timedwait(&cr->cr_cv, &cr->cr_mu, &ts);
			continue;
		}
		awsconf_creds base, got;
		char err[512] = "";
		int rc;
		if (e->e_role && !usable(&cr->cr_base, now)) {
			if (cr->cr_base.e_failed && now - cr->cr_base.e_err_at < 1000 && !cr->cr_base.e_want) {
				/* The base cannot be had now: the role cannot either. */
				e->e_want = 0;
				e->e_failed = 1;
				e->e_err_at = now;
				snprintf(e->e_err, sizeof(e->e_err), "%.500s", cr->cr_base.e_err);
				pthread_mutex_unlock(&cr->cr_mu);
				cr->cr_notify(cr->cr_notify_arg);
				pthread_mutex_lock(&cr->cr_mu);
				continue;
			}
			e = &cr->cr_base;
			e->e_want = 1;
		}
		if (e->e_role)
			base = cr->cr_base.e_cur;
		e->e_busy = 1;
		pthread_mutex_unlock(&cr->cr_mu);
		if (e->e_role)
			rc = sts_call(cr, &base, e->e_role, "iotrules", NULL, NULL, &got, err, sizeof(err));
		else
			rc = fetch_base(cr, &got, err, sizeof(err));
		explicit_bzero(&base, sizeof(base));
		pthread_mutex_lock(&cr->cr_mu);
		e->e_busy = 0;
		e->e_want = 0;
		now = now_ms();
		if (rc == 0) {
			if (e->e_role)
				snprintf(got.source, sizeof(got.source), "assume role");
			set_creds(e, &got, now);
			if (got.expires_ms)
				log_info("aws: credentials of %.300s from %s, valid for %lld s",
				    e->e_role ? e->e_role : "the client", got.source, (long long)(got.expires_ms - now) / 1000);
			else
				log_info("aws: credentials of %.300s from %s, not expiring", e->e_role ? e->e_role : "the client",
				    got.source);
		} else {
			e->e_failed = 1;
			e->e_err_at = now;
			e->e_fails++;
			int back = e->e_fails > 5 ? 30000 : 1000 << (e->e_fails - 1);
			e->e_retry_at = now + (back > 30000 ? 30000 : back);
			seterr(e->e_err, sizeof(e->e_err), "%s", err);
			log_warn("aws: cannot refresh the credentials of %.300s: %s", e->e_role ? e->e_role : "the client", err);
		}
		explicit_bzero(&got, sizeof(got));
		pthread_mutex_unlock(&cr->cr_mu);
		cr->cr_notify(cr->cr_notify_arg);
		pthread_mutex_lock(&cr->cr_mu);
	}
	pthread_mutex_unlock(&cr->cr_mu);
	return NULL;
}

static struct entry *
find_entry(awscreds *cr, const char *role, int create)
{
	if (role == NULL || role[0] == 0)
		return &cr->cr_base;
	for (struct entry *e = cr->cr_roles; e; e = e->e_next)
		if (strcmp(e->e_role, role) == 0)
			return e;
	if (!create)
		return NULL;
	struct entry *e = calloc(1, sizeof(*e));
	char *r = strdup(role);
	if (e == NULL || r == NULL) {
		free(e);
		free(r);
		return NULL;
	}
	e->e_role = r;
	e->e_next = cr->cr_roles;
	cr->cr_roles = e;
	return e;
}

int
awscreds_get(awscreds *cr, const char *role_arn, awsconf_creds *out, uint64_t *gen, char *err, size_t errcap)
{
	pthread_mutex_lock(&cr->cr_mu);
	struct entry *e = find_entry(cr, role_arn, 1);
	int rc;
	int64_t now = now_ms();
	if (e == NULL) {
		seterr(err, errcap, "out of memory");
		rc = -1;
	} else if (usable(e, now)) {
		*out = e->e_cur;
		*gen = e->e_gen;
		rc = 0;
	} else if (e->e_failed && now - e->e_err_at < 1000 && !e->e_want) {
		seterr(err, errcap, "%s", e->e_err);
		rc = -1;
	} else {
		if (!e->e_want && !e->e_busy) {
			e->e_want = 1;
			pthread_cond_signal(&cr->cr_cv);
		}
		rc = 1;
	}
	pthread_mutex_unlock(&cr->cr_mu);
	return rc;
}

void
awscreds_expired(awscreds *cr, const char *role_arn, uint64_t gen)
{
	pthread_mutex_lock(&cr->cr_mu);
	struct entry *e = find_entry(cr, role_arn, 0);
	if (e && e->e_have && e->e_gen == gen) {
		log_info("aws: the service says the credentials of %.300s have expired: fetching new ones",
		    e->e_role ? e->e_role : "the client");
		e->e_have = 0;
		e->e_want = 1;
		pthread_cond_signal(&cr->cr_cv);
	}
	pthread_mutex_unlock(&cr->cr_mu);
}

const char *
awscreds_source(const awscreds *cr)
{
	return cr->cr_source;
}

/* ---- choosing the source ------------------------------------------------------ */

static int
env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

/* Walks the chain: 0 source chosen and its first credentials in *c; -1
 * err set. */
static int
choose(awscreds *cr, awsconf_creds *c, char *err, size_t errcap)
{
	const char *p = getenv("AWS_PROFILE");
	char profile[200], e2[600];
	snprintf(profile, sizeof(profile), "%s", p && *p ? p : "default");
	int env = env_set("AWS_ACCESS_KEY_ID") || env_set("AWS_SECRET_ACCESS_KEY");
	if (!env && awsconf_profile_value("role_arn", cr->cr_role_arn, sizeof(cr->cr_role_arn)) == 0) {
		if (awsconf_profile_value("role_session_name", cr->cr_session, sizeof(cr->cr_session)))
			cr->cr_session[0] = 0;
		if (awsconf_profile_value("web_identity_token_file", cr->cr_token_file, sizeof(cr->cr_token_file)) == 0) {
			cr->cr_src = SRC_WEB_IDENTITY;
			snprintf(cr->cr_source, sizeof(cr->cr_source), "web identity (profile %.60s)", profile);
		} else {
			if (awsconf_profile_value("source_profile", cr->cr_source_profile, sizeof(cr->cr_source_profile)))
				cr->cr_source_profile[0] = 0;
			if (awsconf_profile_value("credential_source", cr->cr_credential_source,
			    sizeof(cr->cr_credential_source)))
				cr->cr_credential_source[0] = 0;
			if (awsconf_profile_value("external_id", cr->cr_external_id, sizeof(cr->cr_external_id)))
				cr->cr_external_id[0] = 0;
			if (!cr->cr_source_profile[0] && !cr->cr_credential_source[0]) {
				seterr(err, errcap, "profile %s: role_arn needs source_profile, credential_source or "
				    "web_identity_token_file", profile);
				return -1;
			}
			cr->cr_src = SRC_PROFILE_ROLE;
			snprintf(cr->cr_source, sizeof(cr->cr_source), "assume role (profile %.60s)", profile);
		}
	} else {
		int rc = awsconf_creds_resolve(c, err, errcap);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			cr->cr_src = SRC_CONF;
			snprintf(cr->cr_source, sizeof(cr->cr_source), "%s", c->source);
			return 0;
		}
		if (env_set("AWS_WEB_IDENTITY_TOKEN_FILE") || env_set("AWS_ROLE_ARN")) {
			if (!env_set("AWS_WEB_IDENTITY_TOKEN_FILE") || !env_set("AWS_ROLE_ARN")) {
				seterr(err, errcap, "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE must be set together");
				return -1;
			}
			snprintf(cr->cr_role_arn, sizeof(cr->cr_role_arn), "%s", getenv("AWS_ROLE_ARN"));
			snprintf(cr->cr_token_file, sizeof(cr->cr_token_file), "%s", getenv("AWS_WEB_IDENTITY_TOKEN_FILE"));
			p = getenv("AWS_ROLE_SESSION_NAME");
			snprintf(cr->cr_session, sizeof(cr->cr_session), "%s", p ? p : "");
			cr->cr_src = SRC_WEB_IDENTITY;
			snprintf(cr->cr_source, sizeof(cr->cr_source), "web identity");
		} else if (env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ||
		    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
			cr->cr_src = SRC_CONTAINER;
			snprintf(cr->cr_source, sizeof(cr->cr_source), "container");
		} else {
			p = getenv("AWS_EC2_METADATA_DISABLED");
			if (p && strcasecmp(p, "true") == 0) {
				seterr(err, errcap, "no AWS credentials: none in the environment, in profile %s, from web "
				    "identity or container variables, and IMDS is disabled (AWS_EC2_METADATA_DISABLED)", profile);
				return -1;
			}
			cr->cr_src = SRC_IMDS;
			snprintf(cr->cr_source, sizeof(cr->cr_source), "imds");
			if (fetch_base(cr, c, e2, sizeof(e2)) < 0) {
				seterr(err, errcap, "no AWS credentials: none in the environment, in profile %s, from web "
				    "identity or container variables, nor from %s", profile, e2);
				return -1;
			}
			return 0;
		}
	}
	if (fetch_base(cr, c, e2, sizeof(e2)) < 0) {
		seterr(err, errcap, "%s", e2);
		return -1;
	}
	return 0;
}

awscreds *
awscreds_open(const char *region, const char *ca_file, awscreds_notify_fn notify, void *arg, char *err,
    size_t errcap)
{
	awscreds *cr = calloc(1, sizeof(*cr));
	if (cr == NULL) {
		seterr(err, errcap, "out of memory");
		return NULL;
	}
	snprintf(cr->cr_region, sizeof(cr->cr_region), "%s", region);
	cr->cr_notify = notify;
	cr->cr_notify_arg = arg;
	atomic_init(&cr->cr_stop, 0);
	if (ca_file && (cr->cr_ca_file = strdup(ca_file)) == NULL) {
		free(cr);
		seterr(err, errcap, "out of memory");
		return NULL;
	}
	char ep[900];
	if (awsconf_endpoint("STS", ep, sizeof(ep)) == 0) {
		const char *host = strstr(ep, "://");
		/* Used as given; a bare host gets "/". */
		snprintf(cr->cr_sts_url, sizeof(cr->cr_sts_url), "%s%s", ep, host && strchr(host + 3, '/') ? "" : "/");
	} else
		snprintf(cr->cr_sts_url, sizeof(cr->cr_sts_url), "https://sts.%s.amazonaws.com/", region);
	awsconf_creds c;
	if (choose(cr, &c, err, errcap) < 0) {
		explicit_bzero(&c, sizeof(c));
		free(cr->cr_ca_file);
		free(cr);
		return NULL;
	}
	set_creds(&cr->cr_base, &c, now_ms());
	explicit_bzero(&c, sizeof(c));
	pthread_mutex_init(&cr->cr_mu, NULL);
	pthread_cond_init(&cr->cr_cv, NULL);
	int rc = pthread_create(&cr->cr_thr, NULL, refresh_main, cr);
	if (rc != 0) {
		seterr(err, errcap, "cannot start the credentials thread: %s", strerror(rc));
		pthread_mutex_destroy(&cr->cr_mu);
		pthread_cond_destroy(&cr->cr_cv);
		free(cr->cr_ca_file);
		free(cr);
		return NULL;
	}
	return cr;
}

void
awscreds_close(awscreds *cr)
{
	if (cr == NULL)
		return;
	pthread_mutex_lock(&cr->cr_mu);
	atomic_store(&cr->cr_stop, 1);
	pthread_cond_signal(&cr->cr_cv);
	pthread_mutex_unlock(&cr->cr_mu);
	pthread_join(cr->cr_thr, NULL);
	while (cr->cr_roles) {
		struct entry *e = cr->cr_roles;
		cr->cr_roles = e->e_next;
		explicit_bzero(&e->e_cur, sizeof(e->e_cur));
		free(e->e_role);
		free(e);
	}
	explicit_bzero(&cr->cr_base.e_cur, sizeof(cr->cr_base.e_cur));
	pthread_mutex_destroy(&cr->cr_mu);
	pthread_cond_destroy(&cr->cr_cv);
	free(cr->cr_ca_file);
	free(cr);
}
