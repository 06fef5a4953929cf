#include "sinks/lib/awssink.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "common/log.h"

static struct {
	aws_client *client;
	aws_client_opts opts;
	const char *account_id;   /* --account-id (argv's), or NULL */
} A;

/* One request in flight: the jobs it carries. */
typedef struct pending {
	const awssink_call *call;
	int n;
	sink_job *jobs[];
} pending;

aws_client *
awssink_client(void)
{
	return A.client;
}

static sink_status
status_of(aws_verdict v)
{
	switch (v) {
	case AWS_OK: return SINK_OK;
	case AWS_THROTTLED: return SINK_THROTTLED;
	case AWS_PERMANENT: return SINK_FATAL;
	default: return SINK_RETRY;
	}
}

/* "<message> (Service: X; Status Code: N; Error Code: C)", AWS's shape of
 * the error received (ERRORS.md §2.1), or curl's reason when there was no
 * answer. */
static void
received_text(char *out, size_t cap, const awssink_call *call, long status, const char *code, const char *msg)
{
	if (status == 0)
		snprintf(out, cap, "%s (Service: %s; no answer)", msg && msg[0] ? msg : "no connection", call->service);
	else
		snprintf(out, cap, "%s (Service: %s; Status Code: %ld; Error Code: %s)", msg && msg[0] ? msg : "(no message)",
		    call->service, status, code && code[0] ? code : "none");
}

void
awssink_entry(sink_job *j, const awssink_call *call, long status, const char *code, const char *msg)
{
	if (code == NULL || code[0] == 0) {
		sink_job_done(j, SINK_OK);
		return;
	}
	char rec[700];
	received_text(rec, sizeof(rec), call, status, code, msg);
	sink_job_fail(j, status_of(aws_classify_code(code)), call->what, rec);
}

void
awssink_judge_ids(sink_job **jobs, int n, long status, const awssink_call *call, const awssink_outcome *o, int no)
{
	char done[512] = {0};
	for (int k = 0; k < no; k++) {
		char *end;
		long i = strtol(o[k].id, &end, 10);
		if (o[k].id[0] < '0' || o[k].id[0] > '9' || *end || i >= n || i >= (long)sizeof(done) || done[i]++)
			continue;
		if (!o[k].failed) {
			sink_job_done(jobs[i], SINK_OK);
			continue;
		}
		aws_verdict v = aws_classify_code(o[k].code[0] ? o[k].code : "InternalFailure");
		if (o[k].sender_fault)
			v = AWS_PERMANENT;
		else if (v == AWS_PERMANENT)
			v = AWS_TRANSIENT;
		char rec[700];
		received_text(rec, sizeof(rec), call, status, o[k].code, o[k].message);
		sink_job_fail(jobs[i], status_of(v), call->what, rec);
	}
	for (int i = 0; i < n; i++)
		if (i >= (int)sizeof(done) || !done[i])
			awssink_entry(jobs[i], call, status, "InternalFailure", "no answer for this entry");
}

static void
on_answer(void *arg, const aws_response *r)
{
	pending *p = arg;
	if (r->verdict == AWS_OK) {
		if (p->call->judge) {
			cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
			p->call->judge(p->jobs, p->n, r, body, p->call);
			cJSON_Delete(body);
		} else {
			for (int i = 0; i < p->n; i++)
				sink_job_done(p->jobs[i], SINK_OK);
		}
	} else if (!(p->call->judge_error && p->call->judge_error(p->jobs, p->n, r, p->call))) {
		awssink_fail_all(p->jobs, p->n, r, p->call);
	}
	free(p);
}

void
awssink_fail_all(sink_job **jobs, int n, const aws_response *r, const awssink_call *call)
{
	char rec[700];
	received_text(rec, sizeof(rec), call, r->status, r->error_code, r->error_message);
	for (int i = 0; i < n; i++) {
		jobs[i]->retry_after_ms = r->retry_after_ms;
		sink_job_fail(jobs[i], status_of(r->verdict), call->what, rec);
	}
}

void
awssink_send(const aws_request *rq, sink_job **jobs, int n, const awssink_call *call)
{
	pending *p = malloc(sizeof(*p) + (size_t)n * sizeof(sink_job *));
	if (p == NULL)
		log_die(111, "out of memory");
	p->call = call;
	p->n = n;
	memcpy(p->jobs, jobs, (size_t)n * sizeof(sink_job *));
	if (call->send)
		call->send(rq, on_answer, p);
	else
		aws_send(A.client, rq, on_answer, p);
}

void
awssink_send_entries(aws_request *rq, const char *key, const char *name, const char *list,
    sink_job **jobs, int n, const awssink_call *call)
{
	buf b = BUF_ZERO;
	buf_addc(&b, '{');
	buf_add_json_str(&b, key, strlen(key));
	buf_addc(&b, ':');
	buf_add_json_str(&b, name, strlen(name));
	buf_addc(&b, ',');
	buf_add_json_str(&b, list, strlen(list));
	buf_adds(&b, ":[");
	for (int i = 0; i < n; i++) {
		if (i)
			buf_addc(&b, ',');
		buf_add(&b, jobs[i]->entry.data, jobs[i]->entry.len);
	}
	buf_adds(&b, "]}");
	rq->body = b.data;
	rq->body_len = b.len;
	awssink_send(rq, jobs, n, call);
	buf_free(&b);
}

