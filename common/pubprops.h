/* pubprops: the MQTT 5 publish properties that the SQL functions read,
 * rendered as the JSON of envelope.h (ENV_PROPS).
 *
 * Used by ingest (properties from libmosquitto) and by the broker plugin
 * (properties from mosquitto itself, which exports the same
 * mosquitto_property_read_* functions): one rendering for both sources,
 * so a rule sees the same JSON however the message came in. */
#ifndef IOTRULES_PUBPROPS_H
#define IOTRULES_PUBPROPS_H

#include <mosquitto.h>

#include "common/buf.h"

/* Appends to out {"content_type","format_indicator","response_topic",
 * "correlation_data" (base64),"user_properties":[[k,v],...]} with the
 * properties present, or nothing at all when none of them is (props NULL
 * included).  Aborts on out of memory, like buf. */
void pubprops_json(const mosquitto_property *props, buf *out);

#endif
