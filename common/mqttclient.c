#include "common/mqttclient.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>

#include "common/log.h"
#include "common/mqtturl.h"

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
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(o->client_id, o->clean, NULL);
	if (m == NULL) {
		snprintf(err, errcap, "mosquitto_new failed");
		return MQTTCLIENT_ESYS;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, o->mqtt_version == 3 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
	mosquitto_reconnect_delay_set(m, 1, (unsigned)(o->reconnect_max_s > 1 ? o->reconnect_max_s : 1), true);
	if (o->username)
		mosquitto_username_pw_set(m, o->username, o->password);
	if (tls) {
		rc = mosquitto_tls_set(m, o->cafile, o->cafile ? NULL : "/etc/ssl/certs", o->certfile, o->keyfile, NULL);
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
		int rc = mosquitto_connect_async(m, host, port, o->keepalive);
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
