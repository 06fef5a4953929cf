/* kafkaprod: the kafka sink's producers.  One librdkafka producer per
 * distinct configuration (kafkaconf_key of clientProperties), created at
 * its first use and shared by every job with that configuration; each has
 * a poll thread that serves its delivery reports.  A record is produced
 * with its sink job as the message opaque, and the delivery report
 * completes that job (kafkaprod_done): librdkafka does the batching, the
 * compression and the connection handling, the runtime the retries.
 *
 * Delivery errors: the broker's or librdkafka's permanent verdicts (no
 * such partition or topic, record too large, not authorised, invalid
 * record) are SINK_FATAL; everything else (timeouts while the brokers are
 * down, leader changes, a full queue, a purge at stop) is SINK_RETRY, so
 * the job waits in the spool.  With acks=0 nothing is retried (AWS, and
 * ERRORS.md §3). */
#ifndef IOTRULES_KAFKAPROD_H
#define IOTRULES_KAFKAPROD_H

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "sinks/lib/sink.h"

typedef struct kafkaprod kafkaprod;

/* The producer of configuration key, created from props (the action's
 * clientProperties, resolved) on first use; the pool owns it.  NULL, msg
 * set, when the configuration is refused or librdkafka cannot start a
 * producer with it.  For the runtime's thread (send). */
kafkaprod *kafkaprod_get(const char *key, const cJSON *props, char *msg, size_t cap);

/* Its librdkafka handle, valid until kafkaprod_stop_all. */
rd_kafka_t *kafkaprod_handle(const kafkaprod *p);

/* Completes j (its resource set) with the verdict for err: SINK_OK for no
 * error, else a failure whose message names librdkafka's error. */
void kafkaprod_done(const kafkaprod *p, sink_job *j, rd_kafka_resp_err_t err);

/* Flushes every producer for up to wait_ms, purges what is still queued
 * or in flight (those jobs complete as SINK_RETRY and stay in the spool),
 * and destroys the producers: every job produced is complete on return. */
void kafkaprod_stop_all(int wait_ms);

#endif