cJSON *
awssink_result_json(const sink_job *j)
{
	return cJSON_ParseWithLength(j->env.s[ENV_RESULT].p, j->env.s[ENV_RESULT].n);
}

void
awssink_add_base64(buf *out, const void *data, size_t n, const char *extra)
{
	size_t e = extra ? strlen(extra) : 0;
	unsigned char *tmp = malloc(n + e + 1);
	if (tmp == NULL)
		log_die(111, "out of memory");
	memcpy(tmp, data, n);
	memcpy(tmp + n, extra ? extra : "", e);
	size_t need = 4 * ((n + e + 2) / 3) + 1;
	buf_reserve(out, need);
	int len = EVP_EncodeBlock((unsigned char *)out->data + out->len, tmp, (int)(n + e));
	out->len += (size_t)len;
	free(tmp);
}

const char *
awssink_account_id(void)
{
	return A.account_id;
}

const char *
awssink_role(const sink_job *j)
{
	const char *r = sink_param(j, "roleArn");
	return r[0] ? r : NULL;
}

static int
option(void *state, int argc, char **argv, int *i)
{
	(void)state;
	(void)argc;
	if (strcmp(argv[*i], "--assume-role") == 0) {
		A.opts.assume_role = 1;
		return 1;
	}
	if (strcmp(argv[*i], "--account-id") == 0) {
		if (*i + 1 >= argc || argv[*i + 1][0] == 0)
			return -1;
		A.account_id = argv[++*i];
		return 1;
	}
	if (strcmp(argv[*i], "--timeout-ms") == 0) {
		if (*i + 1 >= argc || atoi(argv[*i + 1]) <= 0)
			return -1;
		A.opts.timeout_ms = atoi(argv[++*i]);
		return 1;
	}
	return 0;
}

static int
start(void *state)
{
	(void)state;
	char err[1024];
	A.client = aws_client_open(&A.opts, err, sizeof(err));
	if (A.client == NULL) {
		log_error("AWS client: %s", err);
		return -1;
	}
	return 0;
}

static void
stop(void *state)
{
	(void)state;
	aws_client_close(A.client);   /* completes what is in flight */
	A.client = NULL;
}

int
awssink_main(int argc, char **argv, sink_ops *ops)
{
	static char usage[2048];
	snprintf(usage, sizeof(usage),
	    "%s"
	    "  --assume-role    assume each action's roleArn with STS AssumeRole (config\n"
	    "                   assume_role); otherwise roleArn is ignored\n"
	    "  --timeout-ms MS  per request (default 10000)\n"
	    "  --account-id ID  the account of the rules (config account_id), for the\n"
	    "                   ARNs a sink builds (stepFunctions); default: the\n"
	    "                   caller's, from STS GetCallerIdentity\n"
	    "\n"
	    "Credentials, region and endpoint come from the environment and the shared\n"
	    "files as the AWS SDKs find them (AWS_ACCESS_KEY_ID, AWS_PROFILE,\n"
	    "credential_process, web identity, container, IMDSv2; AWS_REGION;\n"
	    "AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL; AWS_CA_BUNDLE).\n",
	    ops->usage ? ops->usage : "");
	ops->usage = usage;
	if (ops->option == NULL)
		ops->option = option;
	if (ops->start == NULL)
		ops->start = start;
	if (ops->stop == NULL)
		ops->stop = stop;
	if (ops->linger_ms == 0)
		ops->linger_ms = 10;
	return sink_main(argc, argv, ops);
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* The end of the JSON value at p: the ',' or ']' that follows it at its
 * depth (the text is valid JSON: awssink_array checked). */
static const char *
value_end(const char *p, const char *end)
{
	int depth = 0, str = 0;
	for (; p < end; p++) {
		if (str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				str = 0;
		} else if (*p == '"') {
			str = 1;
		} else if (*p == '[' || *p == '{') {
			depth++;
		} else if (*p == ']' || *p == '}') {
			if (depth-- == 0)
				return p;
		} else if (*p == ',' && depth == 0) {
			return p;
		}
	}
	return end;
}

int
awssink_array(const char *s, size_t n, awssink_elems *it)
{
	const char *end = s + n, *p = skip_ws(s, end);
	if (p == end || *p != '[')
		return 0;
	cJSON *doc = cJSON_ParseWithLength(s, n);
	int array = cJSON_IsArray(doc);
	cJSON_Delete(doc);
	if (!array)
		return 0;
	it->p = skip_ws(p + 1, end);
	it->end = end;
	return 1;
}

int
awssink_array_next(awssink_elems *it, const char **p, size_t *len)
{
	if (it->p >= it->end || *it->p == ']')
		return 0;
	const char *e = value_end(it->p, it->end), *last = e;
	while (last > it->p && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\n' || last[-1] == '\r'))
		last--;
	*p = it->p;
	*len = (size_t)(last - it->p);
	it->p = e < it->end && *e == ',' ? skip_ws(e + 1, it->end) : it->end;
	return 1;
}

void
awssink_uuid(char *out)
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}
