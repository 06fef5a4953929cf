/* iotrules-bench-relay: the smallest one-process program that does what
 * the bench rule does, as a yardstick for the pipeline (make bench).
 *
 *   relay --port P --qos Q --in PREFIX --out PREFIX
 *
 * Subscribes to PREFIX/+/telemetry at QoS Q and, for each message whose
 * "temp" is above 20, publishes {"device","temp_f","seq","t"} (temp_f =
 * temp * 1.8 + 32) to OUT/<device topic level> at QoS Q: the rule
 *   SELECT device, temp * 1.8 + 32 AS temp_f, seq, t FROM 'PREFIX/+/telemetry'
 *   WHERE temp > 20
 * with a republish action, and nothing else: no spool, no durability, no
 * rules engine.  It parses with cJSON and prints with cJSON, on
 * libmosquitto's network thread.  Runs until SIGTERM. */
#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *in_prefix, *out_prefix;
static int qos = 1;
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
on_connect(struct mosquitto *m, void *u, int rc)
{
	(void)u;
	if (rc != 0) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"relay: connect refused: %s\"}\n",
		    mosquitto_connack_string(rc));
		exit(1);
	}
	char filter[512];
	snprintf(filter, sizeof(filter), "%s/+/telemetry", in_prefix);
	mosquitto_subscribe(m, NULL, filter, qos);
}

static void
on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
	(void)u;
	cJSON *in = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	if (in == NULL)
		return;
	const cJSON *temp = cJSON_GetObjectItemCaseSensitive(in, "temp");
	if (cJSON_IsNumber(temp) && temp->valuedouble > 20) {
		cJSON *out = cJSON_CreateObject();
		cJSON_AddItemReferenceToObject(out, "device", cJSON_GetObjectItemCaseSensitive(in, "device"));
		cJSON_AddNumberToObject(out, "temp_f", temp->valuedouble * 1.8 + 32);
		cJSON_AddItemReferenceToObject(out, "seq", cJSON_GetObjectItemCaseSensitive(in, "seq"));
		cJSON_AddItemReferenceToObject(out, "t", cJSON_GetObjectItemCaseSensitive(in, "t"));
		char *text = cJSON_PrintUnformatted(out);
		/* PREFIX/<device>/telemetry: the device is the second level
		 * after the prefix. */
		const char *dev = msg->topic + strlen(in_prefix) + 1;
		const char *end = strchr(dev, '/');
		char topic[512];
		snprintf(topic, sizeof(topic), "%s/%.*s", out_prefix, (int)(end ? end - dev : (long)strlen(dev)), dev);
		if (text)
			mosquitto_publish(m, NULL, topic, (int)strlen(text), text, qos, false);
		free(text);
		cJSON_Delete(out);
	}
	cJSON_Delete(in);
}

int
main(int argc, char **argv)
{
	int port = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			printf("usage: iotrules-bench-relay --port P --qos 0|1 --in PREFIX --out PREFIX\n");
			return 0;
		}
		if (v == NULL)
			break;
		if (strcmp(a, "--port") == 0) port = atoi(v);
		else if (strcmp(a, "--qos") == 0) qos = atoi(v);
		else if (strcmp(a, "--in") == 0) in_prefix = v;
		else if (strcmp(a, "--out") == 0) out_prefix = v;
		else break;
		i++;
	}
	if (port <= 0 || in_prefix == NULL || out_prefix == NULL || (qos != 0 && qos != 1)) {
		fprintf(stderr, "usage: iotrules-bench-relay --port P --qos 0|1 --in PREFIX --out PREFIX\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(NULL, true, NULL);
	if (m == NULL)
		return 1;
	mosquitto_max_inflight_messages_set(m, 1000);
	/* As the republish sink does (sinks/lib/mqttpub.c): no Nagle delay
	 * on the small packets. */
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_message_callback_set(m, on_message);
	if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"relay: cannot connect to 127.0.0.1:%d\"}\n", port);
		return 1;
	}
	mosquitto_loop_start(m);
	while (!stop)
		pause();
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	return 0;
}
