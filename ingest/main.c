/* iotrules-ingest: MQTT (or JSON lines on stdin) → spool → evaluate.
 *
 * The MQTT callback only appends the message to the spool; a forwarder
 * thread sends spooled batches to the messages/ hop and marks them done
 * when evaluate has taken responsibility.
 *
 * When is a QoS 1 message acknowledged to the broker?  libmosquitto
 * 2.0.11 (lib/handle_publish.c) queues the PUBACK before it calls
 * on_message, but with the threaded interface (mosquitto_loop_start, used
 * here) packet__queue only queues it: the same network thread writes it
 * to the socket after on_message has returned.  So a PUBACK leaves only
 * for a message already in the spool (the page cache: it survives a
 * kill -9), and a message that cannot be spooled (disk full) blocks the
 * callback: no PUBACK, nothing more read from the broker, which keeps the
 * rest in our session.  Stopping while blocked exits without returning
 * from the callback, so that PUBACK is never sent and the broker
 * redelivers.
 *
 * The session: a stable client id (iotrules-<instance name>), clean start
 * off, and under MQTT 5 a Session Expiry Interval (--session-expiry-s,
 * default a day): without one an MQTT 5 broker ends the session at every
 * disconnect and drops what it queued for us while we were down.
 *
 * Ready (the stats file, what the supervisor and `iotrules status` read)
 * means subscribed: set when the broker has acknowledged the last topic
 * filter of the first connection, so a message published after that is
 * ours; a broker that is down keeps ingest not ready. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "common/envelope.h"
#include "common/journal.h"
#include "common/hop.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/mqttclient.h"
#include "common/pubprops.h"
#include "common/proc.h"
#include "common/spool.h"
#include "common/subid.h"
#include "evaluate/lib/rules.h"

#define MAX_PAYLOAD (128 * 1024)   /* AWS's publish payload quota */

static struct {
	proc_conf pc;
	const char *broker, *rules_dir, *client_id, *share, *cafile, *certfile, *keyfile;
	const char *username, *password, *password_file;
	const char *journal;  /* --journal: read the broker plugin's journal */
	int use_stdin, mqtt_version, qos, batch, window, keepalive;
	int subids;   /* subscribe with identifiers (MQTT 5, distinct ids): sub_mu */
	subid_table sub_table;   /* the filters' identifiers: sub_mu */
	unsigned session_expiry_s;
	uint64_t spool_max;
	int fsync_ms;   /* the spool's; the journal's syncer uses it too */
	spool *sp;
	hop_sender *hop;
	struct mosquitto *mosq;
	pthread_mutex_t sub_mu;
	buf filters;          /* current subscriptions, one per line */
	atomic_int connected; /* set on the MQTT thread, read on main */
	atomic_int last_sub_mid; /* the SUBACK that makes ingest ready */
	uint64_t rejected;
} g;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-ingest --run-dir DIR --state-dir DIR [--name NAME]\n"
	    "                       (--broker URL --rules DIR | --journal DIR | --stdin)\n"
	    "                       [options]\n"
	    "\n"
	    "Subscribes to the union of the enabled rules' topic filters (or reads\n"
	    "JSON lines from stdin), spools each message, and forwards batches to\n"
	    "the evaluate stage over <run-dir>/messages/.\n"
	    "\n"
	    "  --broker URL        mqtt://host:port or mqtts://host:port\n"
	    "  --rules DIR         rules directory (topic filters); SIGHUP reloads it\n"
	    "  --journal DIR       read what the mosquitto plugin (iotrules-mosquitto.so)\n"
	    "                      journals in DIR instead of subscribing; each journal\n"
	    "                      file is deleted once its messages are in the spool\n"
	    "                      (synced).  With --rules, DIR/filters tells the plugin\n"
	    "                      the topics to journal (SIGHUP rewrites it)\n"
	    "  --stdin             read {\"topic\",\"payload\"|\"payload_b64\",\"clientid\",\"qos\",\n"
	    "                      \"properties\"} lines instead of MQTT (properties:\n"
	    "                      MQTT 5, see README); exits at end of input once\n"
	    "                      everything was forwarded\n"
	    "  --client-id ID      MQTT client id (default iotrules-<name>, and\n"
	    "                      iotrules-<host name>-<name> with the AMQP hop\n"
	    "                      transport, where ingest may run on several\n"
	    "                      machines): the persistent session is kept under it\n"
	    "  --share GROUP       subscribe as $share/GROUP/<filter>\n"
	    "  --mqtt-version 3|5  protocol (default 5)\n"
	    "  --qos 0|1           subscription QoS (default 1)\n"
	    "  --session-expiry-s S  MQTT 5 Session Expiry Interval (default 86400): how\n"
	    "                      long the broker keeps our session, and the QoS 1\n"
	    "                      messages for it, while ingest is down\n"
	    "  --cafile F --cert F --key F   TLS (mqtts://)\n"
	    "  --username U --password-file F\n"
	    "                      credentials (also IOTRULES_MQTT_USERNAME, _PASSWORD,\n"
	    "                      _PASSWORD_FILE, _CAFILE, _CERTFILE, _KEYFILE in the\n"
	    "                      environment); --password P works but shows it in ps\n"
	    "  --spool-max-bytes N bound of the spool (1 GiB); when full, ingest stops\n"
	    "                      reading from the broker until evaluate catches up\n"
	    "  --batch N --window N  records per hop request (256), requests in flight (4)\n");
}

