/* iotrules-mosquitto: a mosquitto 2.0 plugin (API version 5) that hands
 * every PUBLISH to ingest through a journal (common/journal.h) before the
 * broker acknowledges it.
 *
 *   plugin /usr/local/lib/iotrules-mosquitto.so
 *   plugin_opt_journal /var/lib/iotrules/journal     (required)
 *   plugin_opt_journal_max_bytes 1073741824          (bound, default 1 GiB)
 *   plugin_opt_journal_sync ingest   (default; or "publish", see
 *                                     "Durability" below)
 *
 * Why in the broker: mosquitto 2.0.11 (src/handle_publish.c) runs the
 * MOSQ_EVT_MESSAGE callbacks before it stores the message and before
 * send__puback, and it knows who published: client id, username and
 * address, which a subscriber never sees.  So the record is in the
 * journal before the publisher gets its PUBACK, and a rule's clientid(),
 * principal() and sourceip() have values.
 *
 * A record that cannot be written (disk full, I/O error, the bound
 * reached): the callback returns MOSQ_ERR_UNKNOWN, on which the broker
 * drops the message and
 * disconnects the publisher without a PUBACK; a QoS 1 publisher sends it
 * again when it reconnects.  Not MOSQ_ERR_ACL_DENIED: with that code the
 * broker still sends a PUBACK to an MQTT 3.1.1 client (the message would
 * be lost).  Other clients are served as before.
 *
 * Durability, as for every spool of the pipeline (DESIGN: the page cache
 * always, the disk within fsync_ms): the record is written (pwritev)
 * before the callback returns, so it survives a broker killed at any
 * point; ingest syncs the journal files (fdatasync) every fsync_ms from a
 * thread of its own, so the broker's thread never waits for the disk (an
 * fdatasync on it, even once a second, held PUBACKs for ~100 ms on this
 * machine's disk).  With ingest stopped the kernel's writeback takes them
 * to disk (30 s by default).  journal_sync publish syncs each QoS 1 or 2
 * record before its PUBACK instead: then nothing acknowledged is lost
 * with the machine either, but the broker's only thread waits for the
 * disk once per message (about 1 ms on the disk measured: ~1,000 QoS 1
 * messages/s in all, against ~10,000 without the plugin), which cannot be
 * batched inside a callback without a thread (the callback has to return
 * before the PUBACK is sent).
 *
 * No thread is started and nothing blocks but the write and the sync:
 * the plugin links only common/journal, envelope, buf, pubprops,
 * evaluate/lib/topic, zlib,
 * and libcrypto (base64), never NNG.
 *
 * Which topics: every PUBLISH, until ingest (started with --rules) has
 * written <journal>/filters, the union of the enabled rules' FROM filters
 * one a line; from then on only topics one of them matches (AWS matching,
 * evaluate/lib/topic.h).  The plugin looks at the file's mtime, size and
 * inode at most once a second and reads it again when they change, so a
 * rule reload (SIGHUP to ingest) reaches the broker within about a second,
 * like a new subscription in subscriber mode.  Why a file and not the
 * rules directory: loading rules takes the SQL engine and the action
 * checks (libcurl, librdkafka), which do not belong inside the broker.  A
 * file that cannot be read leaves the filters as they were.
 *
 * Will messages never reach MOSQ_EVT_MESSAGE (the broker publishes them
 * itself): rules on them need the subscriber ingest. */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/envelope.h"
#include "common/journal.h"
#include "common/pubprops.h"
#include "evaluate/lib/topic.h"

static struct {
	mosquitto_plugin_id_t *id;
	journal_writer *j;
	char *dir;
	uint64_t max;
	int sync;              /* journal_sync publish: each QoS > 0 record */
	buf rec, props;
	char *filters_path;    /* <journal>/filters */
	topic_index *filters;  /* NULL: every topic */
	struct stat filters_st; /* of the file read (st_ino 0: none) */
	int64_t filters_checked_s;
	int refusing;          /* the last append failed (logged once) */
	uint64_t refused;      /* since refusing started */
} g;

