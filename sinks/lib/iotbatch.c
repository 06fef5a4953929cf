#include "sinks/lib/iotbatch.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

int
iotbatch_name_ok(const char *s, size_t max, const char *extra, int first_alnum)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || (first_alnum && !isalnum((unsigned char)s[0])))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

/* ---- BatchPutMessage entries ---------------------------------------------------- */

static void
add_message(sink_job *j, const char *id, const char *input, const char *data, size_t n)
{
	char uuid[37];
	if (id == NULL) {
		awssink_uuid(uuid);
		id = uuid;
	}
	buf_adds(&j->entry, j->units++ ? ",{\"messageId\":" : "{\"messageId\":");
	buf_add_json_str(&j->entry, id, strlen(id));
	if (input) {
		buf_adds(&j->entry, ",\"inputName\":");
		buf_add_json_str(&j->entry, input, strlen(input));
	}
	buf_adds(&j->entry, ",\"payload\":\"");
	awssink_add_base64(&j->entry, data, n, NULL);
	buf_adds(&j->entry, "\"}");
}

const char *
iotbatch_messages(sink_job *j, int max_elements, size_t max_bytes, const char *input_name, const char *message_id)
{
	/* prepare runs on the runtime's one thread: the reason can live here. */
	static char why[160];
	const env_slice *d = &j->env.s[ENV_RESULT];
	awssink_elems it;
	why[0] = 0;
	buf_reset(&j->entry);
	buf_addc(&j->entry, '[');
	j->units = 0;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j->params, "batchMode")) || !awssink_array(d->p, d->n, &it)) {
		/* Not batchMode, or a result that is not an array: the result's
		 * own bytes, as received (a binary payload passes through). */
		if (d->n > max_bytes)
			snprintf(why, sizeof(why), "the payload is larger than %zu bytes", max_bytes);
		else
			add_message(j, message_id, input_name, d->p, d->n);
	} else {
		/* Each element's own text: numbers keep all their digits. */
		const char *p;
		size_t n;
		while (why[0] == 0 && awssink_array_next(&it, &p, &n)) {
			if (j->units == max_elements)
				snprintf(why, sizeof(why), "the batchMode array has too many elements (at most %d)", max_elements);
			else if (n > max_bytes)
				snprintf(why, sizeof(why), "a batchMode element is larger than %zu bytes", max_bytes);
			else
				add_message(j, message_id, input_name, p, n);
		}
		if (why[0] == 0 && j->units == 0)
			snprintf(why, sizeof(why), "the batchMode array is empty");
	}
	buf_addc(&j->entry, ']');
	return why[0] ? why : NULL;
}

/* ---- sending ---------------------------------------------------------------------- */

/* One entry of a send, and what became of it. */
typedef struct slot {
	int job, req;
	const cJSON *e;
	const char *id;
	size_t weight;          /* decoded payload bytes */
	int failed;
	aws_verdict v;
	long status;
	int retry_after_ms;
	char code[128];
	char msg[512];
} slot;

/* One send: its jobs, their parsed entries, and the requests not yet
 * answered.  Freed by the last answer. */
typedef struct fan {
	const iotbatch_api *api;
	atomic_int left;
	int njobs, nslots;
	sink_job **jobs;
	cJSON **lists;          /* each job's entries; NULL: the job is done already */
	slot *slots;
} fan;

typedef struct req_arg {
	fan *f;
	int req;
} req_arg;

/* An error entry without a code is retried (the service named no fault
 * of ours); others as aws_classify_code. */
static aws_verdict
entry_verdict(const char *code)
{
	if (code == NULL || code[0] == 0)
		return AWS_TRANSIENT;
	return aws_classify_code(code);
}

/* Marks s failed, keeping the worst of its failures. */
static void
slot_fail(slot *s, aws_verdict v, long status, int retry_after_ms, const char *code, const char *msg)
{
	if (s->failed && s->v >= v)
		return;
	s->failed = 1;
	s->v = v;
	s->status = status;
	s->retry_after_ms = retry_after_ms;
	snprintf(s->code, sizeof(s->code), "%s", code && code[0] ? code : "InternalFailureException");
	snprintf(s->msg, sizeof(s->msg), "%s", msg ? msg : "");
}

static size_t
b64_decoded_len(const char *s)
{
	size_t n = strlen(s), d = n / 4 * 3;
	if (n >= 1 && s[n - 1] == '=')
		d--;
	if (n >= 2 && s[n - 2] == '=')
		d--;
	return d;
}

