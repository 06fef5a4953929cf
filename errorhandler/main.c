/* iotrules-error-handler: final action outcomes → the AWS error document
 * (ERRORS.md §2.1) → the rule's errorAction, as a job for that action's
 * sink.  The errorAction's parameters were resolved by evaluate against the
 * original message and travel with each report, so this stage needs no
 * rules.  An error action's own failure is logged, never sent here again.
 *
 * One document per rule and message (ERRORS.md §2.3): a rule with one
 * action has its failure turned into a document at once; for a rule with
 * several actions, sinks report successes as well as failures, and the
 * reports are gathered by (message id, rule) until every action has
 * reported, or --grace-ms has passed, then one document lists all the
 * failures (none: no document).
 *
 * A failure that carries a "batch" (a batched http request that failed:
 * ERRORS.md 2.2) is gathered by batch id instead, until the batch's size
 * has come or --grace-ms has passed, into one document whose
 * payloadsWithMetadata lists each message (trace id, client id, payload,
 * and its topic when the batch mixed topics) and whose failure names them
 * in affectedIds.  Only single-action rules: a rule with several actions
 * keeps one document per message.
 *
 * Reports are spooled before the hop is answered, and a spool batch is
 * marked done only when every group its reports belong to has been
 * settled: a crash replays them (a document may then be sent twice, never
 * lost).  The spool of an instance that is gone for good (rolled, scaled
 * down) is taken over by a running one. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/fanout.h"
#include "common/deadline.h"
#include "common/hop.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/proc.h"
#include "common/spool.h"
#include "common/stage.h"

#define NBUCKETS 4096
#define MAX_OPEN_TICKETS 1024

/* Reports of one (message, rule) not settled yet. */
typedef struct group {
	struct group *next;       /* hash chain */
	uint8_t id[16];
	char *rule;
	buf first;                /* the first report's record, for the document */
	buf failures;             /* ENV_ERROR objects, comma-separated */
	uint32_t seen;            /* action_index bits already counted */
	int reported, expected, nfail;
	int64_t born_ms;
	uint64_t tickets[8];      /* spool batches holding its reports */
	int ntickets;
} group;

/* A spool batch and how many of its reports belong to open groups. */
typedef struct open_ticket {
	uint64_t ticket;
	int open;
} open_ticket;

static struct {
	proc_conf pc;
	int window, workers, grace_ms;
	fanout *fan;
	stage_input in;   /* the spool and the failures hop feeding it */
	group *buckets[NBUCKETS];
	int ngroups;
	open_ticket tk[MAX_OPEN_TICKETS];
	int ntk;
} g;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-error-handler --run-dir DIR --state-dir DIR [--name NAME]\n"
	    "                              [--workers N] [--grace-ms MS]\n"
	    "\n"
	    "Receives final action outcomes on <run-dir>/failures/, spools them under\n"
	    "<state-dir>/error-handler/<name>/, builds one AWS IoT error-action\n"
	    "document per rule and message (ruleName, topic, cloudwatchTraceId,\n"
	    "clientId, base64OriginalPayload, failures[]) and hands it as a job to the\n"
	    "sink of the rule's errorAction.\n"
	    "\n"
	    "  --grace-ms MS   how long to wait for the other actions of a rule with\n"
	    "                  several actions before sending what failed (30000)\n"
	    "  --spool-max-bytes N  bound of the spool (1 GiB); when full, sinks wait\n"
	    "\n"
	    "A report is acknowledged only once the document it leads to was taken\n"
	    "by the errorAction's sink; SIGTERM while that sink is down leaves the\n"
	    "report in the spool for the next start.\n");
}

/* ---- documents ------------------------------------------------------------ */

/* The message's own members of a document: "cloudwatchTraceId",
 * "clientId" and "base64OriginalPayload" (for the document itself, or one
 * entry of a batch's payloadsWithMetadata). */
