#include "supervisor/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* What the processes that are gone counted, per stage. */
typedef struct carried_stage {
	char stage[64];
	uint64_t in, out, failed, retried, restarts;
	int delivery, has_lat;
	stats_hist lat;
} carried_stage;

/* The last stats file read for a live process: stands in when a read
 * fails, and is what stats_gone carries if the file is gone by then. */
typedef struct cached {
	char name[96];
	pid_t pid;
	cJSON *doc;
} cached;

static struct {
	const char *run_dir;
	carried_stage *cs;
	int ncs;
	stats_rule *rules;   /* carried, sorted by name */
	int nrules;
	cached *cache;
	int ncache;
} T;

void
stats_init(const char *run_dir)
{
	T.run_dir = run_dir;
}

static void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		log_die(111, "out of memory");
	return q;
}

cJSON *
stats_file_parse(const char *run_dir, const char *name)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/stats/%s.json", run_dir, name);
	/* Whole file: evaluate's rules make it as long as the rules are many. */
	buf b = BUF_ZERO;
	int bad = buf_read_file(&b, path, 64u << 20) < 0;
	cJSON *j = bad || b.len == 0 ? NULL : cJSON_ParseWithLength(b.data, b.len);
	buf_free(&b);
	return j;
}

static uint64_t
num(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

static int64_t
snum(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* A document belongs to process pid (not an earlier one of that name). */
static int
doc_of(const cJSON *j, pid_t pid)
{
	return j && pid > 0 && snum(j, "pid") == (int64_t)pid;
}

/* Adds the "latency" section of j to h; 1 if there was one. */
static int
add_latency(const cJSON *j, stats_hist *h)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "latency");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(l, "counts");
	/* Another build's buckets would not add up: skipped. */
	if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != PROC_LATENCY_NLE + 1)
		return 0;
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, c) {
		if (cJSON_IsNumber(e) && e->valuedouble > 0)
			h->counts[i] += (uint64_t)e->valuedouble;
		i++;
	}
	h->sum_ms += num(l, "sum_ms");
	return 1;
}

/* Appends the "rules" section of j ({"NAME":[matched,fired,no_result,
 * sql_errors]}) to *r. */
static void
add_rules(const cJSON *j, stats_rule **r, int *n)
{
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(j, "rules");
	const cJSON *e;
	cJSON_ArrayForEach(e, rules) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 4 || e->string == NULL)
			continue;
		uint64_t v[4];
		for (int k = 0; k < 4; k++) {
			const cJSON *x = cJSON_GetArrayItem(e, k);
			v[k] = cJSON_IsNumber(x) && x->valuedouble > 0 ? (uint64_t)x->valuedouble : 0;
		}
		*r = xrealloc(*r, (size_t)(*n + 1) * sizeof(**r));
		stats_rule *s = &(*r)[(*n)++];
		s->name = strdup(e->string);
		if (s->name == NULL)
			log_die(111, "out of memory");
		s->matched = v[0];
		s->fired = v[1];
		s->no_result = v[2];
		s->sql_errors = v[3];
	}
}

static int
cmp_rule(const void *a, const void *b)
{
	return strcmp(((const stats_rule *)a)->name, ((const stats_rule *)b)->name);
}

/* Sorts r by name and adds up the entries of one name. */
static void
merge_rules(stats_rule *r, int *n)
{
	if (*n == 0)
		return;
	qsort(r, (size_t)*n, sizeof(*r), cmp_rule);
	int o = 0;
	for (int i = 1; i < *n; i++) {
		if (strcmp(r[o].name, r[i].name) == 0) {
			r[o].matched += r[i].matched;
			r[o].fired += r[i].fired;
			r[o].no_result += r[i].no_result;
			r[o].sql_errors += r[i].sql_errors;
			free(r[i].name);
		} else {
			r[++o] = r[i];
		}
	}
	*n = o + 1;
}

static carried_stage *
carried(const char *stage)
{
	for (int i = 0; i < T.ncs; i++)
		if (strcmp(T.cs[i].stage, stage) == 0)
			return &T.cs[i];
	T.cs = xrealloc(T.cs, (size_t)(T.ncs + 1) * sizeof(*T.cs));
	carried_stage *c = &T.cs[T.ncs++];
	memset(c, 0, sizeof(*c));
	snprintf(c->stage, sizeof(c->stage), "%s", stage);
	return c;
}