/* Completes every job of f from its slots, then frees f. */
static void
finish(fan *f)
{
	for (int i = 0; i < f->njobs; i++) {
		sink_job *j = f->jobs[i];
		const slot *worst = NULL;
		int nfail = 0;
		if (f->lists[i] == NULL)
			continue;
		for (int k = 0; k < f->nslots; k++) {
			const slot *s = &f->slots[k];
			if (s->job == i && s->failed) {
				nfail++;
				if (worst == NULL || s->v > worst->v)
					worst = s;
			}
		}
		if (worst == NULL) {
			sink_job_done(j, SINK_OK);
			continue;
		}
		/* The job's entry is ours while it is in flight: keep only the
		 * failed entries, which are all a retry resends. */
		buf_reset(&j->entry);
		buf_addc(&j->entry, '[');
		for (int k = 0, n = 0; k < f->nslots; k++) {
			if (f->slots[k].job != i || !f->slots[k].failed)
				continue;
			char *t = cJSON_PrintUnformatted(f->slots[k].e);
			if (t == NULL)
				log_die(111, "out of memory");
			if (n++)
				buf_addc(&j->entry, ',');
			buf_adds(&j->entry, t);
			free(t);
		}
		buf_addc(&j->entry, ']');
		j->units = nfail;
		if (f->api->resource)
			f->api->resource(j, worst->e);
		aws_response r = {.status = worst->status, .verdict = worst->v, .error_code = worst->code,
		    .error_message = worst->msg, .retry_after_ms = worst->retry_after_ms};
		awssink_fail_all(&j, 1, &r, &f->api->call);
	}
	for (int i = 0; i < f->njobs; i++)
		cJSON_Delete(f->lists[i]);
	free(f->lists);
	free(f->slots);
	free(f->jobs);
	free(f);
}

/* The answer to request a->req: a 2xx names the entries that failed (by
 * id, unique within the request); any other fails all it carried. */
static void
on_answer(void *arg, const aws_response *r)
{
	req_arg *a = arg;
	fan *f = a->f;
	int req = a->req;
	free(a);
	if (r->verdict != AWS_OK) {
		for (int k = 0; k < f->nslots; k++)
			if (f->slots[k].req == req)
				slot_fail(&f->slots[k], r->verdict, r->status, r->retry_after_ms, r->error_code, r->error_message);
	} else {
		cJSON *body = cJSON_ParseWithLength(r->body, r->body_len), *err;
		cJSON_ArrayForEach(err, cJSON_GetObjectItemCaseSensitive(body, f->api->errors_key)) {
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, f->api->id_key));
			slot *s = NULL;
			for (int k = 0; k < f->nslots && s == NULL && id; k++)
				if (f->slots[k].req == req && strcmp(f->slots[k].id, id) == 0)
					s = &f->slots[k];
			if (s == NULL)
				continue;
			/* SiteWise lists an entry's errors (one per batch of its
			 * timestamps); BatchPutMessage's entry is the error. */
			cJSON *list = cJSON_GetObjectItemCaseSensitive(err, "errors"), *one;
			cJSON *errs = cJSON_IsArray(list) ? list : NULL;
			cJSON_ArrayForEach(one, errs) {
				const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(one, "errorCode"));
				slot_fail(s, entry_verdict(code), r->status, 0, code,
				    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(one, "errorMessage")));
			}
			if (!cJSON_IsArray(list) || !s->failed) {
				const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "errorCode"));
				slot_fail(s, entry_verdict(code), r->status, 0, code,
				    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "errorMessage")));
			}
		}
		cJSON_Delete(body);
	}
	if (atomic_fetch_sub(&f->left, 1) == 1)
		finish(f);
}

/* Puts slot k into the first request with room for it and no entry of
 * the same id, opening one when none has; returns the request count. */
static int
place(fan *f, int k, int nreq, int *count, size_t *payload)
{
	slot *s = &f->slots[k];
	const iotbatch_api *api = f->api;
	for (int r = 0; r <= nreq; r++) {
		if (r < nreq) {
			int clash = count[r] >= api->max_entries ||
			    (api->max_payload && payload[r] > 0 && payload[r] + s->weight > api->max_payload);
			for (int o = 0; o < k && !clash; o++)
				clash = f->slots[o].req == r && strcmp(f->slots[o].id, s->id) == 0;
			if (clash)
				continue;
		}
		s->req = r;
		count[r]++;
		payload[r] += s->weight;
		return r == nreq ? nreq + 1 : nreq;
	}
	return nreq;   /* not reached: a new request always has room */
}

