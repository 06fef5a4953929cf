/* bench/hop: the records per second one hop carries, on the transport the
 * environment selects (common/hop.h: NNG without IOTRULES_AMQP, the
 * RabbitMQ quorum queue <prefix>.bench with it).
 *
 *   hop [--seconds S] [--records R] [--size B] [--window W] [--workers K]
 *
 * One sender (window W batches, 8) and one receiver (K workers, 2) in
 * this process, as two stages would have them.  For S seconds (5) the
 * sender sends batches of R records (256) of B bytes (100) each, framed
 * as an envelope batch is (a length before each record); then it waits
 * until the receiver handled every batch.  Prints one JSON line:
 * transport, batches, records, seconds, batches_per_s, records_per_s,
 * MB_per_s (payload bytes). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/hop.h"

static atomic_long handled;

static int
handler(void *arg, const void *data, size_t len)
{
	(void)arg; (void)data; (void)len;
	atomic_fetch_add(&handled, 1);
	return HOP_OK;
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	double seconds = 5;
	long records = 256, size = 100, window = 8, workers = 2;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			printf("usage: hop [--seconds S] [--records R] [--size B] [--window W] [--workers K]\n"
			    "Records per second through one hop (IOTRULES_AMQP selects the transport).\n");
			return 0;
		}
		if (v == NULL) {
			fprintf(stderr, "hop: %s needs a value (--help)\n", o);
			return 2;
		}
		if (strcmp(o, "--seconds") == 0) seconds = atof(v);
		else if (strcmp(o, "--records") == 0) records = atol(v);
		else if (strcmp(o, "--size") == 0) size = atol(v);
		else if (strcmp(o, "--window") == 0) window = atol(v);
		else if (strcmp(o, "--workers") == 0) workers = atol(v);
		else {
			fprintf(stderr, "hop: unknown option %s (--help)\n", o);
			return 2;
		}
		i++;
	}
	if (seconds <= 0 || records < 1 || size < 0 || window < 1 || workers < 1) {
		fprintf(stderr, "hop: every value must be positive\n");
		return 2;
	}
	char dir[] = "/tmp/iotrules-hopbench-XXXXXX", err[512];
	if (mkdtemp(dir) == NULL) {
		perror("hop: mkdtemp");
		return 1;
	}
	/* One batch: records x (u32 length + size bytes). */
	size_t blen = (size_t)records * (4 + (size_t)size);
	unsigned char *batch = malloc(blen);
	if (batch == NULL)
		return 1;
	for (long r = 0; r < records; r++) {
		unsigned char *p = batch + (size_t)r * (4 + (size_t)size);
		uint32_t l = (uint32_t)size;
		memcpy(p, &l, 4);
		memset(p + 4, 'a' + (int)(r % 26), (size_t)size);
	}
	hop_receiver *rx = hop_receiver_open(dir, "bench", (int)workers, handler, NULL, err, sizeof(err));
	hop_sender *tx = rx ? hop_sender_open(dir, "bench", "bench-1", (int)window, err, sizeof(err)) : NULL;
	if (tx == NULL) {
		fprintf(stderr, "hop: %s\n", err);
		return 1;
	}
	/* Warm up: the connections are up once one batch went through. */
	if (hop_send_wait(tx, batch, blen) != HOP_OK)
		return 1;
	while (atomic_load(&handled) < 1)
		usleep(1000);
	long sent = 0;
	long base = atomic_load(&handled);
	double t0 = now();
	while (now() - t0 < seconds) {
		if (hop_send(tx, batch, blen, NULL, NULL) < 0)
			return 1;
		sent++;
	}
	while (atomic_load(&handled) - base < sent)
		usleep(200);
	double el = now() - t0;
	printf("{\"transport\":\"%s\",\"batches\":%ld,\"records\":%ld,\"record_bytes\":%ld,\"seconds\":%.3f,"
	    "\"batches_per_s\":%.0f,\"records_per_s\":%.0f,\"MB_per_s\":%.1f}\n",
	    hop_transport(), sent, sent * records, size, el, sent / el, sent * records / el,
	    (double)sent * records * size / el / 1e6);
	hop_sender_close(tx);
	hop_receiver_close(rx);
	char cmd[100];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