static cached *
cache_find(const char *name)
{
	for (int i = 0; i < T.ncache; i++)
		if (strcmp(T.cache[i].name, name) == 0)
			return &T.cache[i];
	return NULL;
}

/* Keeps doc (taken) as the last one read for name. */
static void
cache_put(const char *name, pid_t pid, cJSON *doc)
{
	cached *c = cache_find(name);
	if (c == NULL) {
		T.cache = xrealloc(T.cache, (size_t)(T.ncache + 1) * sizeof(*T.cache));
		c = &T.cache[T.ncache++];
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->doc = NULL;
	}
	cJSON_Delete(c->doc);
	c->doc = doc;
	c->pid = pid;
}

static void
cache_drop(const char *name)
{
	cached *c = cache_find(name);
	if (c == NULL)
		return;
	cJSON_Delete(c->doc);
	*c = T.cache[--T.ncache];
}

/* The current figures of process pid of name: its stats file when it is
 * that process's, else the last one read for it (NULL: none yet).  The
 * document belongs to the cache. */
static const cJSON *
current(const char *name, pid_t pid)
{
	if (pid <= 0)
		return NULL;
	cJSON *j = stats_file_parse(T.run_dir, name);
	if (doc_of(j, pid)) {
		cache_put(name, pid, j);
		return j;
	}
	cJSON_Delete(j);
	cached *c = cache_find(name);
	return c && c->pid == pid ? c->doc : NULL;
}

void
stats_gone(const char *stage, const char *name, pid_t pid)
{
	const cJSON *j = current(name, pid);
	if (j) {
		carried_stage *c = carried(stage);
		c->in += num(j, "in");
		c->out += num(j, "out");
		c->failed += num(j, "failed");
		c->retried += num(j, "retried");
		c->delivery |= cJSON_GetObjectItemCaseSensitive(j, "retried") != NULL;
		c->has_lat |= add_latency(j, &c->lat);
		add_rules(j, &T.rules, &T.nrules);
		merge_rules(T.rules, &T.nrules);
	}
	/* The file stays (status of a stopped supervisor's run_dir, tests):
	 * it names a pid no live instance has, so it is never read as
	 * current again. */
	cache_drop(name);
}

void
stats_forget_slot(const char *stage, int restarts)
{
	if (restarts > 0)
		carried(stage)->restarts += (uint64_t)restarts;
}

static stats_stage *
view_stage(stats_view *v, const char *stage)
{
	for (int i = 0; i < v->nstage; i++)
		if (strcmp(v->stage[i].stage, stage) == 0)
			return &v->stage[i];
	v->stage = xrealloc(v->stage, (size_t)(v->nstage + 1) * sizeof(*v->stage));
	stats_stage *s = &v->stage[v->nstage++];
	memset(s, 0, sizeof(*s));
	snprintf(s->stage, sizeof(s->stage), "%s", stage);
	const carried_stage *c = NULL;
	for (int i = 0; i < T.ncs; i++)
		if (strcmp(T.cs[i].stage, stage) == 0)
			c = &T.cs[i];
	if (c) {
		s->in = c->in;
		s->out = c->out;
		s->failed = c->failed;
		s->retried = c->retried;
		s->restarts = c->restarts;
		s->delivery = c->delivery;
		s->has_lat = c->has_lat;
		s->lat = c->lat;
	}
	return s;
}

