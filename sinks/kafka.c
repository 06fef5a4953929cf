/* iotrules-sink-kafka: the kafka action (ACTIONS.md §2.12): the result as
 * one record of a Kafka topic, with the key, partition and headers the
 * rule templates (resolved by evaluate).  clientProperties map onto
 * librdkafka as kafkaconf.h says; jobs with the same configuration share
 * one producer (kafkaprod.h), which batches and compresses by itself.
 * Producing does not wait: each record's delivery report completes its
 * job.  destinationArn is not ours: the supervisor starts this sink inside
 * the destination's network namespace; here it is accepted and ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sinks/lib/kafkaconf.h"
#include "sinks/lib/kafkaprod.h"
#include "sinks/lib/sink.h"

#define WHAT "Failed to send message to Kafka"
#define MAX_HEADERS 100
#define MAX_HEADER_CHARS 16384
#define STOP_FLUSH_MS 5000

/* The resolved partition: RD_KAFKA_PARTITION_UA (the producer's choice)
 * when none is given, -2 when it is not an integer ≥ 0. */
static int32_t
partition_of(const sink_job *j)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j->params, "partition");
	if (p == NULL)
		return RD_KAFKA_PARTITION_UA;
	if (cJSON_IsNumber(p))
		return p->valuedouble >= 0 && p->valuedouble <= 0x7fffffff && p->valuedouble == (double)p->valueint
		    ? p->valueint : -2;
	char *end;
	const char *s = cJSON_GetStringValue(p);
	long v = s ? strtol(s, &end, 10) : -1;
	return s && s[0] && *end == 0 && v >= 0 && v <= 0x7fffffff ? (int32_t)v : -2;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *topic = sink_param(j, "topic");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(j->params, "headers");
	snprintf(j->resource, sizeof(j->resource), "%s", topic);
	const char *bad = topic[0] == 0 ? "the topic is empty"
	    : strlen(topic) > 249 ? "the topic is longer than 249 characters"
	    : partition_of(j) == -2 ? "the partition is not an integer >= 0"
	    : h && (!cJSON_IsArray(h) || cJSON_GetArraySize(h) > MAX_HEADERS) ? "headers must be an array of at most 100"
	    : kafkaconf_key(cJSON_GetObjectItemCaseSensitive(j->params, "clientProperties"), j->dest) < 0
	    ? "clientProperties must be an object of strings" : NULL;
	for (const cJSON *e = h ? h->child : NULL; e && !bad; e = e->next) {
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "key"));
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
		if (k == NULL || k[0] == 0 || strlen(k) > MAX_HEADER_CHARS || (v && strlen(v) > MAX_HEADER_CHARS))
			bad = "a header key is empty, or a header key or value is longer than 16,384 characters";
	}
	if (bad) {
		sink_error_message(j, WHAT, bad);
		return -1;
	}
	return 0;
}

/* Produces j's record; its delivery report (or the refusal here)
 * completes it. */
static void
produce(kafkaprod *p, sink_job *j)
{
	rd_kafka_vu_t vu[MAX_HEADERS + 8];
	size_t n = 0;
	const env_slice *r = &j->env.s[ENV_RESULT];
	vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
	vu[n++].u.cstr = sink_param(j, "topic");
	vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
	vu[n++].u.i32 = partition_of(j);
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = (void *)r->p;
	vu[n++].u.mem.size = r->n;
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = j;
	/* No "key": a record without a key (the producer picks the partition). */
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(j->params, "key");
	if (cJSON_IsString(key)) {
		vu[n].vtype = RD_KAFKA_VTYPE_KEY;
		vu[n].u.mem.ptr = key->valuestring;
		vu[n++].u.mem.size = strlen(key->valuestring);
	}
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(j->params, "headers");
	for (const cJSON *e = h ? h->child : NULL; e; e = e->next) {
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
		vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[n].u.header.name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "key"));
		vu[n].u.header.val = v ? v : "";
		vu[n++].u.header.size = v ? (ssize_t)strlen(v) : 0;
	}
	rd_kafka_error_t *err = rd_kafka_produceva(kafkaprod_handle(p), vu, n);
	if (err) {
		kafkaprod_done(p, j, rd_kafka_error_code(err));
		rd_kafka_error_destroy(err);
	}
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	char msg[1024];
	/* prepare gave every job of one send the same configuration key. */
	kafkaprod *p = kafkaprod_get(jobs[0]->dest,
	    cJSON_GetObjectItemCaseSensitive(jobs[0]->params, "clientProperties"), msg, sizeof(msg));
	for (int i = 0; i < n; i++) {
		if (p)
			produce(p, jobs[i]);
		else
			sink_job_fail(jobs[i], SINK_FATAL, WHAT, msg);
	}
}

static void
stop(void *state)
{
	(void)state;
	kafkaprod_stop_all(STOP_FLUSH_MS);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "kafka";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.stop = stop;
	/* librdkafka batches per partition itself (its linger.ms, 5 ms):
	 * the runtime need not wait to fill a send (lingering here too cost
	 * a fifth of the throughput in bench/kafka); up to 1,000 jobs a send
	 * only save it work. */
	ops.batch_max = 1000;
	ops.linger_ms = 0;
	return sink_main(argc, argv, &ops);
}