/* ---- spooling --------------------------------------------------------- */

static void spool_stats(void);

static int
spool_message(const char *topic, const void *payload, size_t len, const char *clientid, int qos,
    const char *props, size_t props_len, const buf *filters)
{
	if (len > MAX_PAYLOAD) {
		char kv[600];
		char qt[512];
		snprintf(kv, sizeof(kv), "\"topic\":%s,\"bytes\":%zu", log_json_str(qt, sizeof(qt), topic), len);
		log_kv(LOG_ERROR, kv, "message on topic %s rejected: payload of %zu bytes exceeds the 128 KB limit AWS IoT enforces (PAYLOAD_LIMIT_EXCEEDED)", topic, len);
		g.rejected++;
		proc_count_failed(1);
		return -1;
	}
	envelope e = {0};
	e.kind = ENV_MESSAGE;
	e.qos = (uint8_t)qos;
	e.ts_ms = (uint64_t)proc_now_ms();
	uuid_generate_random(e.id);
	e.s[ENV_TOPIC] = env_str(topic);
	e.s[ENV_CLIENTID] = env_str(clientid);
	e.s[ENV_PAYLOAD] = (env_slice){payload ? payload : "", (uint32_t)len};
	e.s[ENV_PROPS] = (env_slice){props ? props : "", (uint32_t)props_len};
	if (filters && filters->len)
		e.s[ENV_FILTERS] = (env_slice){filters->data, (uint32_t)filters->len};
	/* One record buffer, reused: no allocation per message.  Only one
	 * thread ever spools (the MQTT loop thread, or the stdin reader). */
	static buf b = BUF_ZERO;
	buf_reset(&b);
	env_append(&b, &e);
	/* A message that cannot be spooled is held, never dropped: this
	 * thread waits (and reads nothing more from the broker) until the
	 * spool takes it.  The spool logs why (e.g. disk full) while it lasts. */
	/* Logged at most every 10 s: a disk at its limit flaps. */
	static int64_t said;
	int64_t since = 0;
	int rc, told = 0;
	while ((rc = spool_append(g.sp, b.data, b.len, 1)) != SPOOL_OK) {
		if (rc == SPOOL_ECLOSED || proc_stopping()) {
			log_error("stopping while a message on %s could not be spooled: exiting without "
			    "acknowledging it (the broker sends it again)", topic);
			_exit(111);
		}
		if (since == 0)
			since = proc_now_ms();
		if (!told && proc_now_ms() - said >= 10000) {
			said = proc_now_ms();
			told = 1;
			log_warn("cannot spool a message on %s (error %d); holding it, reading nothing more "
			    "from the broker until the spool takes it", topic, rc);
		}
		proc_sleep_ms(100);
	}
	if (told)
		log_info("the held message on %s is spooled after %.1f s; reading from the broker again",
		    topic, (double)(proc_now_ms() - since) / 1000.0);
	proc_count_in(1);
	/* The forwarder updates the spool's figures too, but it waits while
	 * evaluate is away, which is when they grow. */
	static int64_t stats_ms;
	if (proc_now_ms() - stats_ms >= 250) {
		stats_ms = proc_now_ms();
		spool_stats();
	}
	return 0;
}

/* ---- forwarding -------------------------------------------------------- */

