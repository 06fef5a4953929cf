/* kafkaconf: clientProperties → librdkafka properties (ACTIONS.md §2.12),
 * including the SASL and SSL settings the mock cluster cannot exercise;
 * the PLAINTEXT warning; the refusals; the configuration key. */
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/lib/kafkaconf.h"
#include "tests/unit/tap.h"

static char msg[512];

/* kafkaconf_apply on the JSON text; *conf is the result (or NULL). */
static int
apply(const char *json, rd_kafka_conf_t **conf)
{
	cJSON *p = cJSON_Parse(json);
	if (p == NULL) {
		printf("# bad JSON in the test: %s\n", json);
		return -9;
	}
	*conf = rd_kafka_conf_new();
	int rc = kafkaconf_apply(p, *conf, msg, sizeof(msg));
	cJSON_Delete(p);
	return rc;
}

static const char *
get(rd_kafka_conf_t *conf, const char *name)
{
	static char v[8192];
	size_t n = sizeof(v);
	if (rd_kafka_conf_get(conf, name, v, &n) != RD_KAFKA_CONF_OK)
		return "(unset)";
	return v;
}

/* rc of apply, with the refusal's message shown and the conf destroyed. */
static void
refused(const char *json, const char *why, const char *name)
{
	rd_kafka_conf_t *conf;
	int rc = apply(json, &conf);
	ok(rc == -1 && strstr(msg, why) != NULL, "refused: %s (%s)", name, msg);
	rd_kafka_conf_destroy(conf);
}

/* A self-signed certificate and its key, as PEM text (OpenSSL makes them). */
static void
make_pem(char **cert, char **key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"kafka-test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, pk, EVP_sha256());
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	PEM_write_bio_X509(b, x);
	long n = BIO_get_mem_data(b, &p);
	*cert = strndup(p, (size_t)n);
	BIO_reset(b);
	PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	*key = strndup(p, (size_t)n);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static char *
b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n / 3 * 4 + 8);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* Starts a producer on conf (which it takes) and stops it: librdkafka
 * checks at its start what conf_set did not (mechanisms it was built
 * with, the TLS context from the PEMs). */
static void
starts(rd_kafka_conf_t *c, const char *name)
{
	char err[256];
	rd_kafka_conf_set(c, "log_level", "0", err, sizeof(err));   /* 127.0.0.1:1 refuses: not news */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	ok(rk != NULL, "%s (%s)", name, rk ? "ok" : err);
	if (rk)
		rd_kafka_destroy(rk);
	else
		rd_kafka_conf_destroy(c);
}

static void
test_sasl(void)
{
	rd_kafka_conf_t *c;
	int rc = apply("{\"bootstrap.servers\": \"b1.example:9096,b2.example:9096\", \"security.protocol\": \"SASL_SSL\","
	    " \"sasl.mechanism\": \"SCRAM-SHA-512\", \"sasl.scram.username\": \"alice\", \"sasl.scram.password\": \"s3cret\","
	    " \"acks\": \"1\", \"compression.type\": \"zstd\","
	    " \"key.serializer\": \"org.apache.kafka.common.serialization.StringSerializer\","
	    " \"value.serializer\": \"org.apache.kafka.common.serialization.ByteBufferSerializer\"}", &c);
	ok(rc == 0, "SASL_SSL SCRAM-SHA-512 accepted (%d %s)", rc, msg);
	is_str(get(c, "bootstrap.servers"), "b1.example:9096,b2.example:9096", "bootstrap.servers as given");
	is_str(get(c, "security.protocol"), "sasl_ssl", "security.protocol lower-cased");
	is_str(get(c, "sasl.mechanisms"), "SCRAM-SHA-512", "sasl.mechanism → sasl.mechanisms");
	is_str(get(c, "sasl.username"), "alice", "sasl.scram.username → sasl.username");
	is_str(get(c, "sasl.password"), "s3cret", "sasl.scram.password → sasl.password");
	is_str(get(c, "acks"), "1", "acks 1");
	is_str(get(c, "compression.codec"), "zstd", "compression.type → compression.codec");
	rd_kafka_conf_destroy(c);

	rc = apply("{\"bootstrap.servers\": \"127.0.0.1:1\", \"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"PLAIN\","
	    " \"sasl.plain.username\": \"bob\", \"sasl.plain.password\": \"pw\", \"acks\": \"0\"}", &c);
	ok(rc == 0, "SASL_SSL PLAIN accepted (%s)", msg);
	is_str(get(c, "sasl.mechanisms"), "PLAIN", "PLAIN");
	is_str(get(c, "sasl.username"), "bob", "sasl.plain.username → sasl.username");
	is_str(get(c, "sasl.password"), "pw", "sasl.plain.password → sasl.password");
	is_str(get(c, "acks"), "0", "acks 0");
	is_str(get(c, "message.send.max.retries"), "0", "acks 0: no retry");
	starts(c, "a producer starts with the SASL_SSL PLAIN mapping");

	rc = apply("{\"bootstrap.servers\": \"b:9092\", \"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"SCRAM-SHA-256\","
	    " \"sasl.scram.username\": \"u\", \"sasl.scram.password\": \"p\"}", &c);
	ok(rc == 0 && strcmp(get(c, "sasl.mechanisms"), "SCRAM-SHA-256") == 0, "SCRAM-SHA-256 accepted and mapped");
	rd_kafka_conf_destroy(c);
}