int
mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == 5)
			return 5;
	return -1;
}

static const char *
orempty(const char *s)
{
	return s ? s : "";
}

/* Reads the filters file again if it changed (at most once a second). */
static void
filters_refresh(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((int64_t)now.tv_sec == g.filters_checked_s)
		return;
	g.filters_checked_s = (int64_t)now.tv_sec;
	struct stat st;
	if (stat(g.filters_path, &st) < 0) {
		if (errno == ENOENT && g.filters_st.st_ino != 0) {
			/* Removed: back to every topic. */
			topic_index_free(g.filters);
			g.filters = NULL;
			memset(&g.filters_st, 0, sizeof(g.filters_st));
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "iotrules: %s removed: journaling every topic",
			    g.filters_path);
		}
		return;
	}
	if (st.st_ino == g.filters_st.st_ino && st.st_size == g.filters_st.st_size &&
	    st.st_mtim.tv_sec == g.filters_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == g.filters_st.st_mtim.tv_nsec)
		return;
	buf text = BUF_ZERO;
	topic_index *ix = topic_index_new();
	int n = 0, bad = ix == NULL || buf_read_file(&text, g.filters_path, 16u << 20) < 0;
	for (char *line = text.data, *nl; !bad && line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (*line == 0)
			continue;
		bad = topic_index_add(ix, line, n) < 0;
		n++;
	}
	if (bad) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: cannot read %s (%s): keeping the topic filters "
		    "as they were", g.filters_path, strerror(errno));
		topic_index_free(ix);
	} else {
		topic_index_free(g.filters);
		g.filters = ix;
		g.filters_st = st;
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "iotrules: journaling the topics of %d rule filter(s) "
		    "(%s)", n, g.filters_path);
	}
	buf_free(&text);
}

static void
found(int id, void *arg)
{
	(void)id;
	*(int *)arg = 1;
}

static int
on_message(int event, void *event_data, void *userdata)
{
	(void)event; (void)userdata;
	struct mosquitto_evt_message *ed = event_data;
	filters_refresh();
	if (g.filters) {
		int any = 0;
		topic_index_match(g.filters, ed->topic, found, &any);
		if (!any)
			return MOSQ_ERR_SUCCESS;   /* no rule reads it */
	}
	envelope e = {0};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	e.kind = ENV_MESSAGE;
	e.qos = ed->qos;
	e.ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	/* e.id stays zero: ingest gives the message its id when it reads
	 * the record.  libuuid's uuid_generate_random makes eight system
	 * calls (getrandom, getpid, getuid, ...), a third of what the broker
	 * spends on a message here. */
	buf_reset(&g.props);
	pubprops_json(ed->properties, &g.props);
	e.s[ENV_TOPIC] = env_str(ed->topic);
	e.s[ENV_CLIENTID] = env_str(orempty(mosquitto_client_id(ed->client)));
	e.s[ENV_PAYLOAD] = (env_slice){ed->payload ? ed->payload : "", ed->payloadlen};
	e.s[ENV_PROPS] = (env_slice){g.props.data ? g.props.data : "", (uint32_t)g.props.len};
	e.s[ENV_USERNAME] = env_str(orempty(mosquitto_client_username(ed->client)));
	e.s[ENV_SOURCEIP] = env_str(orempty(mosquitto_client_address(ed->client)));
	buf_reset(&g.rec);
	env_append(&g.rec, &e);
	/* env_append frames the record (u32 length first); the journal
	 * frames it itself.  With journal_sync publish a QoS 1 or 2 record
	 * is synced before the PUBACK; QoS 0 never on its own: nothing is
	 * acknowledged for it, and MQTT lets it be lost. */
	int rc = journal_append(g.j, g.rec.data + 4, g.rec.len - 4, g.sync && ed->qos > 0);
	if (rc == JOURNAL_OK) {
		if (g.refusing)
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "iotrules: journal %s is written again; %llu "
			    "publish(es) were refused meanwhile (their publishers were disconnected "
			    "without an acknowledgement)", g.dir, (unsigned long long)g.refused);
		g.refusing = 0;
		g.refused = 0;
		return MOSQ_ERR_SUCCESS;
	}
	int why = errno;
	g.refused++;
	if (!g.refusing) {
		g.refusing = 1;
		if (rc == JOURNAL_EFULL)
			mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: journal %s reached its bound of %llu "
			    "bytes (plugin_opt_journal_max_bytes): refusing publishes, which are not "
			    "acknowledged, until iotrules-ingest has taken what is there", g.dir,
			    (unsigned long long)g.max);
		else
			mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: cannot write journal %s (%s): refusing "
			    "publishes, which are not acknowledged, until it can", g.dir, strerror(why));
	}
	return MOSQ_ERR_UNKNOWN;
}

