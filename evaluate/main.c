/* iotrules-evaluate: messages hop → rules → one job per action → the
 * action's jobs hop.  Stateless: a batch is acknowledged upstream only
 * after every job it produced was accepted by a sink.
 *
 * Per-rule counters (matched, fired, no result, SQL errors) go into the
 * stats file as "rules":{"NAME":[matched,fired,no_result,sql_errors]}
 * (rules that matched nothing yet are left out), for the supervisor's
 * status and /metrics.  A batch's outcomes are counted only once its
 * jobs were accepted: a batch answered "retry" is evaluated again, and
 * counting it then too would count its messages twice.  The counters are
 * kept by rule name for the life of the process, so a reload that keeps
 * a rule keeps its counts (and one that drops it keeps them too: a
 * counter never goes back). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dest.h"
#include "common/envelope.h"
#include "common/fanout.h"
#include "common/hop.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/proc.h"
#include "common/seen.h"
#include "evaluate/lib/engine.h"
#include "evaluate/lib/sqlaws.h"


/* One rule's counters; entries are never freed while the process runs,
 * so a batch may hold pointers to them past a reload. */
typedef struct rule_count {
	char *name;
	atomic_uint_fast64_t fired, no_result, sql_errors;
} rule_count;

static struct {
	proc_conf pc;
	const char *rules_dir;
	int workers, window, to_stdout;
	pthread_rwlock_t rules_lock;
	ruleset *rs;
	rule_count **rmap;    /* rs->rules[i]'s counters; swapped with rs */
	pthread_mutex_t rc_mu;   /* guards rc_all, rc_n (the stats thread reads them) */
	rule_count **rc_all;     /* every rule's counters, sorted by name */
	int rc_n;
	fanout *fan;
	/* AMQP transport: the ids of the messages handled recently (a
	 * failover may deliver a batch again); NULL with NNG. */
	seen *taken;
	pthread_mutex_t out_mu;
	pthread_mutex_t stats_mu;
	engine_stats st;
	atomic_int busy;    /* batches being handled */
	rules_context rctx;
	dest_list dests;    /* --config's destinations, for the loader */
} g = {.rctx = {.mqtt_version = 5}};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-evaluate --run-dir DIR --rules DIR [--name NAME] [options]\n"
	    "\n"
	    "Receives message batches on <run-dir>/messages/, runs every matching\n"
	    "rule and hands one job per action to <run-dir>/jobs/<action>/, where\n"
	    "the sink for that action picks it up.  SIGHUP reloads the rules\n"
	    "atomically between batches.\n"
	    "\n"
	    "  --rules DIR     rules directory (one topicRulePayload JSON per file)\n"
	    "  --workers N     batches evaluated concurrently (default 4)\n"
	    "  --window N      job batches in flight per action (default 8)\n"
	    "  --account-id ID the value of accountid() (default: Undefined)\n"
	    "  --mqtt-version 3|5  what the pipeline speaks (3: republish headers\n"
	    "                  are dropped, with a warning at load; default 5)\n"
	    "  --config FILE   the pipeline config, for its destinations (an http\n"
	    "                  URL no ENABLED destination covers loads with a warning)\n"
	    "  --assume-role   assume the roleArn of the SQL functions that call AWS\n"
	    "                  (get_dynamodb, get_secret, ...) with STS AssumeRole\n"
	    "                  (config assume_role); otherwise it is ignored\n"
	    "  --stdout        write jobs as JSON lines on stdout instead of\n"
	    "                  handing them to sinks\n");
}

/* Jobs of one batch, grouped by action type; or JSON lines (--stdout). */
typedef struct groups {
	fanout_batch fb;
	buf lines;
} groups;

static void
write_json_or_text(buf *out, env_slice s)
{
	/* Results and params are JSON except binary passthrough results. */
	cJSON *j = cJSON_ParseWithLength(s.p, s.n);
	if (j) {
		buf_add(out, s.p, s.n);
		cJSON_Delete(j);
	} else {
		buf_add_json_str(out, s.p, s.n);
	}
}

