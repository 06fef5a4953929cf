/* ackpub: publishes {"seq":N} for N = 1..COUNT at QoS 1 and prints
 * "acked N" for each PUBACK, so a test can check that every message the
 * broker acknowledged was delivered.
 *
 *   ackpub HOST PORT TOPIC COUNT [WINDOW [RATE]]
 *
 * Keeps at most WINDOW (default 100) messages unacknowledged and, with a
 * RATE above 0, publishes at most RATE messages a second (so a test can
 * act while the stream is still going).  It rides
 * out a broker that dies: libmosquitto reconnects (every second) and
 * sends again what was not acknowledged.  Exits 0 when every message was
 * acknowledged, 1 after 30 s without progress or on a usage error. */
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long seq_of[65536];   /* mid → seq */
static long acked;
static long last;        /* acked when progress was last seen */
static time_t progress;  /* when acked last moved */

/* Waits (mu held) until want messages are acknowledged, or 30 s pass
 * without a new PUBACK.  Returns 1 if stalled. */
static int
wait_acked(long want)
{
	while (acked < want && time(NULL) - progress < 30) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&cv, &mu, &ts);
		if (acked != last) {
			last = acked;
			progress = time(NULL);
		}
	}
	return acked < want;
}

static void
on_publish(struct mosquitto *m, void *obj, int mid)
{
	(void)m; (void)obj;
	pthread_mutex_lock(&mu);
	printf("acked %ld\n", seq_of[mid & 0xffff]);
	acked++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

int
main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: ackpub HOST PORT TOPIC COUNT [WINDOW [RATE]]\n");
		return 1;
	}
	const char *host = argv[1], *topic = argv[3];
	int port = atoi(argv[2]);
	long count = atol(argv[4]), window = argc > 5 ? atol(argv[5]) : 100;
	long rate = argc > 6 ? atol(argv[6]) : 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mosquitto_lib_init();
	char id[64];
	snprintf(id, sizeof(id), "ackpub-%d", (int)getpid());
	/* clean session off: what is in flight is sent again after a
	 * reconnect. */
	struct mosquitto *m = mosquitto_new(id, false, NULL);
	if (m == NULL)
		return 1;
	mosquitto_max_inflight_messages_set(m, (unsigned)window);
	mosquitto_reconnect_delay_set(m, 1, 1, false);
	mosquitto_publish_callback_set(m, on_publish);
	if (mosquitto_connect(m, host, port, 30) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "ackpub: cannot connect to %s:%d\n", host, port);
		return 1;
	}
	mosquitto_loop_start(m);
	progress = time(NULL);
	for (long seq = 1; seq <= count;) {
		pthread_mutex_lock(&mu);
		int stalled = wait_acked(seq - window);
		pthread_mutex_unlock(&mu);
		if (stalled)
			break;
		if (rate > 0) {
			/* Message seq is due (seq - 1) / rate seconds after the start. */
			struct timespec due = t0;
			long long ns = (long long)(seq - 1) * 1000000000LL / rate;
			due.tv_sec += (time_t)(ns / 1000000000LL);
			due.tv_nsec += (long)(ns % 1000000000LL);
			if (due.tv_nsec >= 1000000000L) {
				due.tv_sec++;
				due.tv_nsec -= 1000000000L;
			}
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
		}
		char payload[64];
		int n = snprintf(payload, sizeof(payload), "{\"seq\":%ld}", seq);
		int mid;
		/* The mid is known only after the call: the lock keeps the
		 * PUBACK's callback from looking it up before it is set. */
		pthread_mutex_lock(&mu);
		int rc = mosquitto_publish(m, &mid, topic, n, payload, 1, false);
		/* MOSQ_ERR_NO_CONN at QoS 1: libmosquitto 2.0.11 queued the
		 * message anyway (message__queue) and sends it on reconnect, so
		 * it is published, not to be tried again. */
		int queued = rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN;
		if (queued)
			seq_of[mid & 0xffff] = seq;
		pthread_mutex_unlock(&mu);
		if (queued)
			seq++;
		else
			usleep(100000);
	}
	pthread_mutex_lock(&mu);
	wait_acked(count);
	long done = acked;
	pthread_mutex_unlock(&mu);
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	fprintf(stderr, "ackpub: %ld of %ld acknowledged\n", done, count);
	return done == count ? 0 : 1;
}
