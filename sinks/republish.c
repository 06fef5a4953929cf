/* iotrules-sink-republish: the republish action (ACTIONS.md §2.16):
 * publish the SQL result to an MQTT topic with QoS 0 or 1.
 *
 * Publishing does not wait: a QoS 1 job completes when its PUBACK comes
 * (libmosquitto's thread), found through the slot of its message id, or
 * fails transiently when none came within 10 s (the runtime's tick). */
#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mqttclient.h"
#include "common/proc.h"
#include "sinks/lib/sink.h"

#define MAX_INFLIGHT 1000
#define PUBACK_TIMEOUT_MS 10000

static struct {
	const char *broker, *client_id, *username, *password, *password_file, *cafile, *certfile, *keyfile;
	int mqtt_version;
	struct mosquitto *mosq;
	mqttclient_opts mo;
	pthread_mutex_t mu;
	int connected;
	/* By MQTT message id: the job waiting for the PUBACK of its QoS 1
	 * publish.  The FIFO lists them in publish order, for the timeout. */
	sink_job *slot[65536];
	struct sent { int mid; sink_job *job; int64_t ms; } fifo[65536];
	unsigned head, tail;
} R;

static void
on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)flags; (void)p;
	pthread_mutex_lock(&R.mu);
	R.connected = rc == 0;
	pthread_mutex_unlock(&R.mu);
	if (rc != 0)
		log_error("broker refused the connection: %s", mosquitto_reason_string(rc));
}

static void
on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)p; (void)rc;
	pthread_mutex_lock(&R.mu);
	R.connected = 0;
	pthread_mutex_unlock(&R.mu);
}

static void
on_publish(struct mosquitto *m, void *obj, int mid, int rc, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)p;
	pthread_mutex_lock(&R.mu);
	sink_job *j = mid > 0 && mid < 65536 ? R.slot[mid] : NULL;
	if (j) {
		R.slot[mid] = NULL;
		if (rc == 0)
			sink_job_done(j, SINK_OK);
		else
			sink_job_fail(j, SINK_RETRY, "Failed to republish", "the broker rejected the message");
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
	/* A burst ends with a short write and then waits for PUBACKs: with
	 * Nagle on, that last write can sit until the peer's delayed ACK. */
	mosquitto_int_option(R.mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(R.mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(R.mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(R.mosq, on_publish);
	mqttclient_start(R.mosq, &R.mo);
	return 0;
}

/* Fails (transiently) the jobs whose PUBACK did not come within the
 * timeout, or all of them (every_one: stopping); forgets the ones done. */
static void
expire(int every_one)
{
	int64_t old = proc_now_ms() - PUBACK_TIMEOUT_MS;
	pthread_mutex_lock(&R.mu);
	while (R.head != R.tail) {
		struct sent *e = &R.fifo[R.head % 65536];
		if (R.slot[e->mid] == e->job) {
			if (!every_one && e->ms > old)
				break;
			R.slot[e->mid] = NULL;
			sink_job_fail(e->job, SINK_RETRY, "Failed to republish", "no PUBACK within 10 s");
		}
		R.head++;
	}
	pthread_mutex_unlock(&R.mu);
}

static void
tick(void *state)
{
	(void)state;
	expire(0);
}

static void
stop(void *state)
{
	(void)state;
	mqttclient_stop(R.mosq);
	expire(1);
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
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	for (int i = 0; i < n; i++) {
		sink_job *j = jobs[i];
		const char *t = sink_param(j, "topic");
		cJSON *qos = cJSON_GetObjectItemCaseSensitive(j->params, "qos");
		snprintf(j->resource, sizeof(j->resource), "%s", t);
		const char *bad = check_topic(t);
		if (bad) {
			sink_job_fail(j, SINK_FATAL, "Failed to republish", bad);
			continue;
		}
		int q = cJSON_IsNumber(qos) && qos->valueint ? 1 : 0;
		if (t[0] == '$')
			t++;   /* "$$aws/..." → "$aws/..." */
		int mid = 0;
		/* R.mu is held across the publish so its PUBACK cannot be
		 * handled before the slot is set. */
		pthread_mutex_lock(&R.mu);
		if (!R.connected) {
			pthread_mutex_unlock(&R.mu);
			sink_job_fail(j, SINK_RETRY, "Failed to republish", "no connection to the MQTT broker");
			continue;
		}
		int rc = mosquitto_publish_v5(R.mosq, &mid, t, (int)j->env.s[ENV_RESULT].n, j->env.s[ENV_RESULT].p,
		    q, false, NULL);
		if (rc == MOSQ_ERR_SUCCESS && q) {
			if (mid > 0 && mid < 65536 && R.tail - R.head < 65536) {
				/* A job still holding this message id (libmosquitto
				 * reused it: a new session, or 65,535 publishes since)
				 * can no longer be matched to its PUBACK: it goes
				 * again, rather than waiting forever. */
				if (R.slot[mid])
					sink_job_fail(R.slot[mid], SINK_RETRY, "Failed to republish",
					    "its MQTT message id was reused before its PUBACK came");
				R.slot[mid] = j;
				R.fifo[R.tail++ % 65536] = (struct sent){mid, j, proc_now_ms()};
				pthread_mutex_unlock(&R.mu);
				continue;
			}
			/* No room to await its PUBACK (65,536 waiting behind one
			 * that is late): sent, but not known to be delivered, so
			 * not done; it goes again after a backoff. */
			pthread_mutex_unlock(&R.mu);
			sink_job_fail(j, SINK_RETRY, "Failed to republish", "too many messages awaiting their PUBACK");
			continue;
		}
		pthread_mutex_unlock(&R.mu);
		if (rc != MOSQ_ERR_SUCCESS)
			sink_job_fail(j, rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_INVAL ? SINK_FATAL : SINK_RETRY,
			    "Failed to republish", mosquitto_strerror(rc));
		else
			sink_job_done(j, SINK_OK);   /* QoS 0: sent is done */
	}
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
	ops.usage =
	    "  --broker URL     mqtt://host:port or mqtts://host:port (default mqtt://127.0.0.1:1883)\n"
	    "  --mqtt-version 3|5   (default 5)\n"
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
