/* kafkaconf: the kafka action's clientProperties (ACTIONS.md §2.12) as a
 * librdkafka configuration, its load-time checks, and the key that tells
 * two configurations apart (the sink keeps one producer per key).
 *
 * Mapping (decision 13):
 *   bootstrap.servers        → bootstrap.servers (host:port,...; any port:
 *                              AWS's 9000-9100 range is not enforced)
 *   acks 0|1 (default 1)     → acks
 *   compression.type         → compression.codec (none gzip snappy lz4 zstd)
 *   security.protocol        → security.protocol, lower-cased: SSL (default)
 *                              or SASL_SSL; PLAINTEXT accepted with a warning
 *                              (AWS refuses it; local brokers need it)
 *   key.serializer           only ...StringSerializer (checked, not mapped)
 *   value.serializer         only ...ByteBufferSerializer (likewise)
 *   ssl.truststore           base64 of PEM CA certificates (or the PEM text
 *                              itself) → ssl.ca.pem; ≤ 65,536 characters; a
 *                              Java keystore (JKS, PKCS#12) is refused
 *   ssl.truststore.password  accepted, unused (PEM truststores have none)
 *   ssl.keystore             base64 of PEM: its CERTIFICATE blocks →
 *                              ssl.certificate.pem, its PRIVATE KEY block →
 *                              ssl.key.pem
 *   ssl.key.password         → ssl.key.password (ssl.keystore.password
 *                              stands in when it is missing)
 *   sasl.mechanism           → sasl.mechanisms: PLAIN, SCRAM-SHA-512, and
 *                              SCRAM-SHA-256 (a local extension); GSSAPI
 *                              is refused (not supported here)
 *   sasl.plain.username/.password, sasl.scram.username/.password
 *                            → sasl.username / sasl.password
 * Any other key is refused, as AWS refuses properties it does not list. */
#ifndef IOTRULES_KAFKACONF_H
#define IOTRULES_KAFKACONF_H

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* Checks clientProperties (a JSON object of strings) and, when conf is
 * not NULL, sets the librdkafka properties they map to on it (conf stays
 * the caller's).  Values that still hold a substitution template ("${")
 * are checked only once resolved (conf != NULL).  Returns 0 when all is
 * well, 1 when the configuration is usable but msg holds a warning
 * (PLAINTEXT), -1 when it is refused (msg says why; conf may then hold
 * some of the properties and should be destroyed). */
int kafkaconf_apply(const cJSON *props, rd_kafka_conf_t *conf, char *msg, size_t cap);

/* The load-time check of one kafka action's parameters (the object under
 * "kafka"): topic, key, partition, headers and clientProperties.  Same
 * return values as kafkaconf_apply; for the rule loader. */
int kafkaconf_check_action(const cJSON *params, char *msg, size_t cap);

/* Writes into key (65 bytes) the hex SHA-256 of the properties sorted by
 * name: equal configurations, written in any order, get equal keys.
 * Returns 0, or -1 when props is not an object of strings. */
int kafkaconf_key(const cJSON *props, char key[65]);

#endif