void
stats_collect(const stats_proc *procs, int nprocs, const char (*stages)[64], int nstages, stats_view *v)
{
	memset(v, 0, sizeof(*v));
	int64_t now = proc_now_ms();
	for (int i = 0; i < nstages; i++)
		view_stage(v, stages[i]);
	if (nprocs > 0)
		v->inst = xrealloc(NULL, (size_t)nprocs * sizeof(*v->inst));
	for (int i = 0; i < T.nrules; i++) {
		v->rule = xrealloc(v->rule, (size_t)(v->nrule + 1) * sizeof(*v->rule));
		v->rule[v->nrule] = T.rules[i];
		v->rule[v->nrule].name = strdup(T.rules[i].name);
		if (v->rule[v->nrule++].name == NULL)
			log_die(111, "out of memory");
	}
	for (int i = 0; i < nprocs; i++) {
		const stats_proc *p = &procs[i];
		stats_inst *in = &v->inst[v->ninst++];
		memset(in, 0, sizeof(*in));
		snprintf(in->stage, sizeof(in->stage), "%s", p->stage);
		snprintf(in->name, sizeof(in->name), "%s", p->name);
		in->pid = p->pid;
		in->uptime_ms = p->pid > 0 ? now - p->started_ms : 0;
		in->restarts = p->restarts;
		in->retiring = p->retiring;
		stats_stage *s = view_stage(v, p->stage);
		s->restarts += (uint64_t)p->restarts;
		if (!p->retiring)
			s->instances++;
		const cJSON *j = current(p->name, p->pid);
		if (j == NULL)
			continue;
		in->ready = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ready"));
		in->in = num(j, "in");
		in->out = num(j, "out");
		in->failed = num(j, "failed");
		in->pending = num(j, "pending");
		in->delivery = cJSON_GetObjectItemCaseSensitive(j, "retried") != NULL;
		in->retried = num(j, "retried");
		in->pending_bytes = num(j, "pending_bytes");
		in->oldest_ms = snum(j, "oldest_ms");
		const cJSON *le = cJSON_GetObjectItemCaseSensitive(j, "last_error");
		if (cJSON_IsString(le))
			snprintf(in->last_error, sizeof(in->last_error), "%s", le->valuestring);
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "spool");
		if (cJSON_IsObject(sp)) {
			in->has_spool = 1;
			in->spool_messages = num(sp, "messages");
			in->spool_bytes = num(sp, "bytes");
			in->spool_oldest_ms = snum(sp, "oldest_ms");
		}
		s->in += in->in;
		s->out += in->out;
		s->failed += in->failed;
		s->retried += in->retried;
		s->pending += in->pending;
		s->delivery |= in->delivery;
		if (in->has_spool) {
			s->has_spool = 1;
			s->spool_messages += in->spool_messages;
			s->spool_bytes += in->spool_bytes;
			if (in->spool_oldest_ms > s->spool_oldest_ms)
				s->spool_oldest_ms = in->spool_oldest_ms;
		}
		s->has_lat |= add_latency(j, &s->lat);
		add_rules(j, &v->rule, &v->nrule);
	}
	merge_rules(v->rule, &v->nrule);
}

void
stats_view_free(stats_view *v)
{
	for (int i = 0; i < v->nrule; i++)
		free(v->rule[i].name);
	free(v->rule);
	free(v->inst);
	free(v->stage);
	memset(v, 0, sizeof(*v));
}

/* ---- rendering ----------------------------------------------------------- */

static int
is_sink(const char *stage)
{
	return strncmp(stage, "sink-", 5) == 0;
}

static uint64_t
hist_count(const stats_hist *h)
{
	uint64_t n = 0;
	for (int i = 0; i <= PROC_LATENCY_NLE; i++)
		n += h->counts[i];
	return n;
}

/* The upper bound (s) of the bucket holding quantile q; -1: beyond the
 * last bound (+Inf), -2: no observation. */
static double
hist_quantile_le(const stats_hist *h, double q)
{
	uint64_t n = hist_count(h), seen = 0;
	if (n == 0)
		return -2;
	for (int i = 0; i < PROC_LATENCY_NLE; i++) {
		seen += h->counts[i];
		if ((double)seen >= q * (double)n)
			return proc_latency_le_s[i];
	}
	return -1;
}