void
iotbatch_send(const iotbatch_api *api, sink_job **jobs, int n)
{
	fan *f = xcalloc(sizeof(*f));
	f->api = api;
	f->njobs = n;
	f->jobs = xcalloc((size_t)n * sizeof(*f->jobs));
	f->lists = xcalloc((size_t)n * sizeof(*f->lists));
	memcpy(f->jobs, jobs, (size_t)n * sizeof(*jobs));
	for (int i = 0; i < n; i++) {
		f->lists[i] = cJSON_ParseWithLength(jobs[i]->entry.data, jobs[i]->entry.len);
		if (!cJSON_IsArray(f->lists[i])) {
			/* prepare built it: never seen, but never sent as nothing */
			cJSON_Delete(f->lists[i]);
			f->lists[i] = NULL;
			sink_job_fail(jobs[i], SINK_FATAL, api->call.what, "the request entry is not a JSON array");
			continue;
		}
		f->nslots += cJSON_GetArraySize(f->lists[i]);
	}
	f->slots = xcalloc((size_t)f->nslots * sizeof(*f->slots));
	int *count = xcalloc((size_t)f->nslots * sizeof(int)), nreq = 0, k = 0;
	size_t *payload = xcalloc((size_t)f->nslots * sizeof(size_t));
	for (int i = 0; i < n; i++) {
		const cJSON *e;
		cJSON_ArrayForEach(e, f->lists[i]) {
			slot *s = &f->slots[k];
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, api->id_key));
			const char *p = api->payload_key ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, api->payload_key)) : NULL;
			s->job = i;
			s->e = e;
			s->id = id ? id : "";
			s->weight = p ? b64_decoded_len(p) : 0;
			nreq = place(f, k++, nreq, count, payload);
		}
	}
	free(count);
	free(payload);
	if (nreq == 0) {
		finish(f);
		return;
	}
	/* Every request counts before the first is sent: an answer may come
	 * (on the client's thread) while the others are being built. */
	atomic_store(&f->left, nreq);
	for (int r = 0; r < nreq; r++) {
		buf entries = BUF_ZERO;
		buf_addc(&entries, '[');
		for (int o = 0, m = 0; o < f->nslots; o++) {
			if (f->slots[o].req != r)
				continue;
			char *t = cJSON_PrintUnformatted(f->slots[o].e);
			if (t == NULL)
				log_die(111, "out of memory");
			if (m++)
				buf_addc(&entries, ',');
			buf_adds(&entries, t);
			free(t);
		}
		buf_addc(&entries, ']');
		buf body = BUF_ZERO;
		char region[64] = "";
		buf_addc(&body, '{');
		if (api->head)
			api->head(f->jobs[0], &body, region);
		buf_addc(&body, '"');
		buf_adds(&body, api->list_key);
		buf_adds(&body, "\":");
		buf_add(&body, entries.data, entries.len);
		buf_addc(&body, '}');
		aws_request rq = {.service = api->service, .endpoint_id = api->endpoint_id, .host = api->host,
		    .region = region, .path = api->path, .content_type = "application/json",
		    .role_arn = awssink_role(f->jobs[0]), .body = body.data, .body_len = body.len};
		req_arg *a = xcalloc(sizeof(*a));
		a->f = f;
		a->req = r;
		/* After the last aws_send f may be gone: nothing reads it. */
		aws_send(awssink_client(), &rq, on_answer, a);
		buf_free(&body);
		buf_free(&entries);
	}
}

static int
prepare(void *state, sink_job *j)
{
	const iotbatch_api *api = state;
	j->dest[0] = 0;
	const char *why = api->prepare(j);
	if (why) {
		sink_error_message(j, api->call.what, why);
		return -1;
	}
	if (j->dest[0] == 0)
		snprintf(j->dest, sizeof(j->dest), "%s", sink_param(j, "roleArn"));
	return 0;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	iotbatch_send(state, jobs, n);
}

int
iotbatch_main(int argc, char **argv, const iotbatch_api *api)
{
	sink_ops ops = {0};
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.state = (void *)api;   /* only read: prepare and send get it back */
	ops.batch_max = api->max_entries;
	return awssink_main(argc, argv, &ops);
}