static void
emit(void *arg, const envelope *job)
{
	groups *gr = arg;
	if (g.to_stdout) {
		char id[37];
		env_id_str(job, id);
		buf *o = &gr->lines;
		buf_adds(o, "{\"id\":\"");
		buf_adds(o, id);
		buf_adds(o, "\",\"rule\":");
		buf_add_json_str(o, job->s[ENV_RULE].p, job->s[ENV_RULE].n);
		buf_adds(o, ",\"action\":");
		buf_add_json_str(o, job->s[ENV_ACTION].p, job->s[ENV_ACTION].n);
		buf_adds(o, ",\"topic\":");
		buf_add_json_str(o, job->s[ENV_TOPIC].p, job->s[ENV_TOPIC].n);
		buf_adds(o, ",\"params\":");
		write_json_or_text(o, job->s[ENV_PARAMS]);
		buf_adds(o, ",\"result\":");
		write_json_or_text(o, job->s[ENV_RESULT]);
		buf_adds(o, "}\n");
		return;
	}
	fanout_batch_add(&gr->fb, job);
}

/* A rule's outcome for one message of the batch being evaluated. */
typedef struct rule_event {
	rule_count *rc;
	enum engine_outcome o;
} rule_event;

/* Per worker thread: its SQL context and job groups, and the per-rule
 * outcomes of its batch (counted once the batch is done), freed when
 * the thread ends. */
typedef struct worker_state {
	sql_ctx ctx;
	groups gr;
	rule_event *ev;
	int nev, capev;
	buf ids;          /* the message ids of the batch run (g.taken) */
} worker_state;
static pthread_key_t worker_key;

static void
worker_state_free(void *p)
{
	worker_state *w = p;
	sql_ctx_fini(&w->ctx);
	fanout_batch_free(&w->gr.fb);
	buf_free(&w->gr.lines);
	buf_free(&w->ids);
	free(w->ev);
	free(w);
}

/* engine_stats.on_rule: runs under the rules read lock, so g.rmap is the
 * map of the ruleset being run. */
static void
on_rule(void *arg, int ri, enum engine_outcome o)
{
	worker_state *w = arg;
	if (w->nev == w->capev) {
		int cap = w->capev ? w->capev * 2 : 256;
		rule_event *ev = realloc(w->ev, (size_t)cap * sizeof(*ev));
		if (ev == NULL)
			log_die(111, "out of memory");
		w->ev = ev;
		w->capev = cap;
	}
	w->ev[w->nev].rc = g.rmap[ri];
	w->ev[w->nev++].o = o;
}

/* The batch is done (its jobs accepted): its outcomes count. */
static void
count_rule_events(worker_state *w)
{
	for (int i = 0; i < w->nev; i++) {
		rule_count *rc = w->ev[i].rc;
		atomic_fetch_add(w->ev[i].o == ENGINE_FIRED ? &rc->fired :
		    w->ev[i].o == ENGINE_NO_RESULT ? &rc->no_result : &rc->sql_errors, 1);
	}
	w->nev = 0;
}

static int
cmp_rule_count(const void *a, const void *b)
{
	return strcmp((*(rule_count *const *)a)->name, (*(rule_count *const *)b)->name);
}

/* The counters of each rule of rs (found by name, or new), in rule
 * order; a new array the caller owns. */
static rule_count **
rule_counts_for(const ruleset *rs)
{
	rule_count **map = calloc((size_t)(rs->n ? rs->n : 1), sizeof(*map));
	if (map == NULL)
		log_die(111, "out of memory");
	pthread_mutex_lock(&g.rc_mu);
	int old = g.rc_n, added = 0;
	for (int i = 0; i < rs->n; i++) {
		rule_count key = {.name = rs->rules[i]->name}, *kp = &key;
		rule_count **hit = old ? bsearch(&kp, g.rc_all, (size_t)old, sizeof(*hit), cmp_rule_count) : NULL;
		if (hit) {
			map[i] = *hit;
			continue;
		}
		rule_count *rc = calloc(1, sizeof(*rc));
		rule_count **all = realloc(g.rc_all, (size_t)(g.rc_n + 1) * sizeof(*all));
		if (rc == NULL || all == NULL || (rc->name = strdup(key.name)) == NULL)
			log_die(111, "out of memory");
		g.rc_all = all;
		g.rc_all[g.rc_n++] = rc;
		map[i] = rc;
		added++;
	}
	if (added)
		qsort(g.rc_all, (size_t)g.rc_n, sizeof(*g.rc_all), cmp_rule_count);
	pthread_mutex_unlock(&g.rc_mu);
	return map;
}

