/* mqttprops: the republish action's MQTT 5 `headers` (ACTIONS.md §2.16),
 * templates already resolved, as libmosquitto publish properties:
 *
 *   payloadFormatIndicator  "UNSPECIFIED_BYTES" → 0, "UTF8_DATA" → 1
 *   contentType             string
 *   responseTopic           a topic name (no '+' or '#')
 *   correlationData         base64, decoded to the bytes sent
 *   messageExpiry           seconds as a decimal string, 0..4294967295
 *   userProperties          1..100 {"key", "value"}, in order
 *
 * Each header string is at most 1024 characters.  A header that renders
 * empty (a template whose value is missing) is left out, as a header not
 * written; userProperties entries are kept as written. */
#ifndef IOTRULES_MQTTPROPS_H
#define IOTRULES_MQTTPROPS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include <mosquitto.h>

/* Builds *out from headers (NULL or not an object: *out = NULL, none).
 * 0, with *out the caller's to free with mosquitto_property_free_all (NULL
 * when there is nothing to send); or -1 with why a header is not valid in
 * why (nothing to free). */
int mqttprops_from_headers(const cJSON *headers, mosquitto_property **out, char *why, size_t cap);

#endif
