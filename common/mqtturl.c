#include "common/mqtturl.h"

#include <stdlib.h>
#include <string.h>

int
mqtturl_parse(const char *url, char *host, size_t cap, int *port, int *tls)
{
	const char *p = url;
	*tls = 0;
	*port = 1883;
	if (strncmp(p, "mqtts://", 8) == 0) {
		*tls = 1;
		*port = 8883;
		p += 8;
	} else if (strncmp(p, "mqtt://", 7) == 0) {
		p += 7;
	} else if (strstr(p, "://")) {
		return -1;
	}
	const char *colon = strrchr(p, ':');
	size_t hl = colon ? (size_t)(colon - p) : strlen(p);
	if (hl == 0 || hl >= cap)
		return -1;
	memcpy(host, p, hl);
	host[hl] = 0;
	if (colon)
		*port = atoi(colon + 1);
	return *port > 0 && *port < 65536 ? 0 : -1;
}
