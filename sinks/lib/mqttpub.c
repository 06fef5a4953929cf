#include "sinks/lib/mqttpub.h"

#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>

#include "common/log.h"
#include "common/proc.h"

#define MAX_INFLIGHT 1000
#define PUBACK_TIMEOUT_MS 10000

static struct {
	struct mosquitto *mosq;
	int version;
	const char *what;
	pthread_mutex_t mu;
	int connected;
	/* By MQTT message id: the job waiting for the PUBACK of its QoS 1
	 * publish.  The FIFO lists them in publish order, for the timeout. */
	sink_job *slot[65536];
	struct sent { int mid; sink_job *job; int64_t ms; } fifo[65536];
	unsigned head, tail;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .what = "Failed to publish"};

static void
on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)flags; (void)p;
	pthread_mutex_lock(&P.mu);
	P.connected = rc == 0;
	pthread_mutex_unlock(&P.mu);
	if (rc != 0)
		log_error("broker refused the connection: %s", mosquitto_reason_string(rc));
}

static void
on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)p; (void)rc;
	pthread_mutex_lock(&P.mu);
	P.connected = 0;
	pthread_mutex_unlock(&P.mu);
}

static void
on_publish(struct mosquitto *m, void *obj, int mid, int rc, const mosquitto_property *p)
{
	(void)m; (void)obj; (void)p;
	pthread_mutex_lock(&P.mu);
	sink_job *j = mid > 0 && mid < 65536 ? P.slot[mid] : NULL;
	if (j) {
		P.slot[mid] = NULL;
		/* MQTT 5 reason codes below 0x80 are successes: 0x10, no
		 * matching subscribers, is a publish the broker took (a
		 * republish to a topic nobody follows succeeds on AWS too). */
		if (rc >= 0 && rc < 0x80)
			sink_job_done(j, SINK_OK);
		else
			sink_job_fail(j, SINK_RETRY, P.what, "the broker rejected the message");
	}
	pthread_mutex_unlock(&P.mu);
}

int
mqttpub_start(const mqttclient_opts *o, char *err, size_t errcap)
{
	if (mqttclient_new(o, &P.mosq, err, errcap) < 0)
		return -1;
	P.version = o->mqtt_version == 3 ? 3 : 5;
	mosquitto_max_inflight_messages_set(P.mosq, MAX_INFLIGHT);
	/* A burst ends with a short write and then waits for PUBACKs: with
	 * Nagle on, that last write can sit until the peer's delayed ACK. */
	mosquitto_int_option(P.mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(P.mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(P.mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(P.mosq, on_publish);
	mqttclient_start(P.mosq, o);
	return 0;
}

int
mqttpub_version(void)
{
	return P.version;
}

/* Fails (transiently) the jobs whose PUBACK did not come within the
 * timeout, or all of them (every_one: stopping); forgets the ones done. */
static void
expire(int every_one)
{
	int64_t old = proc_now_ms() - PUBACK_TIMEOUT_MS;
	pthread_mutex_lock(&P.mu);
	while (P.head != P.tail) {
		struct sent *e = &P.fifo[P.head % 65536];
		if (P.slot[e->mid] == e->job) {
			if (!every_one && e->ms > old)
				break;
			P.slot[e->mid] = NULL;
			sink_job_fail(e->job, SINK_RETRY, P.what, "no PUBACK within 10 s");
		}
		P.head++;
	}
	pthread_mutex_unlock(&P.mu);
}

void
mqttpub_tick(void)
{
	expire(0);
}

void
mqttpub_stop(void)
{
	mqttclient_stop(P.mosq);
	expire(1);
}

void
mqttpub_send(sink_job *j, const char *topic, int qos, const mosquitto_property *props, const char *what)
{
	int mid = 0;
	/* P.mu is held across the publish so its PUBACK cannot be handled
	 * before the slot is set. */
	pthread_mutex_lock(&P.mu);
	P.what = what;
	if (!P.connected) {
		pthread_mutex_unlock(&P.mu);
		sink_job_fail(j, SINK_RETRY, what, "no connection to the MQTT broker");
		return;
	}
	int rc = mosquitto_publish_v5(P.mosq, &mid, topic, (int)j->env.s[ENV_RESULT].n, j->env.s[ENV_RESULT].p,
	    qos, false, props);
	if (rc == MOSQ_ERR_SUCCESS && qos) {
		if (mid > 0 && mid < 65536 && P.tail - P.head < 65536) {
			/* A job still holding this message id (libmosquitto
			 * reused it: a new session, or 65,535 publishes since)
			 * can no longer be matched to its PUBACK: it goes again,
			 * rather than waiting forever. */
			if (P.slot[mid])
				sink_job_fail(P.slot[mid], SINK_RETRY, what,
				    "its MQTT message id was reused before its PUBACK came");
			P.slot[mid] = j;
			P.fifo[P.tail++ % 65536] = (struct sent){mid, j, proc_now_ms()};
			pthread_mutex_unlock(&P.mu);
			return;
		}
		/* No room to await its PUBACK (65,536 waiting behind one that
		 * is late): sent, but not known to be delivered, so not done;
		 * it goes again after a backoff. */
		pthread_mutex_unlock(&P.mu);
		sink_job_fail(j, SINK_RETRY, what, "too many messages awaiting their PUBACK");
		return;
	}
	pthread_mutex_unlock(&P.mu);
	if (rc != MOSQ_ERR_SUCCESS)
		sink_job_fail(j, rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_INVAL ? SINK_FATAL : SINK_RETRY,
		    what, mosquitto_strerror(rc));
	else
		sink_job_done(j, SINK_OK);   /* QoS 0: sent is done */
}
