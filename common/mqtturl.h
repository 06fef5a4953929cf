/* mqtturl: parses a broker URL as the config and options give it:
 * mqtt://host[:port] (default 1883), mqtts://host[:port] (TLS, default
 * 8883); a bare host[:port] means mqtt://.  Used by common/mqttclient. */
#ifndef IOTRULES_MQTTURL_H
#define IOTRULES_MQTTURL_H

#include <stddef.h>

/* 0, or -1 if url is not one of those forms.  host gets the host name. */
int mqtturl_parse(const char *url, char *host, size_t cap, int *port, int *tls);

#endif