static void
add_origin(buf *doc, const envelope *f)
{
	char id[37];
	env_id_str(f, id);
	buf_printf(doc, "\"cloudwatchTraceId\":\"%s\",\"clientId\":", id);
	if (f->s[ENV_CLIENTID].n)
		buf_add_json_str(doc, f->s[ENV_CLIENTID].p, f->s[ENV_CLIENTID].n);
	else
		buf_adds(doc, "\"n/a\"");
	buf_adds(doc, ",\"base64OriginalPayload\":\"");
	size_t n = f->s[ENV_PAYLOAD].n;
	buf_reserve(doc, 4 * ((n + 2) / 3) + 1);
	doc->len += (size_t)EVP_EncodeBlock((unsigned char *)doc->data + doc->len,
	    (const unsigned char *)f->s[ENV_PAYLOAD].p, (int)n);
	buf_addc(doc, '"');
}

/* Builds the error document for report f and the failures[] body. */
static void
error_document(const envelope *f, const buf *failures, buf *doc)
{
	buf_adds(doc, "{\"ruleName\":");
	buf_add_json_str(doc, f->s[ENV_RULE].p, f->s[ENV_RULE].n);
	buf_adds(doc, ",\"topic\":");
	buf_add_json_str(doc, f->s[ENV_TOPIC].p, f->s[ENV_TOPIC].n);
	buf_addc(doc, ',');
	add_origin(doc, f);
	buf_adds(doc, ",\"failures\":[");
	buf_add(doc, failures->data, failures->len);
	buf_adds(doc, "]}");
}

/* Sends doc through the errorAction of report f; waits until that sink
 * has it.  0, or -1 when it must be tried again later. */
static int
send_doc(const envelope *f, const buf *doc)
{
	cJSON *ea = cJSON_ParseWithLength(f->s[ENV_ERRACTION].p, f->s[ENV_ERRACTION].n);
	cJSON *type = cJSON_GetObjectItemCaseSensitive(ea, "type");
	cJSON *p = cJSON_GetObjectItemCaseSensitive(ea, "params");
	if (!cJSON_IsString(type) || !cJSON_IsObject(p)) {
		log_error("rule %.*s: failure without a usable errorAction dropped", (int)f->s[ENV_RULE].n, f->s[ENV_RULE].p);
		cJSON_Delete(ea);
		return 0;
	}
	buf params = BUF_ZERO;
	char *ps = cJSON_PrintUnformatted(p);
	buf_adds(&params, ps ? ps : "{}");
	free(ps);
	envelope job = *f;
	job.kind = ENV_JOB;
	job.s[ENV_ACTION] = (env_slice){type->valuestring, (uint32_t)strlen(type->valuestring)};
	job.s[ENV_PARAMS] = (env_slice){params.data, (uint32_t)params.len};
	job.s[ENV_RESULT] = (env_slice){doc->data, (uint32_t)doc->len};
	/* No errorAction for an errorAction: its failure is only logged. */
	job.s[ENV_ERRACTION] = (env_slice){"", 0};
	job.s[ENV_ERROR] = (env_slice){"", 0};
	fanout_batch fb = {0};
	fanout_batch_add(&fb, &job);
	int rc = fanout_send(g.fan, &fb);
	if (rc == 0) {
		proc_count_out(1);
		log_info("rule %.*s: error document sent to its %s errorAction", (int)f->s[ENV_RULE].n,
		    f->s[ENV_RULE].p, type->valuestring);
	}
	fanout_batch_free(&fb);
	buf_free(&params);
	cJSON_Delete(ea);
	return rc;
}

/* Sends report f's document with these failures. */
static int
send_document(const envelope *f, const buf *failures)
{
	buf doc = BUF_ZERO;
	error_document(f, failures, &doc);
	int rc = send_doc(f, &doc);
	buf_free(&doc);
	return rc;
}

/* ---- spool tickets ---------------------------------------------------------- */

static open_ticket *
ticket_find(uint64_t t)
{
	for (int i = 0; i < g.ntk; i++)
		if (g.tk[i].ticket == t)
			return &g.tk[i];
	return NULL;
}

/* One report of ticket t is settled; the ticket is done with its last. */
static void
ticket_release(uint64_t t)
{
	open_ticket *o = ticket_find(t);
	if (o == NULL || --o->open > 0)
		return;
	spool_done(g.in.sp, t);
	*o = g.tk[--g.ntk];
}

/* ---- groups ------------------------------------------------------------------- */

