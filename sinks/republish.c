/* iotrules-sink-republish: the republish action (ACTIONS.md §2.16):
 * publish the SQL result to an MQTT topic with QoS 0 or 1, with the
 * action's MQTT 5 `headers` as publish properties (sinks/lib/mqttprops.h;
 * dropped, with one warning, when the connection speaks MQTT 3.1.1).
 * Publishing and PUBACK tracking: sinks/lib/mqttpub.h. */
#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/opt.h"
#include "sinks/lib/mqttprops.h"
#include "sinks/lib/mqttpub.h"
#include "sinks/lib/sink.h"

#define WHAT "Failed to republish"

static struct {
	mqttclient_opts mo;
	int warned_v3;
} R;

static int
start(void *state)
{
	(void)state;
	char err[600];
	if (R.mo.url == NULL)
		R.mo.url = "mqtt://127.0.0.1:1883";
	R.mo.clean = 1;
	R.mo.keepalive = 30;
	R.mo.reconnect_max_s = 5;
	if (R.mo.password)
		log_warn("--password is visible to every local user in the process list; "
		    "use --password-file or IOTRULES_MQTT_PASSWORD instead");
	if (mqttpub_start(&R.mo, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static void tick(void *state) { (void)state; mqttpub_tick(); }
static void stop(void *state) { (void)state; mqttpub_stop(); }

/* Checks the resolved topic as AWS would: no wildcards, not empty, within
 * the limits; "$$x" publishes to "$x" (SQL.md §3.3). */
static const char *
check_topic(const char *t)
{
	if (t[0] == 0)
		return "the topic is empty";
	if (strpbrk(t, "+#"))
		return "the topic contains a wildcard character ('+' or '#')";
	if (strlen(t) > 256)
		return "the topic is longer than 256 bytes";
	if (t[0] == '$' && t[1] != '$')
		return "reserved topics must be written with '$$'";
	return NULL;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	for (int i = 0; i < n; i++) {
		sink_job *j = jobs[i];
		const char *t = sink_param(j, "topic");
		const cJSON *qos = cJSON_GetObjectItemCaseSensitive(j->params, "qos");
		const cJSON *headers = cJSON_GetObjectItemCaseSensitive(j->params, "headers");
		snprintf(j->resource, sizeof(j->resource), "%s", t);
		const char *bad = check_topic(t);
		if (bad) {
			sink_job_fail(j, SINK_FATAL, WHAT, bad);
			continue;
		}
		mosquitto_property *props = NULL;
		char why[256];
		if (headers && mqttpub_version() == 3) {
			if (!R.warned_v3++)
				log_warn("republish headers are MQTT 5 properties: dropped on this MQTT 3.1.1 connection");
		} else if (mqttprops_from_headers(headers, &props, why, sizeof(why)) < 0) {
			sink_job_fail(j, SINK_FATAL, WHAT, why);
			continue;
		}
		if (t[0] == '$')
			t++;   /* "$$aws/..." → "$aws/..." */
		mqttpub_send(j, t, cJSON_IsNumber(qos) && qos->valueint ? 1 : 0, props, WHAT);
		mosquitto_property_free_all(&props);
	}
}

static int
option(void *state, int argc, char **argv, int *i)
{
	(void)state;
	static const struct { const char *name; const char **dst; } opts[] = {
	    {"--broker", &R.mo.url}, {"--client-id", &R.mo.client_id},
	    {"--username", &R.mo.username}, {"--password", &R.mo.password},
	    {"--password-file", &R.mo.password_file}, {"--cafile", &R.mo.cafile},
	    {"--cert", &R.mo.certfile}, {"--key", &R.mo.keyfile}, {NULL, NULL}};
	for (int k = 0; opts[k].name; k++)
		if (strcmp(argv[*i], opts[k].name) == 0) {
			if (*i + 1 >= argc)
				return -1;
			*opts[k].dst = argv[++*i];
			return 1;
		}
	if (strcmp(argv[*i], "--mqtt-version") == 0) {
		R.mo.mqtt_version = opt_mqtt_version(argv[*i], opt_value(argc, argv, i));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "republish";
	ops.usage =
	    "  --broker URL     mqtt://host:port or mqtts://host:port (default mqtt://127.0.0.1:1883)\n"
	    "  --mqtt-version 3|5   (default 5; with 3 the action's headers are dropped)\n"
	    "  --client-id ID --username U --password-file F --cafile F --cert F --key F\n"
	    "                   (or IOTRULES_MQTT_USERNAME, _PASSWORD, _PASSWORD_FILE, _CAFILE,\n"
	    "                   _CERTFILE, _KEYFILE in the environment; --password P works\n"
	    "                   but shows the password in the process list)\n";
	ops.option = option;
	ops.start = start;
	ops.send = send_jobs;
	ops.tick = tick;
	ops.stop = stop;
	/* Up to 8 × 128 QoS 1 messages awaiting their PUBACK: within the
	 * connection's inflight window, so none waits unsent in libmosquitto
	 * long enough to time out. */
	ops.batch_max = 128;
	ops.max_inflight = 8;
	return sink_main(argc, argv, &ops);
}
