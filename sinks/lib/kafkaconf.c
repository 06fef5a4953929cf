/* kafkaconf: clientProperties → librdkafka configuration (kafkaconf.h). */
#include "sinks/lib/kafkaconf.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TRUSTSTORE 65536
#define MAX_HEADERS 100
#define MAX_HEADER_CHARS 16384

static int __attribute__((format(printf, 3, 4)))
refuse(char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
prop(const cJSON *props, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(props, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
templated(const char *s)
{
	return s && strstr(s, "${") != NULL;
}

static int
set(rd_kafka_conf_t *conf, const char *name, const char *value, char *msg, size_t cap)
{
	char err[256];
	if (conf == NULL || value == NULL)
		return 0;
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		return refuse(msg, cap, "clientProperties: librdkafka refused %s: %s", name, err);
	return 0;
}

/* host:port[,host:port...]: each port a number 1-65535 (any range: AWS's
 * 9000-9100 is not enforced); the host may be [v6]. */
static int
check_servers(const char *s, char *msg, size_t cap)
{
	if (s == NULL || s[0] == 0)
		return refuse(msg, cap, "clientProperties: bootstrap.servers is required");
	char *copy = strdup(s), *next = copy;
	if (copy == NULL)
		return refuse(msg, cap, "clientProperties: out of memory");
	int bad = 0;
	while (next && !bad) {
		char *e = next + strspn(next, " ");
		next = strchr(next, ',');
		if (next)
			*next++ = 0;
		char *colon = strrchr(e, ':'), *end = NULL;
		long port = colon ? strtol(colon + 1, &end, 10) : 0;
		bad = colon == NULL || colon == e || !isdigit((unsigned char)colon[1]) ||
		    (*end && *end != ' ') || port < 1 || port > 65535;
	}
	free(copy);
	return bad ? refuse(msg, cap, "clientProperties: bootstrap.servers \"%s\" is not a list of host:port", s) : 0;
}

/* Decodes base64 (newlines allowed) with OpenSSL's decoder; the PEM text
 * itself is taken as is.  Returns a NUL-terminated string to free, or
 * NULL (msg set) when it is neither, or is a Java keystore. */
static char *
pem_text(const char *name, const char *v, char *msg, size_t cap)
{
	if (strncmp(v, "-----BEGIN ", 11) == 0)
		return strdup(v);
	size_t n = strlen(v);
	unsigned char *out = malloc(n / 4 * 3 + 4);
	int len = 0, tail = 0;
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	if (out == NULL || ctx == NULL) {
		free(out);
		EVP_ENCODE_CTX_free(ctx);
		refuse(msg, cap, "clientProperties: %s: out of memory", name);
		return NULL;
	}
	EVP_DecodeInit(ctx);
	int bad = EVP_DecodeUpdate(ctx, out, &len, (const unsigned char *)v, (int)n) < 0 ||
	    EVP_DecodeFinal(ctx, out + len, &tail) < 0;
	EVP_ENCODE_CTX_free(ctx);
	len += tail;
	out[bad ? 0 : len] = 0;
	if (bad || len == 0) {
		free(out);
		refuse(msg, cap, "clientProperties: %s is not base64", name);
		return NULL;
	}
	/* JKS starts with 0xFEEDFEED, PKCS#12 (and any DER) with a SEQUENCE. */
	if (strstr((char *)out, "-----BEGIN ") == NULL || memchr(out, 0, (size_t)len)) {
		int jks = len >= 4 && out[0] == 0xfe && out[1] == 0xed && out[2] == 0xfe && out[3] == 0xed;
		free(out);
		refuse(msg, cap, "clientProperties: %s is %s; only PEM (base64-encoded) is supported here", name,
		    jks ? "a Java KeyStore (JKS)" : "not PEM (a PKCS#12 or DER keystore?)");
		return NULL;
	}
	return (char *)out;
}

/* The PEM blocks of text whose label contains want, concatenated. */
static char *
pem_blocks(const char *text, const char *want)
{
	size_t cap = strlen(text) + 1, len = 0;
	char *out = malloc(cap);
	if (out == NULL)
		return NULL;
	const char *p = text;
	while ((p = strstr(p, "-----BEGIN ")) != NULL) {
		const char *eol = strstr(p + 11, "-----");
		const char *end = eol ? strstr(eol, "-----END ") : NULL;
		const char *stop = end ? strstr(end + 9, "-----") : NULL;
		if (stop == NULL)
			break;
		stop += 5;
		if (memmem(p + 11, (size_t)(eol - p - 11), want, strlen(want))) {
			memcpy(out + len, p, (size_t)(stop - p));
			len += (size_t)(stop - p);
			out[len++] = '\n';
		}
		p = stop;
	}
	out[len] = 0;
	return out;
}

static int
map_truststore(const char *v, rd_kafka_conf_t *conf, char *msg, size_t cap)
{
	if (strlen(v) > MAX_TRUSTSTORE)
		return refuse(msg, cap, "clientProperties: ssl.truststore is longer than 65,536 characters");
	char *pem = pem_text("ssl.truststore", v, msg, cap);
	if (pem == NULL)
		return -1;
	int rc = set(conf, "ssl.ca.pem", pem, msg, cap);
	free(pem);
	return rc;
}

static int
map_keystore(const char *v, rd_kafka_conf_t *conf, char *msg, size_t cap)
{
	char *pem = pem_text("ssl.keystore", v, msg, cap);
	if (pem == NULL)
		return -1;
	char *cert = pem_blocks(pem, "CERTIFICATE"), *key = pem_blocks(pem, "PRIVATE KEY");
	int rc = 0;
	if (cert == NULL || key == NULL)
		rc = refuse(msg, cap, "clientProperties: ssl.keystore: out of memory");
	else if (cert[0] == 0 || key[0] == 0)
		rc = refuse(msg, cap, "clientProperties: ssl.keystore needs a CERTIFICATE and a PRIVATE KEY PEM block");
	else if (set(conf, "ssl.certificate.pem", cert, msg, cap) < 0 || set(conf, "ssl.key.pem", key, msg, cap) < 0)
		rc = -1;
	free(pem);
	free(cert);
	free(key);
	return rc;
}

/* One of the listed words, or refused. */
static int
one_of(const char *name, const char *v, const char *const *words, char *msg, size_t cap)
{
	for (int i = 0; words[i]; i++)
		if (strcmp(v, words[i]) == 0)
			return 0;
	return refuse(msg, cap, "clientProperties: %s \"%s\" is not supported", name, v);
}

static const char *const KNOWN[] = {"bootstrap.servers", "acks", "compression.type", "security.protocol",
    "key.serializer", "value.serializer", "ssl.truststore", "ssl.truststore.password", "ssl.keystore",
    "ssl.keystore.password", "ssl.key.password", "sasl.mechanism", "sasl.plain.username",
    "sasl.plain.password", "sasl.scram.username", "sasl.scram.password", NULL};

static int
ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);
	return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Names, value types and the choices among words. */
static int
check_names(const cJSON *props, char *msg, size_t cap)
{
	if (!cJSON_IsObject(props))
		return refuse(msg, cap, "clientProperties must be an object of strings");
	for (const cJSON *k = props->child; k; k = k->next) {
		int known = 0;
		for (int i = 0; KNOWN[i] && !known; i++)
			known = strcmp(k->string, KNOWN[i]) == 0;
		if (strncmp(k->string, "sasl.kerberos.", 14) == 0)
			return refuse(msg, cap, "clientProperties: %s: GSSAPI (Kerberos) is not supported here", k->string);
		if (!known)
			return refuse(msg, cap, "clientProperties: unknown property %s", k->string);
		if (!cJSON_IsString(k))
			return refuse(msg, cap, "clientProperties: %s must be a string", k->string);
	}
	static const char *const acks[] = {"0", "1", NULL};
	static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
	static const char *const mechs[] = {"PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256", NULL};
	const char *v;
	if ((v = prop(props, "acks")) && one_of("acks", v, acks, msg, cap) < 0)
		return -1;
	if ((v = prop(props, "compression.type")) && one_of("compression.type", v, codecs, msg, cap) < 0)
		return -1;
	if ((v = prop(props, "sasl.mechanism")) && strcmp(v, "GSSAPI") == 0)
		return refuse(msg, cap, "clientProperties: sasl.mechanism GSSAPI (Kerberos) is not supported here");
	if (v && one_of("sasl.mechanism", v, mechs, msg, cap) < 0)
		return -1;
	if ((v = prop(props, "key.serializer")) && !ends_with(v, "StringSerializer"))
		return refuse(msg, cap, "clientProperties: key.serializer must be StringSerializer");
	if ((v = prop(props, "value.serializer")) && !ends_with(v, "ByteBufferSerializer"))
		return refuse(msg, cap, "clientProperties: value.serializer must be ByteBufferSerializer");
	return 0;
}

/* security.protocol and SASL: which goes with which. */
static int
check_security(const cJSON *props, rd_kafka_conf_t *conf, int *warn, char *msg, size_t cap)
{
	const char *proto = prop(props, "security.protocol");
	const char *mech = prop(props, "sasl.mechanism");
	if (proto == NULL)
		proto = "SSL";
	int sasl = strcasecmp(proto, "SASL_SSL") == 0;
	if (strcasecmp(proto, "PLAINTEXT") == 0) {
		*warn = 1;
		snprintf(msg, cap, "clientProperties: security.protocol PLAINTEXT sends records unencrypted; "
		    "AWS IoT refuses it (accepted here for local brokers)");
	} else if (!sasl && strcasecmp(proto, "SSL") != 0) {
		return refuse(msg, cap, "clientProperties: security.protocol \"%s\" is not supported "
		    "(SSL, SASL_SSL, or PLAINTEXT for local brokers)", proto);
	}
	if (sasl && mech == NULL)
		return refuse(msg, cap, "clientProperties: security.protocol SASL_SSL needs sasl.mechanism");
	if (!sasl && mech)
		return refuse(msg, cap, "clientProperties: sasl.mechanism needs security.protocol SASL_SSL");
	const char *user = NULL, *pass = NULL;
	if (mech) {
		int plain = strcmp(mech, "PLAIN") == 0;
		user = prop(props, plain ? "sasl.plain.username" : "sasl.scram.username");
		pass = prop(props, plain ? "sasl.plain.password" : "sasl.scram.password");
		if (user == NULL || pass == NULL)
			return refuse(msg, cap, "clientProperties: sasl.mechanism %s needs %s and %s", mech,
			    plain ? "sasl.plain.username" : "sasl.scram.username",
			    plain ? "sasl.plain.password" : "sasl.scram.password");
	}
	char lower[32];
	size_t i = 0;
	for (; proto[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)tolower((unsigned char)proto[i]);
	lower[i] = 0;
	if (set(conf, "security.protocol", lower, msg, cap) < 0 || set(conf, "sasl.mechanisms", mech, msg, cap) < 0 ||
	    set(conf, "sasl.username", user, msg, cap) < 0 || set(conf, "sasl.password", pass, msg, cap) < 0)
		return -1;
	return 0;
}

int
kafkaconf_apply(const cJSON *props, rd_kafka_conf_t *conf, char *msg, size_t cap)
{
	int warn = 0;
	if (check_names(props, msg, cap) < 0)
		return -1;
	const char *v = prop(props, "bootstrap.servers");
	if (check_servers(v, msg, cap) < 0 || set(conf, "bootstrap.servers", v, msg, cap) < 0)
		return -1;
	if (check_security(props, conf, &warn, msg, cap) < 0)
		return -1;
	/* acks=0: no acknowledgement and no retry (ERRORS.md §3). */
	v = prop(props, "acks");
	if (set(conf, "acks", v ? v : "1", msg, cap) < 0 ||
	    (v && strcmp(v, "0") == 0 && set(conf, "message.send.max.retries", "0", msg, cap) < 0))
		return -1;
	if (set(conf, "compression.codec", prop(props, "compression.type"), msg, cap) < 0)
		return -1;
	/* The keystore and truststore may come from templates (get_secret):
	 * their content is checked once resolved. */
	if ((v = prop(props, "ssl.truststore")) && (conf || !templated(v)) && map_truststore(v, conf, msg, cap) < 0)
		return -1;
	if ((v = prop(props, "ssl.keystore")) && (conf || !templated(v)) && map_keystore(v, conf, msg, cap) < 0)
		return -1;
	v = prop(props, "ssl.key.password");
	if (v == NULL)
		v = prop(props, "ssl.keystore.password");
	if (set(conf, "ssl.key.password", v, msg, cap) < 0)
		return -1;
	if (!warn && cap)
		msg[0] = 0;
	return warn;
}

/* A template, or an integer ≥ 0. */
static int
check_partition(const cJSON *p, char *msg, size_t cap)
{
	if (p == NULL || cJSON_IsNumber(p))
		return p && (p->valuedouble < 0 || p->valuedouble != (double)(long)p->valuedouble)
		    ? refuse(msg, cap, "kafka: partition must be an integer >= 0") : 0;
	if (!cJSON_IsString(p))
		return refuse(msg, cap, "kafka: partition must be a string");
	if (templated(p->valuestring))
		return 0;
	char *end;
	long v = strtol(p->valuestring, &end, 10);
	if (p->valuestring[0] == 0 || *end || v < 0 || v > 0x7fffffff)
		return refuse(msg, cap, "kafka: partition \"%s\" is not an integer >= 0", p->valuestring);
	return 0;
}

static int
check_headers(const cJSON *h, char *msg, size_t cap)
{
	if (h == NULL)
		return 0;
	int n = cJSON_GetArraySize(h);
	if (!cJSON_IsArray(h) || n < 1 || n > MAX_HEADERS)
		return refuse(msg, cap, "kafka: headers must be an array of 1 to 100 {key, value} objects");
	for (const cJSON *e = h->child; e; e = e->next) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "key");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");
		if (!cJSON_IsString(k) || !cJSON_IsString(v) || cJSON_GetArraySize(e) != 2)
			return refuse(msg, cap, "kafka: each header must be {\"key\": string, \"value\": string}");
		if (strlen(k->valuestring) > MAX_HEADER_CHARS || strlen(v->valuestring) > MAX_HEADER_CHARS)
			return refuse(msg, cap, "kafka: a header key or value is longer than 16,384 characters");
	}
	return 0;
}

int
kafkaconf_check_action(const cJSON *params, char *msg, size_t cap)
{
	const cJSON *topic = cJSON_GetObjectItemCaseSensitive(params, "topic");
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(params, "key");
	const cJSON *dest = cJSON_GetObjectItemCaseSensitive(params, "destinationArn");
	if (!cJSON_IsObject(params))
		return refuse(msg, cap, "kafka: the action must be an object");
	if (!cJSON_IsString(topic) || topic->valuestring[0] == 0)
		return refuse(msg, cap, "kafka: topic must be a non-empty string");
	if (!cJSON_IsString(dest))
		return refuse(msg, cap, "kafka: destinationArn must be a string");
	if (key && !cJSON_IsString(key))
		return refuse(msg, cap, "kafka: key must be a string");
	if (check_partition(cJSON_GetObjectItemCaseSensitive(params, "partition"), msg, cap) < 0 ||
	    check_headers(cJSON_GetObjectItemCaseSensitive(params, "headers"), msg, cap) < 0)
		return -1;
	return kafkaconf_apply(cJSON_GetObjectItemCaseSensitive(params, "clientProperties"), NULL, msg, cap);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

int
kafkaconf_key(const cJSON *props, char key[65])
{
	int n = cJSON_GetArraySize(props);
	if (!cJSON_IsObject(props))
		return -1;
	const cJSON **v = calloc((size_t)n + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	int i = 0;
	for (const cJSON *k = props->child; k; k = k->next)
		v[i++] = k;
	qsort(v, (size_t)n, sizeof(*v), by_name);
	/* Name and value each with their NUL: no two lists hash alike by
	 * running one into the next. */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hn = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < n; i++)
		ok = cJSON_IsString(v[i]) && EVP_DigestUpdate(md, v[i]->string, strlen(v[i]->string) + 1) == 1 &&
		    EVP_DigestUpdate(md, v[i]->valuestring, strlen(v[i]->valuestring) + 1) == 1;
	ok = ok && EVP_DigestFinal_ex(md, h, &hn) == 1 && hn == 32;
	EVP_MD_CTX_free(md);
	free(v);
	for (unsigned k = 0; ok && k < 32; k++)
		snprintf(key + 2 * k, 3, "%02x", h[k]);
	return ok ? 0 : -1;
}