static unsigned
bucket_of(const uint8_t id[16], const char *rule, size_t rlen)
{
	unsigned h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ id[i]) * 16777619u;
	for (size_t i = 0; i < rlen; i++)
		h = (h ^ (unsigned char)rule[i]) * 16777619u;
	return h % NBUCKETS;
}

static void
group_free(group *gr)
{
	free(gr->rule);
	buf_free(&gr->first);
	buf_free(&gr->failures);
	free(gr);
}

/* Sends the group's document (if anything failed), releases its tickets
 * and frees it.  0, or -1 if the document could not be sent (the group
 * stays). */
static int
group_settle(group **link)
{
	group *gr = *link;
	if (gr->nfail > 0) {
		envelope f;
		if (env_decode(gr->first.data, gr->first.len, &f) == 0 && send_document(&f, &gr->failures) < 0)
			return -1;
	}
	for (int i = 0; i < gr->ntickets; i++)
		ticket_release(gr->tickets[i]);
	*link = gr->next;
	g.ngroups--;
	group_free(gr);
	return 0;
}

/* Adds report f (from spool batch t) to its group; settles the group when
 * every action has reported.  The ticket's open count covers the report
 * until then. */
static void
group_add(const envelope *f, const char *rec, size_t reclen, uint64_t t)
{
	size_t rlen = f->s[ENV_RULE].n;
	unsigned b = bucket_of(f->id, f->s[ENV_RULE].p, rlen);
	group **link = &g.buckets[b], *gr;
	for (gr = *link; gr; link = &gr->next, gr = gr->next)
		if (memcmp(gr->id, f->id, 16) == 0 && strlen(gr->rule) == rlen && memcmp(gr->rule, f->s[ENV_RULE].p, rlen) == 0)
			break;
	if (gr == NULL) {
		gr = calloc(1, sizeof(*gr));
		if (gr == NULL)
			log_die(111, "out of memory");
		memcpy(gr->id, f->id, 16);
		gr->rule = strndup(f->s[ENV_RULE].p, rlen);
		buf_add(&gr->first, rec, reclen);
		gr->expected = f->action_count;
		gr->born_ms = proc_now_ms();
		gr->next = g.buckets[b];
		g.buckets[b] = gr;
		link = &g.buckets[b];
		g.ngroups++;
	}
	/* The ticket stays open until the group is settled. */
	int known = 0;
	for (int i = 0; i < gr->ntickets; i++)
		known |= gr->tickets[i] == t;
	if (!known && gr->ntickets < 8)
		gr->tickets[gr->ntickets++] = t;
	else
		ticket_release(t);   /* counted already (or too many: settle early) */
	uint32_t bit = f->action_index < 32 ? 1u << f->action_index : 0;
	if (bit && (gr->seen & bit))
		return;   /* the same action again (at-least-once): once is enough */
	gr->seen |= bit;
	gr->reported++;
	if (f->kind == ENV_FAILURE) {
		if (gr->nfail++)
			buf_addc(&gr->failures, ',');
		buf_add(&gr->failures, f->s[ENV_ERROR].p, f->s[ENV_ERROR].n);
		if (gr->nfail == 1 && gr->first.len) {
			/* The document is built from a failure's record. */
			buf_reset(&gr->first);
			buf_add(&gr->first, rec, reclen);
		}
	}
	if (gr->reported >= gr->expected)
		group_settle(link);
}

/* Settles the groups older than the grace period. */
static void
expire_groups(void)
{
	int64_t now = proc_now_ms();
	for (int b = 0; b < NBUCKETS && g.ngroups > 0; b++) {
		group **link = &g.buckets[b];
		while (*link) {
			if (now - (*link)->born_ms >= g.grace_ms) {
				log_warn("rule %s: %d of %d actions reported within %d ms; sending what failed",
				    (*link)->rule, (*link)->reported, (*link)->expected, g.grace_ms);
				if (group_settle(link) < 0)
					link = &(*link)->next;
			} else {
				link = &(*link)->next;
			}
		}
	}
}

/* ---- batches (ERRORS.md 2.2) ------------------------------------------------------ */

/* The failures of the messages of one failed batched request (an http
 * action with enableBatching: the sink adds "batch": {"id", "size",
 * "acrossTopics"} to each), gathered into one document with
 * payloadsWithMetadata, once all have come or after the grace time. */
