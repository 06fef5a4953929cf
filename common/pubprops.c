/* pubprops: see mqttprops.h. */
#include "common/pubprops.h"

#include <mqtt_protocol.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

void
pubprops_json(const mosquitto_property *props, buf *out)
{
	char *s = NULL, *k = NULL, *v = NULL;
	void *bin = NULL;
	uint8_t byte;
	uint16_t blen;
	if (props == NULL)
		return;
	buf_addc(out, '{');
	size_t empty = out->len;
	if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &s, false)) {
		buf_adds(out, "\"content_type\":");
		buf_add_json_str(out, s, strlen(s));
		free(s);
	}
	if (mosquitto_property_read_byte(props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, &byte, false)) {
		buf_adds(out, out->len > empty ? "," : "");
		buf_printf(out, "\"format_indicator\":%d", byte ? 1 : 0);
	}
	if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &s, false)) {
		buf_adds(out, out->len > empty ? "," : "");
		buf_adds(out, "\"response_topic\":");
		buf_add_json_str(out, s, strlen(s));
		free(s);
	}
	if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &bin, &blen, false)) {
		char *b64 = malloc((size_t)blen / 3 * 4 + 8);
		if (b64) {
			int n = EVP_EncodeBlock((unsigned char *)b64, bin, blen);
			buf_adds(out, out->len > empty ? "," : "");
			buf_adds(out, "\"correlation_data\":");
			buf_add_json_str(out, b64, (size_t)n);
			free(b64);
		}
		free(bin);
	}
	int first = 1;
	for (const mosquitto_property *p = mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &k, &v, false);
	     p != NULL; p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &k, &v, true)) {
		buf_adds(out, first ? (out->len > empty ? ",\"user_properties\":[" : "\"user_properties\":[") : ",");
		first = 0;
		buf_addc(out, '[');
		buf_add_json_str(out, k, strlen(k));
		buf_addc(out, ',');
		buf_add_json_str(out, v, strlen(v));
		buf_addc(out, ']');
		free(k);
		free(v);
		k = v = NULL;
	}
	if (!first)
		buf_addc(out, ']');
	if (out->len == empty)
		buf_reset(out);   /* none of the properties SQL reads */
	else
		buf_addc(out, '}');
}