/* The stats file's "rules" section (proc_stats_section). */
static void
write_rule_counts(buf *out, void *arg)
{
	(void)arg;
	int first = 1;
	buf_addc(out, '{');
	pthread_mutex_lock(&g.rc_mu);
	for (int i = 0; i < g.rc_n; i++) {
		rule_count *rc = g.rc_all[i];
		uint64_t f = atomic_load(&rc->fired), nr = atomic_load(&rc->no_result), e = atomic_load(&rc->sql_errors);
		if (f + nr + e == 0)
			continue;
		if (!first)
			buf_addc(out, ',');
		first = 0;
		buf_add_json_str(out, rc->name, strlen(rc->name));
		buf_printf(out, ":[%llu,%llu,%llu,%llu]", (unsigned long long)(f + nr + e), (unsigned long long)f,
		    (unsigned long long)nr, (unsigned long long)e);
	}
	pthread_mutex_unlock(&g.rc_mu);
	buf_addc(out, '}');
}

static int handle_batch(const void *data, size_t len);

static int
handle(void *arg, const void *data, size_t len)
{
	(void)arg;
	atomic_fetch_add(&g.busy, 1);
	int rc = handle_batch(data, len);
	atomic_fetch_sub(&g.busy, 1);
	return rc;
}

static int
handle_batch(const void *data, size_t len)
{
	env_iter it;
	if (env_batch_open(&it, data, len) < 0) {
		log_error("messages hop: malformed batch of %zu bytes dropped", len);
		return HOP_OK;
	}
	worker_state *w = pthread_getspecific(worker_key);
	if (w == NULL) {
		w = calloc(1, sizeof(*w));
		sql_ctx_init(&w->ctx);
		pthread_setspecific(worker_key, w);
	}
	groups *gr = &w->gr;
	fanout_batch_reset(&gr->fb);
	buf_reset(&gr->lines);
	engine_stats st = {.on_rule = on_rule, .on_rule_arg = w};
	w->nev = 0;
	uint64_t msgs = 0;
	envelope e;
	uint32_t dup = 0;
	buf_reset(&w->ids);
	pthread_rwlock_rdlock(&g.rules_lock);
	while (env_batch_next_env(&it, ENV_MESSAGE, &e)) {
		if (g.taken) {
			if (seen_has(g.taken, e.id, sizeof(e.id))) {
				dup++;
				continue;
			}
			buf_add(&w->ids, e.id, sizeof(e.id));
		}
		msgs++;
		engine_run(g.rs, &w->ctx, &e, emit, gr, &st);
	}
	pthread_rwlock_unlock(&g.rules_lock);
	if (dup)
		log_info("messages hop: %u duplicate message(s) dropped (handled before a failover)", dup);
	if (it.bad)
		log_error("messages hop: %u malformed record(s) dropped", it.bad);
	proc_count_in(msgs);

	if (g.to_stdout) {
		pthread_mutex_lock(&g.out_mu);
		fwrite(gr->lines.data ? gr->lines.data : "", 1, gr->lines.len, stdout);
		fflush(stdout);
		pthread_mutex_unlock(&g.out_mu);
		proc_count_out(st.jobs);
		count_rule_events(w);
		return HOP_OK;
	}
	/* Wait until every sink accepted its jobs: only then is this batch
	 * ours no longer, and the reply lets ingest forget it. */
	if (fanout_send(g.fan, &gr->fb) < 0)
		return HOP_RETRY;
	for (size_t off = 0; g.taken && off + 16 <= w->ids.len; off += 16)
		seen_add(g.taken, w->ids.data + off, 16);
	proc_count_out(st.jobs);
	count_rule_events(w);
	pthread_mutex_lock(&g.stats_mu);
	g.st.messages += st.messages;
	g.st.fired += st.fired;
	g.st.jobs += st.jobs;
	pthread_mutex_unlock(&g.stats_mu);
	return HOP_OK;
}

static void
load_rules(void)
{
	char err[512];
	ruleset *rs = ruleset_load(g.rules_dir, err, sizeof(err));
	if (rs == NULL) {
		if (g.rs == NULL)
			log_die(100, "%s", err);
		log_error("%s; keeping the current rules", err);
		return;
	}
	rule_count **map = rule_counts_for(rs);
	/* Swap between batches: handlers hold the read lock for a batch. */
	pthread_rwlock_wrlock(&g.rules_lock);
	ruleset *old = g.rs;
	rule_count **old_map = g.rmap;
	g.rs = rs;
	g.rmap = map;
	pthread_rwlock_unlock(&g.rules_lock);
	ruleset_free(old);
	free(old_map);
	log_info("loaded %d rule(s) from %s", rs->n, g.rules_dir);
}

