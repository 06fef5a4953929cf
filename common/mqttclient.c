#include "common/mqttclient.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mqtturl.h"

/* The option, or else the environment variable. */
static const char *
opt_or_env(const char *opt, const char *var)
{
	if (opt)
		return opt;
	const char *v = getenv(var);
	return v && *v ? v : NULL;
}

/* Reads the first line of path into out (newline dropped).  0 or -1. */
static int
read_password(const char *path, char *out, size_t cap, char *err, size_t errcap)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errcap, "password file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(out, (int)cap, f) == NULL)
		out[0] = 0;
	fclose(f);
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

int
mqttclient_new(const mqttclient_opts *o, struct mosquitto **out, char *err, size_t errcap)
{
	char host[512];
	int port, tls, rc;
	*out = NULL;
	if (mqtturl_parse(o->url, host, sizeof(host), &port, &tls) < 0) {
		snprintf(err, errcap, "invalid broker URL '%s' (want mqtt://host:port or mqtts://host:port)", o->url);
		return MQTTCLIENT_EUSAGE;
	}
	const char *user = opt_or_env(o->username, "IOTRULES_MQTT_USERNAME");
	const char *pass = opt_or_env(o->password, "IOTRULES_MQTT_PASSWORD");
	const char *pfile = opt_or_env(o->password_file, "IOTRULES_MQTT_PASSWORD_FILE");
	const char *cafile = opt_or_env(o->cafile, "IOTRULES_MQTT_CAFILE");
	const char *certfile = opt_or_env(o->certfile, "IOTRULES_MQTT_CERTFILE");
	const char *keyfile = opt_or_env(o->keyfile, "IOTRULES_MQTT_KEYFILE");
	char pw[1024];
	if (pass == NULL && pfile) {
		if (read_password(pfile, pw, sizeof(pw), err, errcap) < 0)
			return MQTTCLIENT_EUSAGE;
		pass = pw;
	}
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(o->client_id, o->clean, NULL);
	if (m == NULL) {
		snprintf(err, errcap, "mosquitto_new failed");
		return MQTTCLIENT_ESYS;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, o->mqtt_version == 3 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
	mosquitto_reconnect_delay_set(m, 1, (unsigned)(o->reconnect_max_s > 1 ? o->reconnect_max_s : 1), true);
	if (user || pass)
		mosquitto_username_pw_set(m, user, pass);   /* copies them */
	if (pass == pw)
		explicit_bzero(pw, sizeof(pw));
	if (tls) {
		rc = mosquitto_tls_set(m, cafile, cafile ? NULL : "/etc/ssl/certs", certfile, keyfile, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			snprintf(err, errcap, "TLS setup: %s", mosquitto_strerror(rc));
			mosquitto_destroy(m);
			return MQTTCLIENT_EUSAGE;
		}
	}
	*out = m;
	return 0;
}

void
mqttclient_start(struct mosquitto *m, const mqttclient_opts *o)
{
	char host[512];
	int port, tls;
	if (mqtturl_parse(o->url, host, sizeof(host), &port, &tls) == 0) {
		int rc;
		if (o->mqtt_version != 3 && !o->clean && o->session_expiry_s > 0) {
			mosquitto_property *props = NULL;
			mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, o->session_expiry_s);
			rc = mosquitto_connect_bind_v5(m, host, port, o->keepalive, NULL, props);
			mosquitto_property_free_all(&props);
		} else {
			rc = mosquitto_connect_async(m, host, port, o->keepalive);
		}
		if (rc != MOSQ_ERR_SUCCESS)
			log_warn("connect to %s: %s; retrying", o->url, mosquitto_strerror(rc));
	}
	mosquitto_loop_start(m);
}

void
mqttclient_stop(struct mosquitto *m)
{
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
}