void
stats_status_text(const stats_view *v, buf *out)
{
	buf_printf(out, "%-18s %-24s %8s %8s %3s %9s %9s %7s %7s %8s %10s %6s\n", "STAGE", "INSTANCE", "PID",
	    "UPTIME_S", "RST", "IN", "OUT", "FAILED", "RETRIED", "SPOOLED", "SPOOL_B", "OLD_S");
	for (int s = 0; s < v->nstage; s++) {
		const stats_stage *st = &v->stage[s];
		for (int i = 0; i < v->ninst; i++) {
			const stats_inst *c = &v->inst[i];
			if (strcmp(c->stage, st->stage) != 0)
				continue;
			buf_printf(out, "%-18s %-24s %8d %8lld %3d %9llu %9llu %7llu ", c->stage, c->name, (int)c->pid,
			    (long long)c->uptime_ms / 1000, c->restarts, (unsigned long long)c->in,
			    (unsigned long long)c->out, (unsigned long long)c->failed);
			if (c->delivery)
				buf_printf(out, "%7llu %8llu %10llu %6lld", (unsigned long long)c->retried,
				    (unsigned long long)c->pending, (unsigned long long)c->pending_bytes,
				    (long long)c->oldest_ms / 1000);
			else if (c->has_spool)
				buf_printf(out, "%7s %8llu %10llu %6s", "-", (unsigned long long)c->pending,
				    (unsigned long long)c->spool_bytes, "-");
			else
				buf_printf(out, "%7s %8llu %10s %6s", "-", (unsigned long long)c->pending, "-", "-");
			buf_printf(out, "%s\n", c->retiring ? " (stopping)" : "");
			if (c->last_error[0])
				buf_printf(out, "    last error: %.400s\n", c->last_error);
		}
		/* The stage's line: "(total)" first, so that the lines whose first
		 * field is a stage name stay one per instance. */
		buf_printf(out, "%-18s %-24s %8s %8s %3llu %9llu %9llu %7llu ", "  (total)", st->stage, "-", "-",
		    (unsigned long long)st->restarts, (unsigned long long)st->in, (unsigned long long)st->out,
		    (unsigned long long)st->failed);
		if (st->delivery)
			buf_printf(out, "%7llu ", (unsigned long long)st->retried);
		else
			buf_printf(out, "%7s ", "-");
		if (st->has_spool)
			buf_printf(out, "%8llu %10llu %6lld\n", (unsigned long long)st->pending,
			    (unsigned long long)st->spool_bytes, (long long)st->spool_oldest_ms / 1000);
		else
			buf_printf(out, "%8llu %10s %6s\n", (unsigned long long)st->pending, "-", "-");
	}
	/* Rules and actions as "rule NAME: key=value ...": scripts that read
	 * the table by columns (awk '$3 ~ /^[0-9]+$/') do not mistake these
	 * lines for instances. */
	if (v->nrule > 0)
		buf_addc(out, '\n');
	for (int i = 0; i < v->nrule; i++) {
		const stats_rule *r = &v->rule[i];
		buf_printf(out, "rule %s: matched=%llu fired=%llu no_result=%llu sql_errors=%llu\n", r->name,
		    (unsigned long long)r->matched, (unsigned long long)r->fired, (unsigned long long)r->no_result,
		    (unsigned long long)r->sql_errors);
	}
	int first = 1;
	for (int s = 0; s < v->nstage; s++) {
		const stats_stage *st = &v->stage[s];
		if (!is_sink(st->stage))
			continue;
		if (first)
			buf_addc(out, '\n');
		first = 0;
		buf_printf(out, "action %s: delivered=%llu failed=%llu retried=%llu", st->stage + 5,
		    (unsigned long long)st->out, (unsigned long long)st->failed, (unsigned long long)st->retried);
		uint64_t n = hist_count(&st->lat);
		double p99 = hist_quantile_le(&st->lat, 0.99);
		if (n) {
			buf_printf(out, " latency_avg_ms=%.1f", (double)st->lat.sum_ms / (double)n);
			if (p99 == -1)
				buf_printf(out, " latency_p99_le_s=+Inf");
			else
				buf_printf(out, " latency_p99_le_s=%g", p99);
		}
		buf_addc(out, '\n');
	}
}

static cJSON *
add_obj(cJSON *parent, const char *key)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL || (key ? !cJSON_AddItemToObject(parent, key, o) : !cJSON_AddItemToArray(parent, o)))
		log_die(111, "out of memory");
	return o;
}

static void
add_num(cJSON *o, const char *key, double n)
{
	if (cJSON_AddNumberToObject(o, key, n) == NULL)
		log_die(111, "out of memory");
}