static void
test_ssl(void)
{
	char *cert, *key;
	make_pem(&cert, &key);
	char *both = malloc(strlen(cert) + strlen(key) + 1);
	strcpy(both, key);
	strcat(both, cert);   /* key first: the split must not depend on order */
	char *ts = b64(cert), *ks = b64(both);
	size_t cap = strlen(ts) + strlen(ks) + 512;
	char *json = malloc(cap);
	snprintf(json, cap, "{\"bootstrap.servers\": \"127.0.0.1:1\", \"ssl.truststore\": \"%s\","
	    " \"ssl.truststore.password\": \"changeit\", \"ssl.keystore\": \"%s\"}", ts, ks);
	rd_kafka_conf_t *c;
	int rc = apply(json, &c);
	ok(rc == 0, "SSL (the default protocol) with a base64 PEM truststore and keystore accepted (%s)", msg);
	is_str(get(c, "security.protocol"), "ssl", "security.protocol defaults to SSL");
	is_str(get(c, "ssl.ca.pem"), cert, "ssl.truststore decoded → ssl.ca.pem");
	is_str(get(c, "ssl.certificate.pem"), cert, "ssl.keystore's CERTIFICATE block → ssl.certificate.pem");
	is_str(get(c, "ssl.key.pem"), key, "ssl.keystore's PRIVATE KEY block → ssl.key.pem");
	starts(c, "librdkafka builds its TLS context from the mapped PEMs");

	/* The PEM text itself is taken too; ssl.keystore.password stands in
	 * for ssl.key.password. */
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "bootstrap.servers", "h:9094");
	cJSON_AddStringToObject(p, "ssl.truststore", cert);
	cJSON_AddStringToObject(p, "ssl.keystore.password", "kp");
	c = rd_kafka_conf_new();
	rc = kafkaconf_apply(p, c, msg, sizeof(msg));
	ok(rc == 0 && strcmp(get(c, "ssl.ca.pem"), cert) == 0, "a truststore given as PEM text is taken as is");
	is_str(get(c, "ssl.key.password"), "kp", "ssl.keystore.password → ssl.key.password");
	rd_kafka_conf_destroy(c);
	cJSON_Delete(p);

	/* A Java keystore: refused, said so. */
	unsigned char jks[64] = {0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2};
	unsigned char jb[128];
	EVP_EncodeBlock(jb, jks, sizeof(jks));
	snprintf(json, cap, "{\"bootstrap.servers\": \"h:9094\", \"ssl.truststore\": \"%s\"}", jb);
	refused(json, "Java KeyStore", "a JKS truststore");
	snprintf(json, cap, "{\"bootstrap.servers\": \"h:9094\", \"ssl.truststore\": \"not base64 at all!\"}");
	refused(json, "not base64", "a truststore that is not base64");
	snprintf(json, cap, "{\"bootstrap.servers\": \"h:9094\", \"ssl.keystore\": \"%s\"}", ts);
	refused(json, "PRIVATE KEY", "a keystore without its key");
	char *big = malloc(70000);
	memset(big, 'A', 69996);
	big[69996] = 0;
	char *bigjson = malloc(70100);
	snprintf(bigjson, 70100, "{\"bootstrap.servers\": \"h:9094\", \"ssl.truststore\": \"%s\"}", big);
	refused(bigjson, "65,536", "a truststore over 65 KB");
	free(big);
	free(bigjson);
	free(json);
	free(ts);
	free(ks);
	free(both);
	free(cert);
	free(key);
}