int
main(int argc, char **argv)
{
	proc_init("evaluate");
	const char *config_path = NULL;
	g.pc.name = "evaluate-1";
	g.workers = 4;
	g.window = 8;
	pthread_rwlock_init(&g.rules_lock, NULL);
	pthread_key_create(&worker_key, worker_state_free);
	pthread_mutex_init(&g.out_mu, NULL);
	pthread_mutex_init(&g.stats_mu, NULL);
	pthread_mutex_init(&g.rc_mu, NULL);
	opt_init("iotrules-evaluate", &argc, &argv);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (proc_opt(&g.pc, argc, argv, &i))
			continue;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(o, "--stdout") == 0) {
			g.to_stdout = 1;
			continue;
		}
		if (strcmp(o, "--assume-role") == 0) {
			sqlaws_set_assume_role(1);
			continue;
		}
		if (strncmp(o, "--", 2) != 0)
			opt_usage_error("unexpected argument '%s'", o);
		const char *v = opt_value(argc, argv, &i);
		if (strcmp(o, "--rules") == 0) g.rules_dir = v;
		else if (strcmp(o, "--workers") == 0) g.workers = (int)opt_int(o, v, 1, 256);
		else if (strcmp(o, "--account-id") == 0) engine_set_account_id(v);
		else if (strcmp(o, "--mqtt-version") == 0) g.rctx.mqtt_version = opt_mqtt_version(o, v);
		else if (strcmp(o, "--config") == 0) config_path = v;
		else if (strcmp(o, "--window") == 0) g.window = (int)opt_int(o, v, 1, 1 << 20);
		else opt_usage_error("unknown option %s", o);
	}
	if (!g.pc.run_dir || !g.rules_dir)
		opt_usage_error("--run-dir and --rules are required");
	if (config_path) {
		char derr[600];
		if (dest_load(config_path, &g.dests, derr, sizeof(derr)) < 0)
			log_die(100, "%s", derr);
		g.rctx.dests = &g.dests;
	}
	rules_set_context(&g.rctx);
	char perr[600];
	if (proc_check_ipc_paths(g.pc.run_dir, g.pc.name, perr, sizeof(perr)) < 0)
		log_die(100, "%s", perr);
	load_rules();
	g.fan = fanout_new(g.pc.run_dir, g.pc.name, g.window);
	char err[512];
	proc_stats_section("rules", write_rule_counts, NULL);
	proc_stats_start(&g.pc, "evaluate");
	proc_stop_watchdog(4500);
	if (strcmp(hop_transport(), "amqp") == 0 && (g.taken = seen_new(65536)) == NULL)
		log_die(111, "out of memory");
	hop_receiver *rx = hop_receiver_open(g.pc.run_dir, "messages", g.workers, handle, NULL, err, sizeof(err));
	if (rx == NULL)
		log_die(111, "messages hop: %s", err);
	proc_ready();
	while (!proc_stopping()) {
		proc_sleep_ms(200);
		if (proc_take_reload())
			load_rules();
	}
	/* Finish the batches being evaluated (2 s); after that, a batch still
	 * waiting for a sink that is gone is abandoned: its jobs hops are shut
	 * down, it is answered 'retry', and ingest resends it to another
	 * evaluate instance or to the next one. */
	hop_receiver_stop(rx);
	for (int t = 0; t < 2000 && atomic_load(&g.busy) > 0; t += 10)
		usleep(10000);
	fanout_shutdown(g.fan);
	hop_receiver_close(rx);
	fanout_free(g.fan);
	proc_stats_stop();   /* its last write reads the rule counters */
	ruleset_free(g.rs);
	free(g.rmap);
	for (int i = 0; i < g.rc_n; i++) {
		free(g.rc_all[i]->name);
		free(g.rc_all[i]);
	}
	free(g.rc_all);
	log_info("stopped after %llu message(s), %llu job(s)", (unsigned long long)g.st.messages,
	    (unsigned long long)g.st.jobs);
	return 0;
}
