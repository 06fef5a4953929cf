#include "evaluate/lib/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "evaluate/lib/sqlaws.h"

typedef struct idlist {
	int ids[64];
	int *heap;
	int n, cap;
} idlist;

static void
collect(int id, void *arg)
{
	idlist *l = arg;
	if (l->n < 64) {
		l->ids[l->n++] = id;
		return;
	}
	/* More than 64 rules match: spill to the heap. */
	if (l->heap == NULL || l->n - 64 == l->cap) {
		int cap = l->cap ? l->cap * 2 : 64;
		int *h = realloc(l->heap, sizeof(int) * (size_t)cap);
		if (h == NULL)
			return;
		l->heap = h;
		l->cap = cap;
	}
	l->heap[l->n++ - 64] = id;
}

static int
id_at(const idlist *l, int i)
{
	return i < 64 ? l->ids[i] : l->heap[i - 64];
}

static void
id_set(idlist *l, int i, int id)
{
	if (i < 64)
		l->ids[i] = id;
	else
		l->heap[i - 64] = id;
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static char account_id[64];

void
engine_set_account_id(const char *id)
{
	snprintf(account_id, sizeof(account_id), "%s", id ? id : "");
}

/* Is filter one of the '\n'-terminated lines of s? */
static int
in_lines(const env_slice *s, const char *filter)
{
	size_t fl = strlen(filter);
	for (const char *p = s->p, *end = s->p + s->n; p < end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
		if (l == fl && memcmp(p, filter, fl) == 0)
			return 1;
		p = e ? e + 1 : end;
	}
	return 0;
}

/* The copy of the message came through the subscriptions of these
 * filters only (common/subid.h): keep the rules of those filters, so that
 * overlapping filters do not fire a rule once per copy. */
static void
keep_subscribed(const ruleset *rs, const env_slice *filters, idlist *ids)
{
	int k = 0;
	for (int i = 0; i < ids->n; i++) {
		int ri = id_at(ids, i);
		const char *f = sql_stmt_from(rs->rules[ri]->stmt);
		if (f == NULL || in_lines(filters, f))
			id_set(ids, k++, ri);
	}
	ids->n = k;
}

/* s as a C string in out (cut to cap - 1 bytes), or NULL when empty. */
static const char *
cstr(env_slice s, char *out, size_t cap)
{
	size_t n = s.n < cap - 1 ? s.n : cap - 1;
	if (n == 0)
		return NULL;
	memcpy(out, s.p, n);
	out[n] = 0;
	return out;
}

int
engine_run(const ruleset *rs, sql_ctx *c, const envelope *msg,
    engine_emit emit, void *arg, engine_stats *st)
{
	char topic[1024];
	int jobs = 0;
	/* The SQL layer wants NUL-terminated strings. */
	size_t tn = msg->s[ENV_TOPIC].n < sizeof(topic) - 1 ? msg->s[ENV_TOPIC].n : sizeof(topic) - 1;
	if (tn)
		memcpy(topic, msg->s[ENV_TOPIC].p, tn);
	topic[tn] = 0;
	/* clientid(), principal(), sourceip(): known when the message came
	 * through the broker plugin; NULL (n/a, Undefined) otherwise. */
	char clientid[256], principal[256], sourceip[64];
	const char *cid = cstr(msg->s[ENV_CLIENTID], clientid, sizeof(clientid));

	char traceid[37];
	env_id_str(msg, traceid);
	sql_msg m = {0};
	m.topic = topic;
	m.clientid = cid;
	m.principal = cstr(msg->s[ENV_USERNAME], principal, sizeof(principal));
	m.sourceip = cstr(msg->s[ENV_SOURCEIP], sourceip, sizeof(sourceip));
	m.payload = msg->s[ENV_PAYLOAD].p;
	m.payload_len = msg->s[ENV_PAYLOAD].n;
	m.timestamp_ms = (int64_t)msg->ts_ms;
	m.traceid = traceid;   /* the message id ingest gave it */
	m.accountid = account_id[0] ? account_id : NULL;
	m.mqtt_props = msg->s[ENV_PROPS].p;
	m.mqtt_props_len = msg->s[ENV_PROPS].n;
	if (c->ext == NULL)
		c->ext = sqlaws_external();
	sql_ctx_begin(c, &m);
	st->messages++;

	idlist ids = {0};
	const char *rname;
	size_t rlen;
	const char *rest = topic_basic_ingest(topic, &rname, &rlen);
	if (rest) {
		for (int i = 0; i < rs->n; i++) {
			const rule *r = rs->rules[i];
			if (!r->disabled && strlen(r->name) == rlen && memcmp(r->name, rname, rlen) == 0 &&
			    (sql_stmt_from(r->stmt) == NULL || topic_matches(sql_stmt_from(r->stmt), rest)))
				collect(i, &ids);
		}
		if (ids.n == 0)
			log_warn("RuleNotFound: Basic Ingest topic %s names no enabled rule", topic);
	} else {
		topic_index_match(rs->ix, topic, collect, &ids);
		if (msg->s[ENV_FILTERS].n)
			keep_subscribed(rs, &msg->s[ENV_FILTERS], &ids);
	}
	if (ids.n <= 64)
		qsort(ids.ids, (size_t)ids.n, sizeof(int), cmp_int);

	buf result = BUF_ZERO, params = BUF_ZERO, errjs = BUF_ZERO;
	for (int k = 0; k < ids.n; k++) {
		int ri = id_at(&ids, k);
		const rule *r = rs->rules[ri];
		sql_error err;
		buf_reset(&result);
		enum sql_result res = sql_run(r->stmt, c, &result, &err);
		if (res == SQL_NOMATCH) {
			st->not_fired++;
			if (st->on_rule)
				st->on_rule(st->on_rule_arg, ri, ENGINE_NO_RESULT);
			continue;
		}
		if (res == SQL_FAIL) {
			st->sql_failed++;
			if (st->on_rule)
				st->on_rule(st->on_rule_arg, ri, ENGINE_SQL_ERROR);
			log_error("rule %s: SQL evaluation failed for a message on %s: %s", r->name, topic, err.msg);
			continue;
		}
		st->fired++;
		if (st->on_rule)
			st->on_rule(st->on_rule_arg, ri, ENGINE_FIRED);
		buf_reset(&errjs);
		if (r->error_action) {
			buf_adds(&errjs, "{\"type\":");
			buf_add_json_str(&errjs, r->error_action->type, strlen(r->error_action->type));
			buf_adds(&errjs, ",\"key\":");
			buf_add_json_str(&errjs, r->error_action->aws_key, strlen(r->error_action->aws_key));
			buf_adds(&errjs, ",\"params\":");
			rule_action_params(r->error_action, r->stmt, c, &errjs);
			buf_addc(&errjs, '}');
		}
		for (int i = 0; i < r->nactions; i++) {
			const rule_action *a = &r->actions[i];
			buf_reset(&params);
			rule_action_params(a, r->stmt, c, &params);
			envelope job = *msg;
			job.kind = ENV_JOB;
			job.action_index = (uint16_t)i;
			job.action_count = (uint16_t)r->nactions;
			job.s[ENV_RULE] = env_str(r->name);
			job.s[ENV_ACTION] = env_str(a->type);
			job.s[ENV_PARAMS] = (env_slice){params.data, (uint32_t)params.len};
			job.s[ENV_RESULT] = (env_slice){result.data ? result.data : "", (uint32_t)result.len};
			job.s[ENV_ERRACTION] = (env_slice){errjs.data ? errjs.data : "", (uint32_t)errjs.len};
			job.s[ENV_ERROR] = (env_slice){"", 0};
			emit(arg, &job);
			jobs++;
			st->jobs++;
		}
	}
	buf_free(&result);
	buf_free(&params);
	buf_free(&errjs);
	free(ids.heap);
	return jobs;
}
