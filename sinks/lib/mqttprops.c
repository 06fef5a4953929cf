#include "sinks/lib/mqttprops.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

#define HEADER_MAX 1024

/* The header's string, NULL when absent or empty; "" (and why set) when
 * it is not a string or too long. */
static const char *
header(const cJSON *h, const char *name, char *why, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, name);
	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsString(v)) {
		snprintf(why, cap, "headers.%s is not a string", name);
		return "";
	}
	if (utf8_chars(v->valuestring) > HEADER_MAX) {
		snprintf(why, cap, "headers.%s is longer than %d characters", name, HEADER_MAX);
		return "";
	}
	return v->valuestring[0] ? v->valuestring : NULL;
}

/* base64 text → bytes in *out (malloc'd, *n long); -1 when not base64. */
static int
unbase64(const char *s, unsigned char **out, int *n)
{
	size_t len = strlen(s);
	if (len % 4 != 0)
		return -1;
	unsigned char *b = malloc(len / 4 * 3 + 1);
	if (b == NULL)
		return -1;
	int got = EVP_DecodeBlock(b, (const unsigned char *)s, (int)len);
	if (got < 0) {
		free(b);
		return -1;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	for (size_t i = len; i > 0 && s[i - 1] == '='; i--)
		got--;
	*out = b;
	*n = got;
	return 0;
}

static int
user_properties(const cJSON *h, mosquitto_property **out, char *why, size_t cap)
{
	const cJSON *ups = cJSON_GetObjectItemCaseSensitive(h, "userProperties"), *u;
	if (ups == NULL || cJSON_IsNull(ups))
		return 0;
	int n = cJSON_GetArraySize(ups);
	if (!cJSON_IsArray(ups) || n < 1 || n > 100) {
		snprintf(why, cap, "headers.userProperties must be a list of 1 to 100 {key, value}");
		return -1;
	}
	cJSON_ArrayForEach(u, ups) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(u, "key");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, "value");
		if (!cJSON_IsString(k) || !cJSON_IsString(v) || k->valuestring[0] == 0) {
			snprintf(why, cap, "each of headers.userProperties needs a string key and value");
			return -1;
		}
		if (utf8_chars(k->valuestring) > HEADER_MAX || utf8_chars(v->valuestring) > HEADER_MAX) {
			snprintf(why, cap, "a user property is longer than %d characters", HEADER_MAX);
			return -1;
		}
		if (mosquitto_property_add_string_pair(out, MQTT_PROP_USER_PROPERTY, k->valuestring, v->valuestring))
			return snprintf(why, cap, "out of memory"), -1;
	}
	return 0;
}

static int
build(const cJSON *h, mosquitto_property **out, char *why, size_t cap)
{
	const char *pfi = header(h, "payloadFormatIndicator", why, cap);
	const char *ct = header(h, "contentType", why, cap);
	const char *rt = header(h, "responseTopic", why, cap);
	const char *cd = header(h, "correlationData", why, cap);
	const char *exp = header(h, "messageExpiry", why, cap);
	if (why[0])
		return -1;
	if (pfi) {
		int v = strcmp(pfi, "UTF8_DATA") == 0 ? 1 : strcmp(pfi, "UNSPECIFIED_BYTES") == 0 ? 0 : -1;
		if (v < 0)
			return snprintf(why, cap, "headers.payloadFormatIndicator \"%.60s\" is not UNSPECIFIED_BYTES or UTF8_DATA", pfi), -1;
		if (mosquitto_property_add_byte(out, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, (uint8_t)v))
			return snprintf(why, cap, "out of memory"), -1;
	}
	if (ct && mosquitto_property_add_string(out, MQTT_PROP_CONTENT_TYPE, ct))
		return snprintf(why, cap, "out of memory"), -1;
	if (rt) {
		if (strpbrk(rt, "+#"))
			return snprintf(why, cap, "headers.responseTopic \"%.60s\" contains a wildcard", rt), -1;
		if (mosquitto_property_add_string(out, MQTT_PROP_RESPONSE_TOPIC, rt))
			return snprintf(why, cap, "out of memory"), -1;
	}
	if (cd) {
		unsigned char *b;
		int n;
		if (unbase64(cd, &b, &n) < 0)
			return snprintf(why, cap, "headers.correlationData is not base64"), -1;
		int rc = mosquitto_property_add_binary(out, MQTT_PROP_CORRELATION_DATA, b, (uint16_t)n);
		free(b);
		if (rc)
			return snprintf(why, cap, "out of memory"), -1;
	}
	if (exp) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(exp, &end, 10);
		if (exp[0] < '0' || exp[0] > '9' || *end || errno || v > 4294967295ULL)
			return snprintf(why, cap, "headers.messageExpiry \"%.60s\" is not a number of seconds", exp), -1;
		if (mosquitto_property_add_int32(out, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, (uint32_t)v))
			return snprintf(why, cap, "out of memory"), -1;
	}
	return user_properties(h, out, why, cap);
}

int
mqttprops_from_headers(const cJSON *headers, mosquitto_property **out, char *why, size_t cap)
{
	*out = NULL;
	why[0] = 0;
	if (!cJSON_IsObject(headers))
		return 0;
	if (build(headers, out, why, cap) < 0) {
		mosquitto_property_free_all(out);
		return -1;
	}
	return 0;
}
