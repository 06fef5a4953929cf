/* iotrules-bench-pubsub: one load run against an MQTT broker.
 *
 * Publishes COUNT messages {"device","temp","seq","t"} to
 * <prefix>/dev<k>/telemetry and counts what arrives on the subscription
 * filter, by "seq".  "t" is the send time on this process's monotonic
 * clock, so latency is receive time minus "t" with no clock skew.  At
 * QoS 1 it also reports the PUBACK latency (publish call to the broker's
 * PUBACK, ack_p50_ms/ack_p99_ms): what a device waits for, and what a
 * broker plugin working before the PUBACK adds to.
 *
 * With --filtered every fourth message has temp 15 and is not expected
 * (the bench rule keeps temp > 20); without it every message is expected
 * (broker-alone baseline, subscribed to the input topics themselves).
 *
 * The load is closed-loop: at most --window expected messages are
 * outstanding (sent, not yet received), so the figure is a sustainable
 * rate, not how fast a queue can be filled.  --rate paces the sends on an
 * absolute schedule instead (open loop, the window is only a safety cap).
 *
 * Prints one JSON object on stdout; exit 0 even when messages are lost
 * (the report says how many), 1 on a usage or connection error. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	const char *host, *prefix, *sub, *label;
	int port, qos, filtered, devices, idle_ms;
	long count, window;
	double rate;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int sub_ready;
	long expected_sent;     /* expected messages sent so far */
	long distinct, received, dups, bad;
	uint8_t *seen;          /* per seq: received already */
	double *lat;            /* latency (ms) of first receipts, in arrival order */
	int64_t sent_ns[65536]; /* QoS 1: send time by mid (mid & 0xffff) */
	double *ack_lat;        /* QoS 1: publish -> PUBACK (ms), in PUBACK order */
	long acks;
	int64_t last_rx_ns;
} B;

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
expected(long seq)
{
	return !B.filtered || seq % 4 != 0;
}

static void
on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *granted)
{
	(void)m; (void)u; (void)mid; (void)n; (void)granted;
	pthread_mutex_lock(&B.mu);
	B.sub_ready = 1;
	pthread_cond_broadcast(&B.cv);
	pthread_mutex_unlock(&B.mu);
}

static void
on_connect_sub(struct mosquitto *m, void *u, int rc)
{
	(void)u;
	if (rc != 0) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"subscriber connect refused: %s\"}\n", mosquitto_connack_string(rc));
		return;
	}
	mosquitto_subscribe(m, NULL, B.sub, B.qos);
}

static void
on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
	(void)m; (void)u;
	int64_t rx = now_ns();
	cJSON *doc = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "seq");
	cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "t");
	pthread_mutex_lock(&B.mu);
	B.received++;
	if (!cJSON_IsNumber(s) || !cJSON_IsNumber(t) || s->valuedouble < 0 || s->valuedouble >= (double)B.count ||
	    !expected((long)s->valuedouble)) {
		B.bad++;
	} else {
		long seq = (long)s->valuedouble;
		if (B.seen[seq]) {
			B.dups++;
		} else {
			B.seen[seq] = 1;
			B.lat[B.distinct++] = (double)(rx - (int64_t)t->valuedouble) / 1e6;
			B.last_rx_ns = rx;
			pthread_cond_broadcast(&B.cv);
		}
	}
	pthread_mutex_unlock(&B.mu);
	cJSON_Delete(doc);
}

/* QoS 1: the broker's PUBACK for mid (the plugin journals before it). */
static void
on_publish(struct mosquitto *m, void *u, int mid)
{
	(void)m; (void)u;
	int64_t rx = now_ns();
	pthread_mutex_lock(&B.mu);
	if (B.qos == 1 && B.acks < B.count)
		B.ack_lat[B.acks++] = (double)(rx - B.sent_ns[mid & 0xffff]) / 1e6;
	pthread_mutex_unlock(&B.mu);
}