/* A batch handed to evaluate and not yet accepted.  The batches out are
 * listed (oldest first) for the spool's oldest age in the stats: the
 * spool hands records out in order, so the oldest record not yet
 * acknowledged is the first of the oldest batch out. */
typedef struct fwd_ticket {
	uint64_t ticket;
	uint32_t count;
	int64_t first_ms;   /* receive time of its first message */
	struct fwd_ticket *prev, *next;
} fwd_ticket;

static pthread_mutex_t fwd_mu = PTHREAD_MUTEX_INITIALIZER;
static fwd_ticket *fwd_head, *fwd_tail;

static void
fwd_done(void *arg, int status)
{
	fwd_ticket *t = arg;
	if (status == HOP_OK) {
		spool_done(g.sp, t->ticket);
		proc_count_out(t->count);
	}
	pthread_mutex_lock(&fwd_mu);
	if (t->prev)
		t->prev->next = t->next;
	else
		fwd_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		fwd_tail = t->prev;
	pthread_mutex_unlock(&fwd_mu);
	free(t);
}

/* The spool's figures for the stats file. */
static void
spool_stats(void)
{
	int64_t oldest = 0;
	pthread_mutex_lock(&fwd_mu);
	for (fwd_ticket *t = fwd_head; t; t = t->next)
		if (t->first_ms && (oldest == 0 || t->first_ms < oldest))
			oldest = t->first_ms;
	pthread_mutex_unlock(&fwd_mu);
	uint64_t pending = spool_pending(g.sp);
	proc_set_pending(pending);
	proc_set_spool(pending, spool_pending_bytes(g.sp), pending && oldest ? proc_now_ms() - oldest : 0);
}

static void *
forwarder(void *arg)
{
	(void)arg;
	buf b = BUF_ZERO;
	for (;;) {
		buf_reset(&b);
		env_batch_begin(&b);
		uint64_t ticket;
		int n = spool_next(g.sp, &b, g.batch, 1 << 20, 100, &ticket);
		if (n == SPOOL_ECLOSED)
			break;
		spool_stats();
		if (n <= 0)
			continue;
		env_batch_end(&b, 0);
		fwd_ticket *t = calloc(1, sizeof(*t));
		if (t == NULL)
			log_die(111, "out of memory");
		t->ticket = ticket;
		t->count = (uint32_t)n;
		env_iter it;
		envelope first;
		if (env_batch_open(&it, b.data, b.len) > 0 && env_batch_next_env(&it, ENV_MESSAGE, &first))
			t->first_ms = (int64_t)first.ts_ms;
		pthread_mutex_lock(&fwd_mu);
		t->prev = fwd_tail;
		if (fwd_tail)
			fwd_tail->next = t;
		else
			fwd_head = t;
		fwd_tail = t;
		pthread_mutex_unlock(&fwd_mu);
		if (hop_send(g.hop, b.data, b.len, fwd_done, t) < 0) {
			pthread_mutex_lock(&fwd_mu);
			if (t->prev)
				t->prev->next = NULL;
			else
				fwd_head = NULL;
			fwd_tail = t->prev;
			pthread_mutex_unlock(&fwd_mu);
			free(t);
			break;
		}
	}
	buf_free(&b);
	return NULL;
}

/* ---- MQTT -------------------------------------------------------------- */

static void
subscribe_all(struct mosquitto *m)
{
	pthread_mutex_lock(&g.sub_mu);
	char *save = NULL, *copy = strdup(g.filters.data ? g.filters.data : "");
	int last = 0;
	for (char *f = strtok_r(copy, "\n", &save); f; f = strtok_r(NULL, "\n", &save)) {
		char full[1100];
		if (g.share)
			snprintf(full, sizeof(full), "$share/%s/%s", g.share, f);
		else
			snprintf(full, sizeof(full), "%s", f);
		int mid = 0, rc;
		if (g.subids) {
			/* The filter's identifier comes back on each copy the
			 * broker sends through this subscription (see subid.h). */
			mosquitto_property *sp = NULL;
			rc = mosquitto_property_add_varint(&sp, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, subid_of(f));
			if (rc == MOSQ_ERR_SUCCESS)
				rc = mosquitto_subscribe_v5(m, &mid, full, g.qos, 0, sp);
			mosquitto_property_free_all(&sp);
		} else
			rc = mosquitto_subscribe(m, &mid, full, g.qos);
		if (rc != MOSQ_ERR_SUCCESS)
			log_error("subscribe %s: %s", full, mosquitto_strerror(rc));
		else {
			log_info("subscribed to %s (qos %d)", full, g.qos);
			last = mid;
		}
	}
	free(copy);
	/* Ready once the broker has acknowledged the subscriptions (SUBACKs
	 * come in order): a message published after that reaches us.  With
	 * no filter there is nothing to wait for. */
	atomic_store(&g.last_sub_mid, last);
	if (last == 0)
		proc_ready();
	pthread_mutex_unlock(&g.sub_mu);
}