int
mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts,
    int nopts)
{
	(void)userdata;
	const char *dir = NULL;
	g.max = 1ull << 30;
	g.sync = 0;
	for (int i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "journal") == 0)
			dir = opts[i].value;
		else if (strcmp(opts[i].key, "journal_max_bytes") == 0) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(opts[i].value, &end, 10);
			if (errno || *end || end == opts[i].value || v == 0) {
				mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: plugin_opt_journal_max_bytes %s: "
				    "expected a number of bytes > 0", opts[i].value);
				return MOSQ_ERR_INVAL;
			}
			g.max = v;
		} else if (strcmp(opts[i].key, "journal_sync") == 0) {
			if (strcmp(opts[i].value, "ingest") != 0 && strcmp(opts[i].value, "publish") != 0) {
				mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: plugin_opt_journal_sync %s: expected "
				    "ingest (ingest syncs the journal every fsync_ms, the default) or publish (each "
				    "QoS 1 or 2 message before its PUBACK)", opts[i].value);
				return MOSQ_ERR_INVAL;
			}
			g.sync = strcmp(opts[i].value, "publish") == 0;
		} else {
			mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: unknown option plugin_opt_%s (known: "
			    "journal, journal_max_bytes, journal_sync)", opts[i].key);
			return MOSQ_ERR_INVAL;
		}
	}
	if (dir == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: plugin_opt_journal <directory> is required");
		return MOSQ_ERR_INVAL;
	}
	char err[512];
	g.j = journal_writer_open(dir, g.max, 0, err, sizeof(err));
	if (g.j == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: %s (the broker's user must be able to write "
		    "there: mosquitto drops privileges before it loads plugins)", err);
		return MOSQ_ERR_UNKNOWN;
	}
	g.dir = strdup(dir);
	size_t fl = strlen(dir) + sizeof("/filters");
	g.filters_path = malloc(fl);
	if (g.filters_path)
		snprintf(g.filters_path, fl, "%s/filters", dir);
	g.id = identifier;
	int rc = mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS || g.dir == NULL || g.filters_path == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "iotrules: cannot register the message callback: %s",
		    rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "out of memory");
		journal_writer_close(g.j);
		free(g.dir);
		free(g.filters_path);
		g.j = NULL;
		g.dir = g.filters_path = NULL;
		return rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_NOMEM;
	}
	g.filters_checked_s = -1;
	filters_refresh();
	mosquitto_log_printf(MOSQ_LOG_INFO, "iotrules: journaling publishes to %s (bound %llu bytes, %s)", dir,
	    (unsigned long long)g.max, g.sync ? "each QoS 1 or 2 record synced before its PUBACK" :
	    "synced by iotrules-ingest");
	return MOSQ_ERR_SUCCESS;
}

int
mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int nopts)
{
	(void)userdata; (void)opts; (void)nopts;
	if (g.id)
		mosquitto_callback_unregister(g.id, MOSQ_EVT_MESSAGE, on_message, NULL);
	/* At shutdown the broker may wait for the disk. */
	if (g.j)
		journal_writer_sync(g.j);
	journal_writer_close(g.j);
	free(g.dir);
	free(g.filters_path);
	topic_index_free(g.filters);
	buf_free(&g.rec);
	buf_free(&g.props);
	memset(&g, 0, sizeof(g));
	return MOSQ_ERR_SUCCESS;
}