static struct mosquitto *
client(const char *id, int sub)
{
	struct mosquitto *m = mosquitto_new(id, 1, NULL);
	if (m == NULL)
		return NULL;
	mosquitto_max_inflight_messages_set(m, (unsigned)(B.window > 65535 ? 65535 : B.window));
	if (sub) {
		mosquitto_connect_callback_set(m, on_connect_sub);
		mosquitto_subscribe_callback_set(m, on_subscribe);
		mosquitto_message_callback_set(m, on_message);
	}
	int rc = mosquitto_connect(m, B.host, B.port, 30);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"connect %s:%d: %s\"}\n", B.host, B.port, mosquitto_strerror(rc));
		mosquitto_destroy(m);
		return NULL;
	}
	if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
		mosquitto_destroy(m);
		return NULL;
	}
	return m;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
pct(double *sorted, long n, double p)
{
	if (n == 0)
		return 0;
	long i = (long)(p * (double)(n - 1) + 0.5);
	return sorted[i];
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-bench-pubsub --port P --prefix TOPIC --sub FILTER [options]\n"
	    "  --host H        broker host (127.0.0.1)\n"
	    "  --qos 0|1       publish and subscribe QoS (1)\n"
	    "  --count N       messages to send (50000)\n"
	    "  --rate R        pace at R msgs/s (default: as fast as the window allows)\n"
	    "  --window W      most expected messages outstanding (2000)\n"
	    "  --filtered      every 4th message has temp 15 and is not expected\n"
	    "  --devices N     devices to spread messages over (10)\n"
	    "  --idle-ms MS    give up on missing messages after MS without progress (5000)\n"
	    "  --label S       copied into the report\n");
}