static void
test_plaintext_and_refusals(void)
{
	rd_kafka_conf_t *c;
	int rc = apply("{\"bootstrap.servers\": \"127.0.0.1:29092\", \"security.protocol\": \"PLAINTEXT\"}", &c);
	ok(rc == 1 && strstr(msg, "PLAINTEXT") && strstr(msg, "AWS"), "PLAINTEXT accepted with a warning (%s)", msg);
	is_str(get(c, "security.protocol"), "plaintext", "PLAINTEXT mapped");
	rd_kafka_conf_destroy(c);
	rc = apply("{\"bootstrap.servers\": \"k1:8080, k2:65535,[::1]:1\"}", &c);
	ok(rc == 0, "ports outside AWS's 9000-9100 accepted; IPv6 and spaces too (%s)", msg);
	rd_kafka_conf_destroy(c);

	refused("{\"security.protocol\": \"SSL\"}", "bootstrap.servers is required", "no bootstrap.servers");
	refused("{\"bootstrap.servers\": \"kafka.example\"}", "host:port", "a server without a port");
	refused("{\"bootstrap.servers\": \"k:70000\"}", "host:port", "port 70000");
	refused("{\"bootstrap.servers\": \"k:9092,\"}", "host:port", "an empty server");
	refused("{\"bootstrap.servers\": \"k:9092\", \"acks\": \"all\"}", "acks", "acks all (AWS: 0 or 1)");
	refused("{\"bootstrap.servers\": \"k:9092\", \"compression.type\": \"brotli\"}", "compression.type", "compression brotli");
	refused("{\"bootstrap.servers\": \"k:9092\", \"security.protocol\": \"SASL_PLAINTEXT\", \"sasl.mechanism\": \"PLAIN\","
	    " \"sasl.plain.username\": \"u\", \"sasl.plain.password\": \"p\"}", "SASL_PLAINTEXT", "SASL_PLAINTEXT");
	refused("{\"bootstrap.servers\": \"k:9092\", \"security.protocol\": \"SASL_SSL\"}", "needs sasl.mechanism",
	    "SASL_SSL without sasl.mechanism");
	refused("{\"bootstrap.servers\": \"k:9092\", \"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"PLAIN\","
	    " \"sasl.plain.username\": \"u\"}", "sasl.plain.password", "PLAIN without its password");
	refused("{\"bootstrap.servers\": \"k:9092\", \"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"SCRAM-SHA-512\","
	    " \"sasl.plain.username\": \"u\", \"sasl.plain.password\": \"p\"}", "sasl.scram.username",
	    "SCRAM with PLAIN's credentials");
	refused("{\"bootstrap.servers\": \"k:9092\", \"sasl.mechanism\": \"PLAIN\", \"sasl.plain.username\": \"u\","
	    " \"sasl.plain.password\": \"p\"}", "needs security.protocol SASL_SSL", "a mechanism with SSL");
	refused("{\"bootstrap.servers\": \"k:9092\", \"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"GSSAPI\","
	    " \"sasl.kerberos.service.name\": \"kafka\"}", "GSSAPI", "GSSAPI");
	refused("{\"bootstrap.servers\": \"k:9092\", \"linger.ms\": \"5\"}", "unknown property linger.ms", "an unknown property");
	refused("{\"bootstrap.servers\": \"k:9092\", \"acks\": 1}", "must be a string", "a number for a string");
	refused("{\"bootstrap.servers\": \"k:9092\", \"key.serializer\": \"LongSerializer\"}", "StringSerializer",
	    "another key serializer");
	refused("{\"bootstrap.servers\": \"k:9092\", \"value.serializer\": \"StringSerializer\"}", "ByteBufferSerializer",
	    "another value serializer");
}

static int
check(const char *json)
{
	cJSON *p = cJSON_Parse(json);
	int rc = p ? kafkaconf_check_action(p, msg, sizeof(msg)) : -9;
	cJSON_Delete(p);
	return rc;
}

#define CP "\"clientProperties\": {\"bootstrap.servers\": \"k:9092\"}"
#define DA "\"destinationArn\": \"arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/x\""

