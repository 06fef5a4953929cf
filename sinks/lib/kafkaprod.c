/* kafkaprod: the kafka sink's producer pool (kafkaprod.h). */
#include "sinks/lib/kafkaprod.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proc.h"
#include "sinks/lib/kafkaconf.h"

/* How long librdkafka keeps a record it cannot deliver before the job
 * goes back to the runtime, which retries it with backoff from the spool
 * for as long as --retry-s allows. */
#define MESSAGE_TIMEOUT_MS "10000"
/* How long a topic the cluster says does not exist may take to appear
 * before its records fail (permanently: to the errorAction); within the
 * message timeout, or they would time out (and be retried) instead. */
#define TOPIC_PROPAGATION_MS "5000"

struct kafkaprod {
	char key[65];
	rd_kafka_t *rk;
	int acks0;             /* acks=0: no acknowledgement, no retry */
	pthread_t poller;
	atomic_int stop;
	struct kafkaprod *next;
};

static kafkaprod *pool;

static void *
poll_loop(void *arg)
{
	kafkaprod *p = arg;
	while (!atomic_load(&p->stop))
		rd_kafka_poll(p->rk, 100);
	return NULL;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	if (m->_private)
		kafkaprod_done(opaque, m->_private, m->err);
}

/* librdkafka's own log lines, in ours (syslog levels: 3 error, 4 warning). */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *text)
{
	(void)rk;
	log_msg(level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : LOG_INFO, "librdkafka %s: %s", fac, text);
}

kafkaprod *
kafkaprod_get(const char *key, const cJSON *props, char *msg, size_t cap)
{
	for (kafkaprod *p = pool; p; p = p->next)
		if (strcmp(p->key, key) == 0)
			return p;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int rc = kafkaconf_apply(props, conf, msg, cap);
	if (rc < 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	if (rc == 1)
		log_warn("%s", msg);
	const char *acks = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(props, "acks"));
	kafkaprod *p = calloc(1, sizeof(*p));
	char err[512];
	if (p == NULL || rd_kafka_conf_set(conf, "message.timeout.ms", MESSAGE_TIMEOUT_MS, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "topic.metadata.propagation.max.ms", TOPIC_PROPAGATION_MS, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "client.id", "iotrules", err, sizeof(err))) {
		snprintf(msg, cap, "%s", p ? err : "out of memory");
		free(p);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->acks0 = acks && strcmp(acks, "0") == 0;
	rd_kafka_conf_set_opaque(conf, p);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_log_cb(conf, on_log);
	/* rd_kafka_new owns conf only when it succeeds. */
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (p->rk == NULL) {
		snprintf(msg, cap, "the Kafka producer could not start: %s", err);
		rd_kafka_conf_destroy(conf);
		free(p);
		return NULL;
	}
	if (pthread_create(&p->poller, NULL, poll_loop, p) != 0) {
		snprintf(msg, cap, "the Kafka producer could not start its poll thread");
		rd_kafka_destroy(p->rk);
		free(p);
		return NULL;
	}
	p->next = pool;
	pool = p;
	log_info("a Kafka producer for %s started (%s)",
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(props, "bootstrap.servers")), key);
	return p;
}

rd_kafka_t *
kafkaprod_handle(const kafkaprod *p)
{
	return p->rk;
}

static int
permanent(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return 1;
	default:
		return 0;
	}
}

void
kafkaprod_done(const kafkaprod *p, sink_job *j, rd_kafka_resp_err_t err)
{
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		sink_job_done(j, SINK_OK);
		return;
	}
	/* A purge at stop is ours, not the broker's: always again later. */
	int purged = err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
	sink_status st = purged ? SINK_RETRY : permanent(err) || p->acks0 ? SINK_FATAL
	    : err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? SINK_THROTTLED : SINK_RETRY;
	char received[512];
	snprintf(received, sizeof(received), "%s (Service: Kafka; Error Code: %s)", rd_kafka_err2str(err),
	    rd_kafka_err2name(err));
	sink_job_fail(j, st, "Failed to send message to Kafka", received);
}

void
kafkaprod_stop_all(int wait_ms)
{
	while (pool) {
		kafkaprod *p = pool;
		pool = p->next;
		if (rd_kafka_flush(p->rk, wait_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			log_warn("Kafka: %d record(s) undelivered at stop: they stay in the spool",
			    rd_kafka_outq_len(p->rk));
			rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		}
		atomic_store(&p->stop, 1);
		pthread_join(p->poller, NULL);
		/* The purged records' delivery reports complete their jobs. */
		int64_t end = proc_now_ms() + 10000;
		while (rd_kafka_outq_len(p->rk) > 0 && proc_now_ms() < end)
			rd_kafka_poll(p->rk, 100);
		rd_kafka_destroy(p->rk);
		free(p);
	}
}
