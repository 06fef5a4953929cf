/* iotrules-error-handler: final action failures → the AWS error document
 * (ERRORS.md §2.1) → the rule's errorAction, as a job for that action's
 * sink.  The errorAction's parameters were resolved by evaluate against the
 * original message and travel with each job, so this stage needs no rules.
 * An error action's own failure is logged, never sent here again. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/fanout.h"
#include "common/hop.h"
#include "common/log.h"
#include "common/proc.h"

static struct {
	proc_conf pc;
	int window, workers;
	fanout *fan;
} g;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-error-handler --run-dir DIR [--name NAME] [--workers N]\n"
	    "\n"
	    "Receives final action failures on <run-dir>/failures/, builds the AWS\n"
	    "IoT error-action document (ruleName, topic, cloudwatchTraceId,\n"
	    "clientId, base64OriginalPayload, failures[]) and hands it as a job to\n"
	    "the sink of the rule's errorAction.\n");
}

/* Builds the error document for failure f into doc. */
static void
error_document(const envelope *f, buf *doc)
{
	char id[37];
	env_id_str(f, id);
	buf_adds(doc, "{\"ruleName\":");
	buf_add_json_str(doc, f->s[ENV_RULE].p, f->s[ENV_RULE].n);
	buf_adds(doc, ",\"topic\":");
	buf_add_json_str(doc, f->s[ENV_TOPIC].p, f->s[ENV_TOPIC].n);
	buf_adds(doc, ",\"cloudwatchTraceId\":\"");
	buf_adds(doc, id);
	buf_adds(doc, "\",\"clientId\":");
	if (f->s[ENV_CLIENTID].n)
		buf_add_json_str(doc, f->s[ENV_CLIENTID].p, f->s[ENV_CLIENTID].n);
	else
		buf_adds(doc, "\"n/a\"");
	buf_adds(doc, ",\"base64OriginalPayload\":\"");
	size_t n = f->s[ENV_PAYLOAD].n;
	buf_reserve(doc, 4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)doc->data + doc->len,
	    (const unsigned char *)f->s[ENV_PAYLOAD].p, (int)n);
	doc->len += (size_t)len;
	buf_adds(doc, "\",\"failures\":[");
	buf_add(doc, f->s[ENV_ERROR].p, f->s[ENV_ERROR].n);
	buf_adds(doc, "]}");
}

static int
handle(void *arg, const void *data, size_t len)
{
	(void)arg;
	env_iter it;
	if (env_batch_open(&it, data, len) < 0) {
		log_error("failures hop: malformed batch dropped");
		return HOP_OK;
	}
	fanout_batch fb = {0};
	uint64_t in = 0;
	envelope f;
	/* Documents and params of this batch are kept until it is sent. */
	buf *keep = NULL;
	int nkeep = 0;
	while (env_batch_next_env(&it, ENV_FAILURE, &f)) {
		in++;
		cJSON *ea = cJSON_ParseWithLength(f.s[ENV_ERRACTION].p, f.s[ENV_ERRACTION].n);
		cJSON *type = cJSON_GetObjectItemCaseSensitive(ea, "type");
		cJSON *p = cJSON_GetObjectItemCaseSensitive(ea, "params");
		if (!cJSON_IsString(type) || !cJSON_IsObject(p)) {
			log_error("rule %.*s: failure without a usable errorAction dropped", (int)f.s[ENV_RULE].n, f.s[ENV_RULE].p);
			cJSON_Delete(ea);
			continue;
		}
		keep = realloc(keep, sizeof(buf) * (size_t)(nkeep + 2));
		keep[nkeep] = (buf)BUF_ZERO;
		keep[nkeep + 1] = (buf)BUF_ZERO;
		error_document(&f, &keep[nkeep]);
		char *ps = cJSON_PrintUnformatted(p);
		buf_adds(&keep[nkeep + 1], ps ? ps : "{}");
		free(ps);
		envelope job = f;
		job.kind = ENV_JOB;
		job.s[ENV_ACTION] = (env_slice){type->valuestring, (uint32_t)strlen(type->valuestring)};
		job.s[ENV_PARAMS] = (env_slice){keep[nkeep + 1].data, (uint32_t)keep[nkeep + 1].len};
		job.s[ENV_RESULT] = (env_slice){keep[nkeep].data, (uint32_t)keep[nkeep].len};
		/* No errorAction for an errorAction: its failure is only logged. */
		job.s[ENV_ERRACTION] = (env_slice){"", 0};
		job.s[ENV_ERROR] = (env_slice){"", 0};
		fanout_batch_add(&fb, &job);
		log_kv(LOG_INFO, NULL, "rule %.*s: error document sent to its %s errorAction",
		    (int)f.s[ENV_RULE].n, f.s[ENV_RULE].p, type->valuestring);
		nkeep += 2;
		cJSON_Delete(ea);
	}
	if (it.bad)
		log_error("failures hop: %u malformed record(s) dropped", it.bad);
	proc_count_in(in);
	int rc = fanout_send(g.fan, &fb);
	if (rc == 0)
		proc_count_out(fb.jobs);
	fanout_batch_free(&fb);
	for (int i = 0; i < nkeep; i++)
		buf_free(&keep[i]);
	free(keep);
	return rc == 0 ? HOP_OK : HOP_RETRY;
}

int
main(int argc, char **argv)
{
	proc_init("error-handler");
	g.pc.name = "error-handler-1";
	g.window = 4;
	g.workers = 2;
	for (int i = 1; i < argc; i++) {
		if (proc_opt(&g.pc, argc, argv, &i))
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			g.workers = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 2;
			continue;
		}
		usage(stderr);
		log_die(100, "unknown option %s", argv[i]);
	}
	if (!g.pc.run_dir)
		log_die(100, "--run-dir is required (see --help)");
	g.fan = fanout_new(g.pc.run_dir, g.pc.name, g.window);
	char dir[4096], err[512];
	snprintf(dir, sizeof(dir), "%s/failures", g.pc.run_dir);
	proc_stats_start(&g.pc, "error-handler");
	hop_receiver *rx = hop_receiver_open(dir, g.workers, handle, NULL, err, sizeof(err));
	if (rx == NULL)
		log_die(111, "failures hop: %s", err);
	proc_ready();
	while (!proc_stopping())
		proc_sleep_ms(200);
	hop_receiver_close(rx);
	fanout_free(g.fan);
	proc_stats_stop();
	log_info("stopped");
	return 0;
}