static void
test_check_action(void)
{
	FILE *f = fopen("examples/aws/kafka.json", "r");
	char buf[8192] = "";
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	cJSON *doc = cJSON_Parse(buf);
	cJSON *a = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(doc, "topicRulePayload"), "actions"), 0), "kafka");
	int rc = a ? kafkaconf_check_action(a, msg, sizeof(msg)) : -9;
	ok(rc == 0, "examples/aws/kafka.json (SASL_SSL, templated truststore and credentials) passes (%d %s)", rc, msg);
	cJSON_Delete(doc);

	ok(check("{" DA ", \"topic\": \"t-${topic(2)}\", \"key\": \"${k}\", \"partition\": \"${seq % 4}\","
	    " \"headers\": [{\"key\": \"a\", \"value\": \"${x}\"}], " CP "}") == 0, "templates in topic, key, partition, headers");
	ok(check("{" DA ", \"topic\": \"t\", \"partition\": \"3\", " CP "}") == 0, "partition \"3\"");
	ok(check("{" DA ", \"topic\": \"t\", \"partition\": \"three\", " CP "}") == -1, "partition \"three\" refused (%s)", msg);
	ok(check("{" DA ", \"topic\": \"t\", \"partition\": \"-1\", " CP "}") == -1, "partition \"-1\" refused");
	ok(check("{" DA ", \"topic\": \"\", " CP "}") == -1, "an empty topic refused");
	ok(check("{" DA ", \"topic\": \"t\"}") == -1, "no clientProperties refused (%s)", msg);
	ok(check("{\"topic\": \"t\", " CP "}") == -1, "no destinationArn refused");
	ok(check("{" DA ", \"topic\": \"t\", \"headers\": [], " CP "}") == -1, "0 headers refused");
	ok(check("{" DA ", \"topic\": \"t\", \"headers\": [{\"key\": \"a\"}], " CP "}") == -1, "a header without value refused");
	/* 101 headers */
	char *h = malloc(4096);
	strcpy(h, "{" DA ", \"topic\": \"t\", " CP ", \"headers\": [");
	for (int i = 0; i < 101; i++)
		strcat(h, i ? ",{\"key\":\"k\",\"value\":\"v\"}" : "{\"key\":\"k\",\"value\":\"v\"}");
	strcat(h, "]}");
	ok(check(h) == -1, "101 headers refused (%s)", msg);
	free(h);
	ok(check("{" DA ", \"topic\": \"t\", \"clientProperties\": {\"bootstrap.servers\": \"k:9092\","
	    " \"security.protocol\": \"PLAINTEXT\"}}") == 1, "PLAINTEXT: a warning at load time (%s)", msg);
}

static void
test_key(void)
{
	cJSON *a = cJSON_Parse("{\"bootstrap.servers\": \"k:9092\", \"acks\": \"1\", \"security.protocol\": \"PLAINTEXT\"}");
	cJSON *b = cJSON_Parse("{\"security.protocol\": \"PLAINTEXT\", \"acks\": \"1\", \"bootstrap.servers\": \"k:9092\"}");
	cJSON *c = cJSON_Parse("{\"security.protocol\": \"PLAINTEXT\", \"acks\": \"0\", \"bootstrap.servers\": \"k:9092\"}");
	cJSON *d = cJSON_Parse("{\"acks\": \"1b\", \"bootstrap.servers\": \"k:9092\"}");
	cJSON *e = cJSON_Parse("{\"acks\": \"1\", \"bbootstrap.servers\": \"k:9092\"}");
	char ka[65], kb[65], kc[65], kd[65], ke[65];
	ok(kafkaconf_key(a, ka) == 0 && kafkaconf_key(b, kb) == 0 && kafkaconf_key(c, kc) == 0 &&
	    kafkaconf_key(d, kd) == 0 && kafkaconf_key(e, ke) == 0 && strlen(ka) == 64, "keys computed (%s)", ka);
	is_str(ka, kb, "the same properties in another order: the same key");
	ok(strcmp(ka, kc) != 0, "another value: another key");
	ok(strcmp(kd, ke) != 0, "a character moved from a value to the next name: another key");
	cJSON *bad = cJSON_Parse("{\"acks\": 1}");
	ok(kafkaconf_key(bad, ka) == -1, "a non-string property: no key");
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
	cJSON_Delete(d);
	cJSON_Delete(e);
	cJSON_Delete(bad);
}

int
main(void)
{
	test_sasl();
	test_ssl();
	test_plaintext_and_refusals();
	test_check_action();
	test_key();
	return done_testing();
}