typedef struct bgroup {
	struct bgroup *next;
	char *id;
	int size, across, n;
	buf recs;                 /* u32 length + record, per member */
	int64_t born_ms;
	uint64_t tickets[16];
	int ntickets;
} bgroup;

static bgroup *batches;

/* The batch a failure report belongs to, or NULL (parsed; the caller
 * deletes it). */
static cJSON *
batch_of(const envelope *f)
{
	if (f->kind != ENV_FAILURE || f->action_count > 1 || f->s[ENV_ERROR].n == 0)
		return NULL;
	cJSON *e = cJSON_ParseWithLength(f->s[ENV_ERROR].p, f->s[ENV_ERROR].n);
	cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "batch");
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(b, "id")) ||
	    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(b, "size"))) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

static void
add_meta(buf *doc, const envelope *f, int i, int across)
{
	buf_printf(doc, "%s{\"id\":%d,", i ? "," : "", i);
	if (across) {
		buf_adds(doc, "\"topic\":");
		buf_add_json_str(doc, f->s[ENV_TOPIC].p, f->s[ENV_TOPIC].n);
		buf_addc(doc, ',');
	}
	add_origin(doc, f);
	buf_addc(doc, '}');
}

/* Sends the batch's document: the first member's failure, without its
 * "batch", with "affectedIds" naming every member.  0, or -1 (try later). */
static int
bgroup_send(bgroup *bg)
{
	buf doc = BUF_ZERO;
	envelope f0, f;
	const char *p = bg->recs.data;
	uint32_t len;
	memcpy(&len, p, 4);
	if (env_decode(p + 4, len, &f0) < 0)
		return 0;
	buf_adds(&doc, "{\"ruleName\":");
	buf_add_json_str(&doc, f0.s[ENV_RULE].p, f0.s[ENV_RULE].n);
	if (!bg->across) {
		buf_adds(&doc, ",\"topic\":");
		buf_add_json_str(&doc, f0.s[ENV_TOPIC].p, f0.s[ENV_TOPIC].n);
	}
	buf_adds(&doc, ",\"payloadsWithMetadata\":[");
	for (int i = 0; i < bg->n; i++, p += 4 + len) {
		memcpy(&len, p, 4);
		if (env_decode(p + 4, len, &f) == 0)
			add_meta(&doc, &f, i, bg->across);
	}
	cJSON *e = cJSON_ParseWithLength(f0.s[ENV_ERROR].p, f0.s[ENV_ERROR].n);
	cJSON_DeleteItemFromObjectCaseSensitive(e, "batch");
	cJSON *ids = cJSON_AddArrayToObject(e, "affectedIds");
	for (int i = 0; i < bg->n; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateNumber(i));
	char *es = cJSON_PrintUnformatted(e);
	buf_printf(&doc, "],\"failures\":[%s]}", es ? es : "{}");
	free(es);
	cJSON_Delete(e);
	int rc = send_doc(&f0, &doc);
	buf_free(&doc);
	return rc;
}

/* Sends and frees the batch if it is complete (or force); 0, or -1 if it
 * could not be sent (it stays). */
static int
bgroup_settle(bgroup **link, int force)
{
	bgroup *bg = *link;
	if (!force && bg->n < bg->size)
		return 0;
	if (bgroup_send(bg) < 0)
		return -1;
	for (int i = 0; i < bg->ntickets; i++)
		ticket_release(bg->tickets[i]);
	*link = bg->next;
	free(bg->id);
	buf_free(&bg->recs);
	free(bg);
	return 0;
}

