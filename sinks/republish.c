/* iotrules-sink-republish: the republish action (ACTIONS.md §2.16):
 * publish the SQL result to an MQTT topic with QoS 0 or 1.
 *
 * A batch is published in one go and then the PUBACKs of its QoS 1
 * messages are awaited together, so the broker round trip is paid once
 * per batch, not once per message.  Several delivery threads do this at
 * once on the one connection (sink runtime --workers): a PUBACK finds its
 * waiter through the slot of its message id. */
#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/deadline.h"
#include "common/log.h"
#include "common/mqttclient.h"
#include "common/proc.h"
#include "sinks/lib/sink.h"

#define MAX_INFLIGHT 1000

static struct {
	const char *broker, *client_id, *username, *password, *password_file, *cafile, *certfile, *keyfile;
	int mqtt_version;
	struct mosquitto *mosq;
	mqttclient_opts mo;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int connected;
	/* By MQTT message id: the deliver() call waiting for the PUBACK of
	 * a QoS 1 publish, and where to record it (1 ok, -1 refused). */
	struct ack_slot { struct waiter *w; int *ack; } ack_slot[65536];
	char cid[300];
} R;

/* One deliver() call's wait: woken once, when its last PUBACK is in
 * (a broadcast per PUBACK to every delivery thread would cost a wakeup
 * per thread per message). */
typedef struct waiter {
	pthread_cond_t cv;
	int left;
} waiter;

static void
on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)flags; (void)p;
	pthread_mutex_lock(&R.mu);
	R.connected = rc == 0;
	pthread_cond_broadcast(&R.cv);
	pthread_mutex_unlock(&R.mu);
	if (rc != 0)
		log_error("broker refused the connection: %s", mosquitto_reason_string(rc));
}

static void
on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)p;
	pthread_mutex_lock(&R.mu);
	R.connected = 0;
	pthread_cond_broadcast(&R.cv);
	pthread_mutex_unlock(&R.mu);
	(void)rc;
}

static void
on_publish(struct mosquitto *m, void *obj, int mid, int rc, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)p;
	pthread_mutex_lock(&R.mu);
	struct ack_slot *a = mid > 0 && mid < 65536 ? &R.ack_slot[mid] : NULL;
	if (a && a->w) {
		*a->ack = rc == 0 ? 1 : -1;
		if (--a->w->left == 0)
			pthread_cond_signal(&a->w->cv);
		a->w = NULL;
	}
	pthread_mutex_unlock(&R.mu);
}