static void
on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
	(void)obj; (void)props;
	if (rc != 0) {
		log_error("broker refused the connection: %s", mosquitto_reason_string(rc));
		return;
	}
	g.connected = 1;
	log_info("connected to %s (session %s)", g.broker, (flags & 1) ? "resumed" : "new");
	subscribe_all(m);
}

static void
on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted, const mosquitto_property *props)
{
	(void)m; (void)obj; (void)n; (void)granted; (void)props;
	if (mid == atomic_load(&g.last_sub_mid))
		proc_ready();
}

static void
on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
	(void)m; (void)obj; (void)props;
	g.connected = 0;
	if (rc != 0 && !proc_stopping())
		log_warn("disconnected from the broker (%s); reconnecting", mosquitto_strerror(rc));
}

static void
on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg, const mosquitto_property *props)
{
	(void)m; (void)obj; (void)props;
	/* The publisher's client id is not part of an MQTT PUBLISH as a
	 * subscriber sees it: clientid() is "n/a" (see docs). */
	buf pj = BUF_ZERO;
	pubprops_json(props, &pj);
	/* Which subscriptions this copy came through: their filters. */
	uint32_t ids[64];
	int nid = 0;
	uint32_t id;
	for (const mosquitto_property *p = mosquitto_property_read_varint(props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &id, false);
	     p != NULL && nid < 64; p = mosquitto_property_read_varint(p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &id, true))
		ids[nid++] = id;
	static buf filters = BUF_ZERO;   /* only the MQTT loop thread gets here */
	buf_reset(&filters);
	if (nid) {
		pthread_mutex_lock(&g.sub_mu);
		if (g.subids)
			subid_filters(&g.sub_table, ids, nid, &filters);
		pthread_mutex_unlock(&g.sub_mu);
	}
	spool_message(msg->topic, msg->payload, (size_t)msg->payloadlen, "", msg->qos, pj.data, pj.len, &filters);
	buf_free(&pj);
}