static void
add_hist(cJSON *o, const stats_hist *h)
{
	cJSON *l = add_obj(o, "latency");
	cJSON *b = cJSON_AddArrayToObject(l, "buckets");
	if (b == NULL)
		log_die(111, "out of memory");
	uint64_t cum = 0;
	for (int i = 0; i <= PROC_LATENCY_NLE; i++) {
		cum += h->counts[i];
		cJSON *e = add_obj(b, NULL);
		if (i < PROC_LATENCY_NLE)
			add_num(e, "le", proc_latency_le_s[i]);
		else if (cJSON_AddStringToObject(e, "le", "+Inf") == NULL)
			log_die(111, "out of memory");
		add_num(e, "count", (double)cum);
	}
	add_num(l, "count", (double)cum);
	add_num(l, "sum_s", (double)h->sum_ms / 1000.0);
}

void
stats_status_json(const stats_view *v, buf *out)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *insts = cJSON_AddArrayToObject(root, "instances");
	if (root == NULL || insts == NULL)
		log_die(111, "out of memory");
	for (int i = 0; i < v->ninst; i++) {
		const stats_inst *c = &v->inst[i];
		cJSON *o = add_obj(insts, NULL);
		if (!cJSON_AddStringToObject(o, "stage", c->stage) || !cJSON_AddStringToObject(o, "name", c->name) ||
		    !cJSON_AddBoolToObject(o, "ready", c->ready) || !cJSON_AddBoolToObject(o, "stopping", c->retiring))
			log_die(111, "out of memory");
		add_num(o, "pid", c->pid);
		add_num(o, "uptime_s", (double)(c->uptime_ms / 1000));
		add_num(o, "restarts", c->restarts);
		add_num(o, "in", (double)c->in);
		add_num(o, "out", (double)c->out);
		add_num(o, "failed", (double)c->failed);
		add_num(o, "pending", (double)c->pending);
		if (c->delivery) {
			add_num(o, "retried", (double)c->retried);
			add_num(o, "oldest_s", (double)(c->oldest_ms / 1000));
			if (!cJSON_AddStringToObject(o, "last_error", c->last_error))
				log_die(111, "out of memory");
		}
		if (c->has_spool) {
			cJSON *sp = add_obj(o, "spool");
			add_num(sp, "messages", (double)c->spool_messages);
			add_num(sp, "bytes", (double)c->spool_bytes);
			add_num(sp, "oldest_s", (double)c->spool_oldest_ms / 1000.0);
		}
	}
	cJSON *stages = add_obj(root, "stages"), *actions = add_obj(root, "actions"), *rules = add_obj(root, "rules");
	for (int s = 0; s < v->nstage; s++) {
		const stats_stage *st = &v->stage[s];
		cJSON *o = add_obj(stages, st->stage);
		add_num(o, "instances", st->instances);
		add_num(o, "restarts", (double)st->restarts);
		add_num(o, "in", (double)st->in);
		add_num(o, "out", (double)st->out);
		add_num(o, "failed", (double)st->failed);
		if (st->delivery)
			add_num(o, "retried", (double)st->retried);
		add_num(o, "pending", (double)st->pending);
		if (st->has_spool) {
			cJSON *sp = add_obj(o, "spool");
			add_num(sp, "messages", (double)st->spool_messages);
			add_num(sp, "bytes", (double)st->spool_bytes);
			add_num(sp, "oldest_s", (double)st->spool_oldest_ms / 1000.0);
		}
		if (!is_sink(st->stage))
			continue;
		cJSON *a = add_obj(actions, st->stage + 5);
		add_num(a, "delivered", (double)st->out);
		add_num(a, "failed", (double)st->failed);
		add_num(a, "retried", (double)st->retried);
		add_hist(a, &st->lat);
	}
	for (int i = 0; i < v->nrule; i++) {
		const stats_rule *r = &v->rule[i];
		cJSON *o = add_obj(rules, r->name);
		add_num(o, "matched", (double)r->matched);
		add_num(o, "fired", (double)r->fired);
		add_num(o, "no_result", (double)r->no_result);
		add_num(o, "sql_errors", (double)r->sql_errors);
	}
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text == NULL)
		log_die(111, "out of memory");
	buf_adds(out, text);
	buf_addc(out, '\n');
	free(text);
}