static int
start(void *state)
{
	(void)state;
	char err[600];
	if (R.broker == NULL)
		R.broker = "mqtt://127.0.0.1:1883";
	pthread_mutex_init(&R.mu, NULL);
	pthread_cond_init(&R.cv, NULL);
	R.mo = (mqttclient_opts){.url = R.broker, .client_id = R.client_id, .clean = 1,
	    .mqtt_version = R.mqtt_version, .keepalive = 30, .reconnect_max_s = 5,
	    .username = R.username, .password = R.password, .password_file = R.password_file,
	    .cafile = R.cafile, .certfile = R.certfile, .keyfile = R.keyfile};
	if (R.password)
		log_warn("--password is visible to every local user in the process list; "
		    "use --password-file or IOTRULES_MQTT_PASSWORD instead");
	if (mqttclient_new(&R.mo, &R.mosq, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	mosquitto_max_inflight_messages_set(R.mosq, MAX_INFLIGHT);
	/* A batch ends with a short write and then waits for PUBACKs: with
	 * Nagle on, that last write can sit until the peer's delayed ACK. */
	mosquitto_int_option(R.mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(R.mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(R.mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(R.mosq, on_publish);
	mqttclient_start(R.mosq, &R.mo);
	return 0;
}

static void
stop(void *state)
{
	(void)state;
	mqttclient_stop(R.mosq);
}

/* One step of a wait on cv (R.mu held): sleeps up to 100 ms, then says
 * whether to go on waiting: not past end_ms, and the stage is not
 * stopping (SIGTERM must end within 5 s). */
static int
wait_step(pthread_cond_t *cv, int64_t end_ms)
{
	struct timespec step;
	deadline_in(&step, 100);
	pthread_cond_timedwait(cv, &R.mu, &step);
	return proc_now_ms() < end_ms && !proc_stopping();
}

static int
wait_connected(int ms)
{
	int64_t end = proc_now_ms() + ms;
	pthread_mutex_lock(&R.mu);
	while (!R.connected && wait_step(&R.cv, end))
		;
	int c = R.connected;
	pthread_mutex_unlock(&R.mu);
	return c;
}

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
deliver(void *state, const envelope *jobs, int n, sink_result *res)
{
	(void)state;
	int acked[n];    /* per job: 0 waiting, 1 PUBACK, -1 refused, 2 not QoS 1 */
	int mids[n];
	waiter w = {PTHREAD_COND_INITIALIZER, 0};
	if (!wait_connected(2000)) {
		for (int i = 0; i < n; i++) {
			res[i].status = SINK_RETRY;
			snprintf(res[i].resource, sizeof(res[i].resource), "%s", R.broker);
			sink_error_message(&res[i], &jobs[i], "Failed to republish", "no connection to the MQTT broker");
		}
		return;
	}
	for (int i = 0; i < n; i++) {
		const envelope *j = &jobs[i];
		acked[i] = 2;
		mids[i] = 0;
		cJSON *p = cJSON_ParseWithLength(j->s[ENV_PARAMS].p, j->s[ENV_PARAMS].n);
		cJSON *topic = cJSON_GetObjectItemCaseSensitive(p, "topic");
		cJSON *qos = cJSON_GetObjectItemCaseSensitive(p, "qos");
		const char *t = cJSON_IsString(topic) ? topic->valuestring : "";
		snprintf(res[i].resource, sizeof(res[i].resource), "%s", t);
		const char *bad = check_topic(t);
		if (bad) {
			res[i].status = SINK_FATAL;
			sink_error_message(&res[i], j, "Failed to republish", bad);
			cJSON_Delete(p);
			continue;
		}
		int q = cJSON_IsNumber(qos) ? qos->valueint : 0;
		if (t[0] == '$')
			t++;   /* "$$aws/..." → "$aws/..." */
		int mid = 0;
		/* R.mu is held across the publish so its PUBACK cannot be
		 * handled before the slot is set. */
		pthread_mutex_lock(&R.mu);
		int rc = mosquitto_publish_v5(R.mosq, &mid, t, (int)j->s[ENV_RESULT].n, j->s[ENV_RESULT].p,
		    q ? 1 : 0, false, NULL);
		if (rc == MOSQ_ERR_SUCCESS && q && mid > 0 && mid < 65536) {
			acked[i] = 0;
			mids[i] = mid;
			R.ack_slot[mid] = (struct ack_slot){&w, &acked[i]};
			w.left++;
		}
		pthread_mutex_unlock(&R.mu);
		cJSON_Delete(p);
		if (rc != MOSQ_ERR_SUCCESS) {
			res[i].status = rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_INVAL ? SINK_FATAL : SINK_RETRY;
			sink_error_message(&res[i], j, "Failed to republish", mosquitto_strerror(rc));
			continue;
		}
		res[i].status = SINK_OK;  /* QoS 0; QoS 1 waits below */
	}
	/* Await the PUBACKs of this batch (5 s; less when stopping: what is
	 * not acknowledged then is redone). */
	int64_t end = proc_now_ms() + 5000;
	pthread_mutex_lock(&R.mu);
	while (w.left > 0 && wait_step(&w.cv, end))
		;
	for (int i = 0; i < n; i++) {
		if (acked[i] == 0 && R.ack_slot[mids[i]].w == &w)
			R.ack_slot[mids[i]].w = NULL;   /* gone with this stack frame */
		if (acked[i] == 0 || acked[i] == -1) {
			res[i].status = SINK_RETRY;
			sink_error_message(&res[i], &jobs[i], "Failed to republish",
			    acked[i] < 0 ? "the broker rejected the message" : "no PUBACK within 5 s");
		}
	}
	pthread_mutex_unlock(&R.mu);
	pthread_cond_destroy(&w.cv);
}

static int
option(void *state, int argc, char **argv, int *i)
{
	(void)state;
	static const struct { const char *name; const char **dst; } opts[] = {
	    {"--broker", &R.broker}, {"--client-id", &R.client_id},
	    {"--username", &R.username}, {"--password", &R.password}, {"--password-file", &R.password_file},
	    {"--cafile", &R.cafile}, {"--cert", &R.certfile}, {"--key", &R.keyfile},
	    {NULL, NULL}};
	for (int k = 0; opts[k].name; k++)
		if (strcmp(argv[*i], opts[k].name) == 0) {
			if (*i + 1 >= argc)
				return -1;
			*opts[k].dst = argv[++*i];
			return 1;
		}
	if (strcmp(argv[*i], "--mqtt-version") == 0) {
		if (*i + 1 >= argc)
			return -1;
		R.mqtt_version = atoi(argv[++*i]);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "republish";
	ops.failed_action = "RepublishAction";
	ops.usage =
	    "  --broker URL     mqtt://host:port or mqtts://host:port (default mqtt://127.0.0.1:1883)\n"
	    "  --mqtt-version 3|5   (default 5)\n"
	    "  --client-id ID --username U --password-file F --cafile F --cert F --key F\n"
	    "                   (or IOTRULES_MQTT_USERNAME, _PASSWORD, _PASSWORD_FILE, _CAFILE,\n"
	    "                   _CERTFILE, _KEYFILE in the environment; --password P works\n"
	    "                   but shows the password in the process list)\n";
	ops.option = option;
	ops.start = start;
	ops.deliver = deliver;
	ops.stop = stop;
	return sink_main(argc, argv, &ops);
}