/* Is f one of the newline-terminated lines of set? */
static int
has_line(const char *set, const char *f)
{
	size_t n = strlen(f);
	for (const char *p = set; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && memcmp(p, f, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

static void
load_filters(void)
{
	char err[512];
	ruleset *rs = ruleset_load(g.rules_dir, err, sizeof(err));
	if (rs == NULL) {
		log_error("%s; keeping the current subscriptions", err);
		return;
	}
	buf nf = BUF_ZERO;
	ruleset_filters(rs, &nf);
	ruleset_free(rs);
	pthread_mutex_lock(&g.sub_mu);
	/* Unsubscribe filters that are gone. */
	char *save = NULL, *old = strdup(g.filters.data ? g.filters.data : "");
	for (char *f = strtok_r(old, "\n", &save); f && g.mosq && g.connected; f = strtok_r(NULL, "\n", &save)) {
		if (has_line(nf.data, f))
			continue;
		char full[1100];
		snprintf(full, sizeof(full), g.share ? "$share/%s/%s" : "%s%s", g.share ? g.share : "", f);
		mosquitto_unsubscribe(g.mosq, NULL, full);
		log_info("unsubscribed from %s", full);
	}
	free(old);
	buf_free(&g.filters);
	g.filters = nf;
	subid_table_free(&g.sub_table);
	g.subids = g.mqtt_version == 5 && subid_table_build(&g.sub_table, g.filters.data) == 0;
	if (g.mqtt_version == 5 && !g.subids)
		log_warn("two topic filters have the same subscription identifier: overlapping filters may "
		    "fire a rule twice for one message");
	pthread_mutex_unlock(&g.sub_mu);
	if (g.filters.len == 0)
		log_warn("no enabled rule has a topic filter: nothing to subscribe to");
}

static int
run_mqtt(void)
{
	char cid[300], err[600];
	char host[256] = "";
	if (g.client_id) {
		snprintf(cid, sizeof(cid), "%s", g.client_id);
	} else if (strcmp(hop_transport(), "amqp") == 0 && gethostname(host, sizeof(host) - 1) == 0 && host[0]) {
		/* Across machines every one names its first ingest ingest-1:
		 * the host name keeps their sessions apart. */
		snprintf(cid, sizeof(cid), "iotrules-%s-%s", host, g.pc.name);
	} else {
		snprintf(cid, sizeof(cid), "iotrules-%s", g.pc.name);
	}
	/* clean_session false: a persistent session under a stable client id,
	 * so QoS 1 messages published while we restart wait in the broker. */
	mqttclient_opts mo = {.url = g.broker, .client_id = cid, .clean = 0,
	    .mqtt_version = g.mqtt_version, .keepalive = g.keepalive, .reconnect_max_s = 10,
	    .username = g.username, .password = g.password, .password_file = g.password_file,
	    .cafile = g.cafile, .certfile = g.certfile, .keyfile = g.keyfile,
	    .session_expiry_s = g.session_expiry_s};
	if (g.password)
		log_warn("--password is visible to every local user in the process list; "
		    "use --password-file or IOTRULES_MQTT_PASSWORD instead");
	int rc = mqttclient_new(&mo, &g.mosq, err, sizeof(err));
	if (rc < 0)
		log_die(rc == MQTTCLIENT_EUSAGE ? 100 : 111, "%s", err);
	load_filters();
	mosquitto_int_option(g.mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
	mosquitto_connect_v5_callback_set(g.mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(g.mosq, on_disconnect);
	mosquitto_subscribe_v5_callback_set(g.mosq, on_subscribe);
	mosquitto_message_v5_callback_set(g.mosq, on_message);
	mqttclient_start(g.mosq, &mo);
	while (!proc_stopping()) {
		proc_sleep_ms(200);
		if (proc_take_reload()) {
			log_info("reloading topic filters from %s", g.rules_dir);
			load_filters();
			if (g.connected)
				subscribe_all(g.mosq);
		}
	}
	/* Stop taking messages first; what is spooled is forwarded below or
	 * at the next start. */
	mqttclient_stop(g.mosq);
	return 0;
}

/* ---- stdin ------------------------------------------------------------- */

static int
run_stdin(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int bad = 0;
	proc_ready();
	while (!proc_stopping() && (n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (n == 0 || line[0] == '\n')
			continue;
		cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
		cJSON *topic = cJSON_GetObjectItemCaseSensitive(j, "topic");
		if (j == NULL || !cJSON_IsString(topic)) {
			log_error("stdin line %ld: expected a JSON object with a string \"topic\"; line skipped", lineno);
			cJSON_Delete(j);
			bad++;
			continue;
		}
		cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
		cJSON *pb = cJSON_GetObjectItemCaseSensitive(j, "payload_b64");
		cJSON *cid = cJSON_GetObjectItemCaseSensitive(j, "clientid");
		cJSON *qos = cJSON_GetObjectItemCaseSensitive(j, "qos");
		char *text = NULL;
		unsigned char *bin = NULL;
		size_t len = 0;
		if (cJSON_IsString(pb)) {
			size_t bl = strlen(pb->valuestring);
			bin = malloc(bl / 4 * 3 + 3);
			int dl = bl % 4 == 0 ? EVP_DecodeBlock(bin, (unsigned char *)pb->valuestring, (int)bl) : -1;
			if (dl < 0) {
				log_error("stdin line %ld: payload_b64 is not valid base64; line skipped", lineno);
				free(bin);
				cJSON_Delete(j);
				bad++;
				continue;
			}
			if (bl >= 1 && pb->valuestring[bl - 1] == '=')
				dl--;
			if (bl >= 2 && pb->valuestring[bl - 2] == '=')
				dl--;
			len = (size_t)dl;
		} else if (p) {
			text = cJSON_PrintUnformatted(p);
			len = strlen(text);
		}
		/* "properties": MQTT 5 publish properties, in the envelope's
		 * JSON shape (envelope.h, ENV_PROPS). */
		cJSON *props = cJSON_GetObjectItemCaseSensitive(j, "properties");
		char *ptext = cJSON_IsObject(props) ? cJSON_PrintUnformatted(props) : NULL;
		spool_message(topic->valuestring, bin ? (void *)bin : text, len,
		    cJSON_IsString(cid) ? cid->valuestring : "", cJSON_IsNumber(qos) ? qos->valueint : 0,
		    ptext, ptext ? strlen(ptext) : 0, NULL);
		free(ptext);
		free(text);
		free(bin);
		cJSON_Delete(j);
	}
	free(line);
	/* End of input: wait until everything spooled was forwarded. */
	while (spool_pending(g.sp) > 0 && !proc_stopping())
		usleep(10000);
	if (bad)
		log_warn("%d input line(s) were skipped", bad);
	return 0;
}

/* ---- journal (the broker plugin) -------------------------------------- */

/* Moves the records of in (u32 length + envelope record each) that ingest
 * accepts to out: a message over the payload limit is refused here as it
 * is for a subscribed one (the plugin keeps the broker's path short). */
static int
journal_accept(const buf *in, buf *out)
{
	int n = 0;
	for (size_t at = 0; at + 4 <= in->len;) {
		const unsigned char *p = (const unsigned char *)in->data + at;
		uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		envelope e;
		if (env_decode((const char *)p + 4, len, &e) < 0 || e.kind != ENV_MESSAGE) {
			log_error("journal %s: a record that is not a message was skipped", g.journal);
			proc_count_failed(1);
		} else if (e.s[ENV_PAYLOAD].n > MAX_PAYLOAD) {
			log_error("message on topic %.*s from %.*s rejected: payload of %u bytes exceeds the "
			    "128 KB limit AWS IoT enforces (PAYLOAD_LIMIT_EXCEEDED)", (int)e.s[ENV_TOPIC].n,
			    e.s[ENV_TOPIC].p, (int)e.s[ENV_CLIENTID].n, e.s[ENV_CLIENTID].p, e.s[ENV_PAYLOAD].n);
			g.rejected++;
			proc_count_failed(1);
		} else {
			/* The plugin leaves the id (record bytes 16-31) to us:
			 * it is the message's trace id from here on. */
			size_t at_id = out->len + 4 + 16;
			buf_add(out, p, 4 + (size_t)len);
			static const uint8_t zero[16];
			if (memcmp(e.id, zero, 16) == 0)
				uuid_generate_random((unsigned char *)out->data + at_id);
			n++;
		}
		at += 4 + (size_t)len;
	}
	return n;
}

/* With --rules: writes the union of the enabled rules' topic filters to
 * <journal>/filters (a new file renamed over the old, so the plugin never
 * reads half of it), from which the plugin journals only the topics a rule
 * reads.  0640: the broker's user reads it (see README, plugin mode). */
static void
journal_filters(void)
{
	char err[512], path[4200], tmp[4200];
	ruleset *rs = ruleset_load(g.rules_dir, err, sizeof(err));
	if (rs == NULL) {
		log_error("%s; the broker plugin keeps the topic filters it has", err);
		return;
	}
	buf nf = BUF_ZERO;
	ruleset_filters(rs, &nf);
	ruleset_free(rs);
	snprintf(path, sizeof(path), "%s/filters", g.journal);
	snprintf(tmp, sizeof(tmp), "%s/filters.tmp", g.journal);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	int ok = fd >= 0 && fchmod(fd, 0640) == 0 && write(fd, nf.data ? nf.data : "", nf.len) == (ssize_t)nf.len;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	int lines = 0;
	for (size_t i = 0; i < nf.len; i++)
		lines += nf.data[i] == '\n';
	if (ok && rename(tmp, path) == 0)
		log_info("journal %s: the broker plugin now journals the topics of %d filter(s)", g.journal, lines);
	else
		log_error("cannot write %s: %s; the broker plugin keeps the topic filters it has", path, strerror(errno));
	buf_free(&nf);
}

/* The journal's syncer: the plugin never waits for the disk inside the
 * broker, so what it journals is synced from here, every fsync_ms (the
 * spool's interval), on a thread of its own so that reading is not held
 * up either.  One error line per failing streak. */
static void *
journal_syncer(void *arg)
{
	(void)arg;
	int failing = 0;
	while (!proc_stopping()) {
		proc_sleep_ms(g.fsync_ms > 0 ? g.fsync_ms : 1000);
		if (journal_sync_dir(g.journal) != JOURNAL_OK) {
			if (!failing)
				log_error("journal %s: cannot sync: %s; what it holds is in the page cache only "
				    "(it survives the broker, not the machine)", g.journal, strerror(errno));
			failing = 1;
		} else if (failing) {
			log_info("journal %s: synced again", g.journal);
			failing = 0;
		}
	}
	return NULL;
}

/* Journal → spool.  When may a journal file be deleted?  Only once every
 * record of it is in the spool and the spool is on disk: journal_consumed
 * moves the cursor after each batch, and when a file is sealed and read to
 * its end it calls journal_durable (a spool_sync) before unlinking it
 * (journal_reader_set_durable).
 * So the spool keeps its own fsync_ms, and ingest syncs once per journal
 * file (4 MiB) rather than once per batch.  A kill -9 of ingest between
 * the append and journal_consumed reads the same records again at the
 * next start (duplicates); a kill -9 of the broker leaves every
 * acknowledged record in the journal (written before the PUBACK), and at
 * most a torn unacknowledged one at a segment's end, which is passed
 * over. */
static int
journal_durable(void *arg)
{
	(void)arg;
	return spool_sync(g.sp);
}

static int
run_journal(void)
{
	char err[512];
	journal_reader *jr = journal_reader_open(g.journal, err, sizeof(err));
	if (jr == NULL)
		log_die(111, "journal: %s", err);
	journal_reader_set_durable(jr, journal_durable, NULL);
	pthread_t syncer;
	if (pthread_create(&syncer, NULL, journal_syncer, NULL) != 0)
		log_die(111, "journal %s: cannot start its syncer thread", g.journal);
	if (g.rules_dir)
		journal_filters();
	/* Woken by the plugin's writes rather than polling the directory. */
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0 || inotify_add_watch(ifd, g.journal, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
		log_die(111, "journal %s: inotify: %s", g.journal, strerror(errno));
	proc_ready();
	buf in = BUF_ZERO, out = BUF_ZERO;
	uint64_t torn = 0;
	int64_t said = 0;
	while (!proc_stopping()) {
		if (proc_take_reload() && g.rules_dir) {
			log_info("reloading topic filters from %s", g.rules_dir);
			journal_filters();
		}
		buf_reset(&in);
		int n = journal_read(jr, &in, g.batch, 1 << 20);
		if (journal_reader_torn(jr) != torn) {
			log_warn("journal %s: %llu bytes of a record cut short by a broker crash passed over "
			    "(never acknowledged to its publisher)", g.journal,
			    (unsigned long long)(journal_reader_torn(jr) - torn));
			torn = journal_reader_torn(jr);
		}
		if (n < 0) {
			log_error("journal %s: cannot read: %s; trying again", g.journal, strerror(errno));
			proc_sleep_ms(1000);
			continue;
		}
		if (n == 0) {
			struct pollfd pf = {ifd, POLLIN, 0};
			if (poll(&pf, 1, 100) > 0) {
				char ev[4096];
				while (read(ifd, ev, sizeof(ev)) > 0) {
				}
			}
			continue;
		}
		buf_reset(&out);
		int k = journal_accept(&in, &out);
		int rc = SPOOL_OK;
		while (k > 0 && (rc = spool_append(g.sp, out.data, out.len, (uint32_t)k)) != SPOOL_OK) {
			if (rc == SPOOL_ECLOSED || proc_stopping())
				break;
			if (proc_now_ms() - said >= 10000) {
				said = proc_now_ms();
				log_warn("cannot spool %d journaled message(s) (error %d); they stay in the "
				    "journal until the spool takes them", k, rc);
			}
			proc_sleep_ms(100);
		}
		if (rc != SPOOL_OK)
			break;   /* stopping: the journal still holds them */
		if (journal_consumed(jr) < 0)
			log_error("journal %s: a file read to its end is kept for now (spool sync or unlink "
			    "failed: %s); it is tried again after the next batch", g.journal, strerror(errno));
		proc_count_in(k);
		spool_stats();
	}
	close(ifd);
	pthread_join(syncer, NULL);
	buf_free(&in);
	buf_free(&out);
	journal_reader_close(jr);
	return 0;
}

int
main(int argc, char **argv)
{
	proc_init("ingest");
	pthread_mutex_init(&g.sub_mu, NULL);
	g.mqtt_version = 5;
	g.qos = 1;
	g.batch = 256;
	g.window = 4;
	g.keepalive = 30;
	g.session_expiry_s = 86400;
	g.pc.name = "ingest-1";
	opt_init("iotrules-ingest", &argc, &argv);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (proc_opt(&g.pc, argc, argv, &i))
			continue;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(o, "--stdin") == 0) {
			g.use_stdin = 1;
			continue;
		}
		if (strncmp(o, "--", 2) != 0)
			opt_usage_error("unexpected argument '%s'", o);
		const char *v = opt_value(argc, argv, &i);
		if (strcmp(o, "--broker") == 0) g.broker = v;
		else if (strcmp(o, "--rules") == 0) g.rules_dir = v;
		else if (strcmp(o, "--journal") == 0) g.journal = v;
		else if (strcmp(o, "--client-id") == 0) g.client_id = v;
		else if (strcmp(o, "--share") == 0) g.share = v;
		else if (strcmp(o, "--cafile") == 0) g.cafile = v;
		else if (strcmp(o, "--cert") == 0) g.certfile = v;
		else if (strcmp(o, "--key") == 0) g.keyfile = v;
		else if (strcmp(o, "--username") == 0) g.username = v;
		else if (strcmp(o, "--password") == 0) g.password = v;
		else if (strcmp(o, "--password-file") == 0) g.password_file = v;
		else if (strcmp(o, "--session-expiry-s") == 0) g.session_expiry_s = (unsigned)opt_int(o, v, 0, 4294967295LL);
		else if (strcmp(o, "--spool-max-bytes") == 0) g.spool_max = (uint64_t)opt_int(o, v, 1, 1LL << 53);
		else if (strcmp(o, "--mqtt-version") == 0) g.mqtt_version = opt_mqtt_version(o, v);
		else if (strcmp(o, "--qos") == 0) g.qos = (int)opt_int(o, v, 0, 1);
		else if (strcmp(o, "--batch") == 0) g.batch = (int)opt_int(o, v, 1, 1 << 20);
		else if (strcmp(o, "--window") == 0) g.window = (int)opt_int(o, v, 1, 1 << 20);
		else opt_usage_error("unknown option %s", o);
	}
	if (!g.pc.run_dir || !g.pc.state_dir)
		opt_usage_error("--run-dir and --state-dir are required");
	if (g.use_stdin && g.journal)
		opt_usage_error("--stdin and --journal exclude each other");
	if (!g.use_stdin && !g.journal && (!g.broker || !g.rules_dir))
		opt_usage_error("--broker and --rules are required unless --stdin or --journal");

	char path[4096], err[512];
	if (proc_check_ipc_paths(g.pc.run_dir, g.pc.name, err, sizeof(err)) < 0)
		log_die(100, "%s", err);
	snprintf(path, sizeof(path), "%s/ingest/%s", g.pc.state_dir, g.pc.name);
	if (proc_mkdirs(path) < 0)
		log_die(111, "cannot create %s: %s", path, strerror(errno));
	spool_opts so = SPOOL_OPTS_DEFAULT;
	if (g.spool_max)
		so.max_bytes = g.spool_max;
	g.fsync_ms = so.fsync_ms;
	g.sp = spool_open(path, &so, err, sizeof(err));
	if (g.sp == NULL)
		log_die(111, "spool: %s", err);
	g.hop = hop_sender_open(g.pc.run_dir, "messages", g.pc.name, g.window, err, sizeof(err));
	if (g.hop == NULL)
		log_die(111, "hop: %s", err);
	proc_stats_start(&g.pc, "ingest");
	proc_stop_watchdog(4500);
	pthread_t fw;
	pthread_create(&fw, NULL, forwarder, NULL);

	int rc = g.use_stdin ? run_stdin() : g.journal ? run_journal() : run_mqtt();

	/* Give in-flight batches a moment to be accepted (SIGTERM must end
	 * within 5 s); the rest stays spooled for the next start.  The hop is
	 * shut down before the join: the forwarder may be waiting for a window
	 * slot that an evaluate that is gone will never free. */
	for (int t = 0; t < 1500 && spool_pending(g.sp) > 0; t += 10)
		usleep(10000);
	spool_shutdown(g.sp);
	hop_sender_shutdown(g.hop);
	pthread_join(fw, NULL);
	hop_drain(g.hop, 200);
	hop_sender_close(g.hop);
	spool_stats();
	spool_close(g.sp);
	proc_stats_stop();
	buf_free(&g.filters);
	subid_table_free(&g.sub_table);
	log_info("stopped");
	return rc;
}
