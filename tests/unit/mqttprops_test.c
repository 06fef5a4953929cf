/* Unit tests of mqttprops: the republish action's MQTT 5 headers as
 * libmosquitto publish properties, and the headers it refuses. */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/lib/mqttprops.h"
#include "tests/unit/tap.h"

static mosquitto_property *
build(const char *json, char *why, int *rc)
{
	cJSON *h = cJSON_Parse(json);
	mosquitto_property *p = (mosquitto_property *)1;
	*rc = mqttprops_from_headers(h, &p, why, 256);
	cJSON_Delete(h);
	return p;
}

static void
refused(const char *json, const char *want, const char *name)
{
	char why[256];
	int rc;
	mosquitto_property *p = build(json, why, &rc);
	ok(rc == -1 && p == NULL && strstr(why, want) != NULL, "%s: refused (%s)", name, why);
}

int
main(void)
{
	char why[256], *s = NULL, *k = NULL, *v = NULL;
	int rc;
	uint8_t b = 9;
	uint32_t u = 0;
	void *bin = NULL;
	uint16_t blen = 0;
	mosquitto_property *p = build("{\"payloadFormatIndicator\":\"UTF8_DATA\",\"contentType\":\"application/json\","
	    "\"responseTopic\":\"reply/dev1\",\"correlationData\":\"AAECAw==\",\"messageExpiry\":\"3600\","
	    "\"userProperties\":[{\"key\":\"a\",\"value\":\"1\"},{\"key\":\"a\",\"value\":\"2\"},{\"key\":\"b\",\"value\":\"\"}]}",
	    why, &rc);
	ok(rc == 0 && p != NULL, "every header: built (%s)", why);
	ok(mosquitto_property_read_byte(p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, &b, false) && b == 1, "UTF8_DATA is 1");
	ok(mosquitto_property_read_string(p, MQTT_PROP_CONTENT_TYPE, &s, false) && strcmp(s, "application/json") == 0, "contentType");
	free(s);
	s = NULL;
	ok(mosquitto_property_read_string(p, MQTT_PROP_RESPONSE_TOPIC, &s, false) && strcmp(s, "reply/dev1") == 0, "responseTopic");
	free(s);
	ok(mosquitto_property_read_binary(p, MQTT_PROP_CORRELATION_DATA, &bin, &blen, false) && blen == 4 &&
	    memcmp(bin, "\0\1\2\3", 4) == 0, "correlationData is the base64 decoded (4 bytes)");
	free(bin);
	ok(mosquitto_property_read_int32(p, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &u, false) && u == 3600, "messageExpiry 3600");
	const mosquitto_property *up = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &k, &v, false);
	ok(up && strcmp(k, "a") == 0 && strcmp(v, "1") == 0, "first user property a=1");
	free(k), free(v);
	up = mosquitto_property_read_string_pair(up, MQTT_PROP_USER_PROPERTY, &k, &v, true);
	ok(up && strcmp(k, "a") == 0 && strcmp(v, "2") == 0, "repeated key kept, in order: a=2");
	free(k), free(v);
	up = mosquitto_property_read_string_pair(up, MQTT_PROP_USER_PROPERTY, &k, &v, true);
	ok(up && strcmp(k, "b") == 0 && strcmp(v, "") == 0, "empty value kept: b=");
	free(k), free(v);
	mosquitto_property_free_all(&p);

	p = build("{\"payloadFormatIndicator\":\"UNSPECIFIED_BYTES\",\"correlationData\":\"YWI=\"}", why, &rc);
	ok(rc == 0 && mosquitto_property_read_byte(p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, &b, false) && b == 0,
	    "UNSPECIFIED_BYTES is 0");
	ok(mosquitto_property_read_binary(p, MQTT_PROP_CORRELATION_DATA, &bin, &blen, false) && blen == 2 &&
	    memcmp(bin, "ab", 2) == 0, "padded base64: 2 bytes");
	free(bin);
	mosquitto_property_free_all(&p);

	p = build("{\"contentType\":\"\",\"messageExpiry\":\"\"}", why, &rc);
	ok(rc == 0 && p == NULL, "headers that render empty are left out");
	p = build("null", why, &rc);
	ok(rc == 0 && p == NULL, "no headers: no properties");

	refused("{\"payloadFormatIndicator\":\"TEXT\"}", "payloadFormatIndicator", "unknown payloadFormatIndicator");
	refused("{\"responseTopic\":\"a/+/b\"}", "wildcard", "responseTopic with a wildcard");
	refused("{\"correlationData\":\"not base64!\"}", "base64", "correlationData not base64");
	refused("{\"messageExpiry\":\"-5\"}", "messageExpiry", "negative messageExpiry");
	refused("{\"messageExpiry\":\"4294967296\"}", "messageExpiry", "messageExpiry over 32 bits");
	refused("{\"messageExpiry\":\"10s\"}", "messageExpiry", "messageExpiry with a unit");
	refused("{\"userProperties\":[]}", "1 to 100", "no userProperties");
	refused("{\"userProperties\":[{\"key\":\"a\"}]}", "key and value", "user property without a value");
	refused("{\"contentType\":5}", "not a string", "contentType not a string");
	char big[1100 + 40];
	snprintf(big, sizeof(big), "{\"contentType\":\"%01025d\"}", 0);
	refused(big, "1024", "contentType of 1025 characters");
	return done_testing();
}