/* Adds failure report f (record rec of spool batch t) to its batch. */
static void
bgroup_add(const cJSON *e, const char *rec, uint32_t reclen, uint64_t t)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "batch");
	const char *id = cJSON_GetObjectItemCaseSensitive(b, "id")->valuestring;
	bgroup **link = &batches;
	while (*link && strcmp((*link)->id, id) != 0)
		link = &(*link)->next;
	if (*link == NULL) {
		bgroup *bg = calloc(1, sizeof(*bg));
		if (bg == NULL || (bg->id = strdup(id)) == NULL)
			log_die(111, "out of memory");
		bg->size = cJSON_GetObjectItemCaseSensitive(b, "size")->valueint;
		bg->across = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "acrossTopics"));
		bg->born_ms = proc_now_ms();
		*link = bg;
	}
	bgroup *bg = *link;
	buf_add_u32(&bg->recs, reclen);
	buf_add(&bg->recs, rec, reclen);
	bg->n++;
	int known = 0;
	for (int i = 0; i < bg->ntickets; i++)
		known |= bg->tickets[i] == t;
	if (!known && bg->ntickets < 16) {
		ticket_find(t)->open++;
		bg->tickets[bg->ntickets++] = t;
	}
	bgroup_settle(link, 0);
}

static void
expire_batches(void)
{
	int64_t now = proc_now_ms();
	bgroup **link = &batches;
	while (*link)
		if (now - (*link)->born_ms < g.grace_ms || bgroup_settle(link, 1) < 0)
			link = &(*link)->next;
}

/* ---- the stage ------------------------------------------------------------------ */

/* Processes one spooled batch: single-action failures become documents
 * at once, the other reports join their groups.  A document is tried
 * until its errorAction's sink has it; if the stage is told to stop
 * first, the walk ends there and the batch is never acknowledged by this
 * process (it is redone at the next start: a document may then be sent
 * twice, never lost).  -1 in that case. */
static int
process(const buf *b, uint64_t t)
{
	if (g.ntk == MAX_OPEN_TICKETS) {
		/* The spool hands out no more open batches than this. */
		log_error("failures spool: too many open batches; one is acknowledged early");
		spool_done(g.in.sp, g.tk[0].ticket);
		g.tk[0] = g.tk[--g.ntk];
	}
	open_ticket *o = &g.tk[g.ntk++];
	o->ticket = t;
	o->open = 1;   /* held while the batch is walked */
	env_iter it = {b->data, b->data + b->len, UINT32_MAX, 0};
	const char *rec;
	uint32_t rn;
	while (env_batch_next(&it, &rec, &rn)) {
		envelope f;
		if (env_decode(rec, rn, &f) < 0 || (f.kind != ENV_FAILURE && f.kind != ENV_SUCCESS)) {
			it.bad++;
			continue;
		}
		cJSON *be = batch_of(&f);
		if (be) {
			bgroup_add(be, rec, rn, t);
			cJSON_Delete(be);
			continue;
		}
		if (f.action_count <= 1) {
			if (f.kind == ENV_FAILURE) {
				buf one = BUF_ZERO;
				buf_add(&one, f.s[ENV_ERROR].p, f.s[ENV_ERROR].n);
				int sent;
				while ((sent = send_document(&f, &one)) < 0 && !proc_stopping())
					proc_sleep_ms(100);
				buf_free(&one);
				if (sent < 0) {
					log_warn("stopping before the errorAction's sink took a document; "
					    "its report stays in the spool");
					return -1;   /* the ticket stays open: not acknowledged */
				}
			}
			continue;
		}
		ticket_find(t)->open++;
		group_add(&f, rec, rn, t);
	}
	if (it.bad)
		log_error("failures spool: %u malformed record(s) skipped", it.bad);
	ticket_release(t);
	return 0;
}

/* Moves the reports in the spool of an error handler that is gone
 * (rolled, scaled down) into this one's spool, then marks them done
 * there: they are gathered here like any other. */
static void
take_orphan(spool *o, const char *name, void *arg)
{
	buf *b = arg;
	uint64_t left = spool_pending(o);
	if (left > 0)
		log_info("adopting %llu report(s) from the spool of %s", (unsigned long long)left, name);
	while (spool_pending(o) > 0 && !proc_stopping()) {
		uint64_t t;
		buf_reset(b);
		int n = spool_next(o, b, 256, 4 << 20, 10, &t);
		if (n <= 0)
			break;
		if (spool_append(g.in.sp, b->data, b->len, (uint32_t)n) != SPOOL_OK)
			break;
		spool_done(o, t);
	}
}

