/* mqttclient: the libmosquitto client setup that ingest and the republish
 * sink share — broker URL (common/mqtturl), protocol version, credentials,
 * TLS, background connect with automatic reconnects, network thread.
 * Each caller adds its own callbacks and options between mqttclient_new
 * and mqttclient_start.
 *
 * Strings in the options are borrowed; they must outlive the client. */
#ifndef IOTRULES_MQTTCLIENT_H
#define IOTRULES_MQTTCLIENT_H

#include <stddef.h>

struct mosquitto;

typedef struct mqttclient_opts {
	const char *url;          /* mqtt://host[:port] or mqtts://host[:port] */
	const char *client_id;    /* NULL: the broker assigns one (clean only) */
	int clean;                /* clean session (0: persistent session) */
	int mqtt_version;         /* 3 for MQTT 3.1.1, anything else 5 */
	int keepalive;            /* seconds */
	int reconnect_max_s;      /* reconnect backoff from 1 s up to this */
	const char *username, *password;
	const char *cafile, *certfile, *keyfile;   /* TLS (mqtts://); no cafile: /etc/ssl/certs */
} mqttclient_opts;

enum { MQTTCLIENT_EUSAGE = -1, MQTTCLIENT_ESYS = -2 };

/* Creates *out configured from o (calls mosquitto_lib_init).  0, or
 * MQTTCLIENT_EUSAGE (bad URL or TLS files) / MQTTCLIENT_ESYS with the
 * reason in err. */
int mqttclient_new(const mqttclient_opts *o, struct mosquitto **out, char *err, size_t errcap);

/* Starts connecting in the background (a failed first attempt is logged;
 * libmosquitto keeps retrying) and the network thread. */
void mqttclient_start(struct mosquitto *m, const mqttclient_opts *o);

/* Disconnects, stops the network thread, destroys m, and calls
 * mosquitto_lib_cleanup. */
void mqttclient_stop(struct mosquitto *m);

#endif