int
main(int argc, char **argv)
{
	B.host = "127.0.0.1";
	B.qos = 1;
	B.count = 50000;
	B.window = 2000;
	B.devices = 10;
	B.idle_ms = 5000;
	B.label = "";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--filtered")) {
			B.filtered = 1;
			continue;
		} else if (v == NULL) {
			usage(stderr);
			return 1;
		} else if (!strcmp(a, "--host")) B.host = v;
		else if (!strcmp(a, "--port")) B.port = atoi(v);
		else if (!strcmp(a, "--prefix")) B.prefix = v;
		else if (!strcmp(a, "--sub")) B.sub = v;
		else if (!strcmp(a, "--label")) B.label = v;
		else if (!strcmp(a, "--qos")) B.qos = atoi(v);
		else if (!strcmp(a, "--count")) B.count = atol(v);
		else if (!strcmp(a, "--rate")) B.rate = atof(v);
		else if (!strcmp(a, "--window")) B.window = atol(v);
		else if (!strcmp(a, "--devices")) B.devices = atoi(v);
		else if (!strcmp(a, "--idle-ms")) B.idle_ms = atoi(v);
		else {
			usage(stderr);
			return 1;
		}
		i++;
	}
	if (B.port <= 0 || B.prefix == NULL || B.sub == NULL || B.count <= 0 || B.window <= 0 ||
	    B.devices <= 0 || (B.qos != 0 && B.qos != 1)) {
		usage(stderr);
		return 1;
	}
	B.seen = calloc((size_t)B.count, 1);
	B.lat = calloc((size_t)B.count, sizeof(double));
	B.ack_lat = calloc((size_t)B.count, sizeof(double));
	if (B.seen == NULL || B.lat == NULL || B.ack_lat == NULL)
		return 1;
	pthread_mutex_init(&B.mu, NULL);
	pthread_cond_init(&B.cv, NULL);
	mosquitto_lib_init();

	char id[64];
	snprintf(id, sizeof(id), "bench-sub-%d", (int)getpid());
	struct mosquitto *sub = client(id, 1);
	snprintf(id, sizeof(id), "bench-pub-%d", (int)getpid());
	struct mosquitto *pub = sub ? client(id, 0) : NULL;
	if (pub == NULL)
		return 1;
	mosquitto_publish_callback_set(pub, on_publish);
	pthread_mutex_lock(&B.mu);
	while (!B.sub_ready)
		pthread_cond_wait(&B.cv, &B.mu);
	pthread_mutex_unlock(&B.mu);

	char topic[256], payload[256];
	int64_t start = now_ns();
	for (long seq = 0; seq < B.count; seq++) {
		if (B.rate > 0) {
			int64_t due = start + (int64_t)((double)seq * 1e9 / B.rate);
			int64_t d = due - now_ns();
			if (d > 0) {
				struct timespec ts = { d / 1000000000, d % 1000000000 };
				nanosleep(&ts, NULL);
			}
		}
		int exp = expected(seq);
		pthread_mutex_lock(&B.mu);
		while (exp && B.expected_sent - B.distinct >= B.window)
			pthread_cond_wait(&B.cv, &B.mu);
		if (exp)
			B.expected_sent++;
		pthread_mutex_unlock(&B.mu);
		int dev = (int)(seq % B.devices);
		snprintf(topic, sizeof(topic), "%s/dev%d/telemetry", B.prefix, dev);
		int n = snprintf(payload, sizeof(payload), "{\"device\":\"dev%d\",\"temp\":%d,\"seq\":%ld,\"t\":%lld}",
		    dev, exp ? 25 : 15, seq, (long long)now_ns());
		int rc, mid = 0;
		/* Under the lock: the PUBACK's callback must not look up the
		 * send time before it is set. */
		pthread_mutex_lock(&B.mu);
		int64_t sent = now_ns();
		while ((rc = mosquitto_publish(pub, &mid, topic, n, payload, B.qos, false)) == MOSQ_ERR_NO_CONN) {
			pthread_mutex_unlock(&B.mu);
			usleep(10000);
			pthread_mutex_lock(&B.mu);
			sent = now_ns();
		}
		B.sent_ns[mid & 0xffff] = sent;
		pthread_mutex_unlock(&B.mu);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "{\"level\":\"error\",\"msg\":\"publish: %s\"}\n", mosquitto_strerror(rc));
			return 1;
		}
	}
	int64_t sent_end = now_ns();

	/* Wait for the rest; stop after idle_ms without a new arrival. */
	long want = B.expected_sent;
	pthread_mutex_lock(&B.mu);
	int64_t last_progress = now_ns();
	long last_distinct = B.distinct;
	while (B.distinct < want) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&B.cv, &B.mu, &ts);
		if (B.distinct != last_distinct) {
			last_distinct = B.distinct;
			last_progress = now_ns();
		} else if (now_ns() - last_progress > (int64_t)B.idle_ms * 1000000) {
			break;
		}
	}
	int64_t end = B.distinct ? B.last_rx_ns : now_ns();
	pthread_mutex_unlock(&B.mu);
	/* Linger a little so late duplicates are counted. */
	usleep(200000);
	pthread_mutex_lock(&B.mu);
	long distinct = B.distinct, dups = B.dups, bad = B.bad, received = B.received, acks = B.acks;
	pthread_mutex_unlock(&B.mu);
	qsort(B.ack_lat, (size_t)acks, sizeof(double), cmp_double);

	qsort(B.lat, (size_t)distinct, sizeof(double), cmp_double);
	double secs = (double)(end - start) / 1e9;
	printf("{\"label\":\"%s\",\"qos\":%d,\"sent\":%ld,\"expected\":%ld,\"received\":%ld,\"distinct\":%ld,"
	       "\"lost\":%ld,\"duplicates\":%ld,\"unexpected\":%ld,\"seconds\":%.3f,\"send_seconds\":%.3f,"
	       "\"msgs_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
	       "\"acks\":%ld,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f}\n",
	    B.label, B.qos, B.count, want, received, distinct, want - distinct, dups, bad, secs,
	    (double)(sent_end - start) / 1e9, secs > 0 ? (double)B.count / secs : 0,
	    pct(B.lat, distinct, 0.50), pct(B.lat, distinct, 0.99), distinct ? B.lat[distinct - 1] : 0,
	    acks, pct(B.ack_lat, acks, 0.50), pct(B.ack_lat, acks, 0.99));
	fflush(stdout);

	mosquitto_disconnect(pub);
	mosquitto_disconnect(sub);
	mosquitto_loop_stop(pub, false);
	mosquitto_loop_stop(sub, false);
	mosquitto_destroy(pub);
	mosquitto_destroy(sub);
	mosquitto_lib_cleanup();
	free(B.seen);
	free(B.lat);
	free(B.ack_lat);
	return 0;
}
