/* hopsend: test tool — sends hand-written envelopes as one batch to a hop
 * directory (as a stage would) and waits for the receiver's answer.
 *
 *   hopsend DIR NAME < records.jsonl
 *
 * DIR is <run_dir>/<hop> (the hop as the NNG transport lays it out).
 *
 * Each input line is one record: {"kind": "message"|"job"|"failure"|
 * "success", "id": UUID, "rule", "action", "topic", "clientid",
 * "payload" (text), "params", "result", "erraction", "error" (JSON values
 * stored as their compact text), "action_index", "action_count", "qos"}.
 * Exits 0 when the receiver took the batch, 1 otherwise. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "common/envelope.h"
#include "common/hop.h"

static env_slice
text_of(cJSON *j, const char *key, char **keep)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	if (v == NULL)
		return (env_slice){"", 0};
	*keep = cJSON_IsString(v) ? strdup(v->valuestring) : cJSON_PrintUnformatted(v);
	return (env_slice){*keep, (uint32_t)strlen(*keep)};
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hopsend DIR NAME < records.jsonl\n");
		return 1;
	}
	static const struct { const char *name; int kind; } kinds[] = {
	    {"message", ENV_MESSAGE}, {"job", ENV_JOB}, {"failure", ENV_FAILURE}, {"success", ENV_SUCCESS}};
	static const struct { const char *key; int slice; } slices[] = {
	    {"topic", ENV_TOPIC}, {"clientid", ENV_CLIENTID}, {"payload", ENV_PAYLOAD}, {"rule", ENV_RULE},
	    {"action", ENV_ACTION}, {"params", ENV_PARAMS}, {"result", ENV_RESULT}, {"erraction", ENV_ERRACTION},
	    {"error", ENV_ERROR}};
	buf b = BUF_ZERO;
	env_batch_begin(&b);
	char line[65536];
	int n = 0;
	while (fgets(line, sizeof(line), stdin)) {
		cJSON *j = cJSON_Parse(line);
		if (j == NULL)
			continue;
		envelope e = {0};
		cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kind");
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (cJSON_IsString(k) && strcmp(k->valuestring, kinds[i].name) == 0)
				e.kind = (uint8_t)kinds[i].kind;
		cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
		if (!cJSON_IsString(id) || uuid_parse(id->valuestring, e.id) != 0)
			uuid_generate_random(e.id);
		cJSON *x;
		if ((x = cJSON_GetObjectItemCaseSensitive(j, "action_index")))
			e.action_index = (uint16_t)x->valueint;
		if ((x = cJSON_GetObjectItemCaseSensitive(j, "action_count")))
			e.action_count = (uint16_t)x->valueint;
		if ((x = cJSON_GetObjectItemCaseSensitive(j, "qos")))
			e.qos = (uint8_t)x->valueint;
		char *keep[16] = {0};
		for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++)
			e.s[slices[i].slice] = text_of(j, slices[i].key, &keep[i]);
		env_append(&b, &e);
		for (int i = 0; i < 16; i++)
			free(keep[i]);
		cJSON_Delete(j);
		n++;
	}
	env_batch_end(&b, 0);
	char err[512];
	char *run_dir = strdup(argv[1]), *hop = strrchr(run_dir, '/');
	if (hop == NULL || hop == run_dir) {
		fprintf(stderr, "hopsend: DIR must be <run_dir>/<hop>\n");
		return 1;
	}
	*hop++ = 0;
	hop_sender *h = hop_sender_open(run_dir, hop, argv[2], 1, err, sizeof(err));
	if (h == NULL) {
		fprintf(stderr, "hopsend: %s\n", err);
		return 1;
	}
	int rc = hop_send_wait(h, b.data, b.len);
	hop_sender_close(h);
	buf_free(&b);
	fprintf(stderr, "hopsend: %d record(s) %s\n", n, rc == HOP_OK ? "taken" : "not taken");
	return rc == HOP_OK ? 0 : 1;
}
