/* mqttclient: the libmosquitto client setup that ingest and the republish
 * sink share — broker URL (common/mqtturl), protocol version, credentials,
 * TLS, background connect with automatic reconnects, network thread.
 * Each caller adds its own callbacks and options between mqttclient_new
 * and mqttclient_start.
 *
 * Credentials and TLS files not given in the options are taken from the
 * environment, so that no secret has to be on a command line (which `ps`
 * shows to every local user): IOTRULES_MQTT_USERNAME, IOTRULES_MQTT_PASSWORD,
 * IOTRULES_MQTT_PASSWORD_FILE (its first line is the password),
 * IOTRULES_MQTT_CAFILE, IOTRULES_MQTT_CERTFILE, IOTRULES_MQTT_KEYFILE.
 * The supervisor passes its config's broker credentials that way.
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
	const char *password_file;  /* first line is the password (instead of password) */
	/* MQTT 5 persistent session (clean 0): the Session Expiry Interval
	 * sent in CONNECT, seconds.  Without one an MQTT 5 broker ends the
	 * session at every disconnect and drops what was queued for it. */
	unsigned session_expiry_s;
} mqttclient_opts;

enum { MQTTCLIENT_EUSAGE = -1, MQTTCLIENT_ESYS = -2 };

/* Creates *out configured from o (calls mosquitto_lib_init).  0, or
 * MQTTCLIENT_EUSAGE (bad URL or TLS files) / MQTTCLIENT_ESYS with the
 * reason in err. */
int mqttclient_new(const mqttclient_opts *o, struct mosquitto **out, char *err, size_t errcap);

/* Connects and starts the network thread, which reconnects with backoff
 * (a failed first attempt is logged; libmosquitto keeps retrying).  An
 * MQTT 5 persistent session connects with its CONNECT properties
 * (session expiry), which libmosquitto 2.0 keeps for every reconnect only
 * when given to its blocking connect: that first attempt then blocks
 * until the TCP (and TLS) connect succeeds or fails. */
void mqttclient_start(struct mosquitto *m, const mqttclient_opts *o);

/* Disconnects, stops the network thread, destroys m, and calls
 * mosquitto_lib_cleanup. */
void mqttclient_stop(struct mosquitto *m);

#endif