static void *
worker_main(void *arg)
{
	(void)arg;
	buf b = BUF_ZERO, ob = BUF_ZERO;
	int64_t last_expire = proc_now_ms(), last_adopt = 0;
	while (!proc_stopping()) {
		uint64_t t;
		buf_reset(&b);
		int n = spool_next(g.in.sp, &b, 256, 4 << 20, 100, &t);
		if (n < 0)
			break;
		if (n > 0 && process(&b, t) < 0)
			break;
		if (proc_now_ms() - last_expire >= 1000) {
			expire_groups();
			expire_batches();
			last_expire = proc_now_ms();
		}
		if (n == 0 && proc_now_ms() - last_adopt >= 1000) {
			stage_input_adopt(&g.in, take_orphan, &ob);
			last_adopt = proc_now_ms();
		}
		proc_set_pending((uint64_t)g.ngroups);
		/* The reports spooled and not yet settled; their age is not
		 * known here (0). */
		proc_set_spool(spool_pending(g.in.sp), spool_pending_bytes(g.in.sp), 0);
	}
	buf_free(&b);
	buf_free(&ob);
	return NULL;
}

int
main(int argc, char **argv)
{
	proc_init("error-handler");
	g.pc.name = "error-handler-1";
	g.window = 4;
	g.workers = 2;
	g.grace_ms = 30000;
	opt_init("iotrules-error-handler", &argc, &argv);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (proc_opt(&g.pc, argc, argv, &i))
			continue;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		int taken = stage_input_opt(&g.in, argc, argv, &i);
		if (taken < 0)
			opt_usage_error("bad value for %s", o);
		if (taken)
			continue;
		if (strcmp(o, "--workers") == 0)
			g.workers = (int)opt_int(o, opt_value(argc, argv, &i), 1, 256);
		else if (strcmp(o, "--grace-ms") == 0)
			g.grace_ms = (int)opt_int(o, opt_value(argc, argv, &i), 1, 3600000);
		else
			opt_usage_error("unknown option %s", o);
	}
	if (!g.pc.run_dir || !g.pc.state_dir)
		opt_usage_error("--run-dir and --state-dir are required");
	char err[512];
	if (proc_check_ipc_paths(g.pc.run_dir, g.pc.name, err, sizeof(err)) < 0)
		log_die(100, "%s", err);
	g.fan = fanout_new(g.pc.run_dir, g.pc.name, g.window);
	proc_stats_start(&g.pc, "error-handler");
	proc_stop_watchdog(4500);
	/* The receiver first: NNG initialises itself on its first use, and
	 * libnng 1.5.2's lazy initialisation races with a first use on
	 * another thread (ThreadSanitizer saw it); so that first use is here,
	 * before the worker (whose fanout opens sockets) exists. */
	g.in.what = "failures";
	if (stage_input_open(&g.in, &g.pc, "error-handler", "failures", g.workers, err, sizeof(err)) < 0)
		log_die(111, "%s", err);
	/* One worker settles groups (they are not shared between threads). */
	pthread_t wt;
	pthread_create(&wt, NULL, worker_main, NULL);
	proc_ready();
	while (!proc_stopping())
		proc_sleep_ms(200);
	/* New reports are refused (their sinks resend them to another
	 * instance or to us after the restart); the worker gets 3 s to finish
	 * its document, then the jobs hops are shut down under it, so a sink
	 * that is down cannot hold the stop.  What it had not handed over
	 * stays unacknowledged in the spool. */
	stage_input_stop(&g.in);
	struct timespec dl;
	deadline_in(&dl, 3000);
	if (pthread_timedjoin_np(wt, NULL, &dl) != 0) {
		fanout_shutdown(g.fan);
		pthread_join(wt, NULL);
	}
	/* Open groups stay in the spool (their batches are not done) and are
	 * gathered again at the next start. */
	for (int b = 0; b < NBUCKETS; b++)
		while (g.buckets[b]) {
			group *gr = g.buckets[b];
			g.buckets[b] = gr->next;
			group_free(gr);
		}
	while (batches) {
		bgroup *bg = batches;
		batches = bg->next;
		free(bg->id);
		buf_free(&bg->recs);
		free(bg);
	}
	stage_input_close(&g.in);
	fanout_free(g.fan);
	proc_stats_stop();
	log_info("stopped");
	return 0;
}
