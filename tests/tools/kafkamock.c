/* kafkamock: the librdkafka mock cluster as a process of its own, for the
 * kafka sink's tests and bench (BACKENDS.md: the only Kafka broker here).
 *
 *   kafkamock [-b BROKERS] [-r READY_FILE] [TOPIC:PARTITIONS ...]
 *
 * Starts BROKERS mock brokers (default 3) on random 127.0.0.1 ports,
 * creates each TOPIC with PARTITIONS partitions, then writes the
 * bootstrap servers list to READY_FILE (atomically, via a rename) or, with
 * no -r, as one line on stdout.  Commands on stdin, one a line:
 *   down   every broker refuses connections (rd_kafka_mock_broker_set_down)
 *   up     every broker accepts them again
 *   topic NAME PARTS   creates one more topic
 *   missing NAME       metadata requests for topic NAME answer "unknown
 *                      topic or partition" (a broker without that topic
 *                      and without auto-creation)
 * Each command is answered "ok" or "error ..." on stdout.  Exits 0 when
 * stdin closes or on SIGTERM/SIGINT; 1 if the cluster cannot start.
 *
 * The mock speaks PLAINTEXT only (no SASL, no TLS) and keeps its records
 * in memory: they are gone when it exits. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int
create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int parts)
{
	if (parts < 1) {
		fprintf(stderr, "kafkamock: topic %s: bad partition count\n", name);
		return -1;
	}
	rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, 1);
	if (err) {
		fprintf(stderr, "kafkamock: topic %s: %s\n", name, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

static int
set_all(rd_kafka_mock_cluster_t *mc, int brokers, int up)
{
	for (int b = 1; b <= brokers; b++) {
		rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, b) : rd_kafka_mock_broker_set_down(mc, b);
		if (err) {
			printf("error broker %d: %s\n", b, rd_kafka_err2str(err));
			return -1;
		}
	}
	printf("ok\n");
	return 0;
}

static void
command(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
	char name[256];
	int parts;
	line[strcspn(line, "\r\n")] = 0;
	if (strcmp(line, "down") == 0)
		set_all(mc, brokers, 0);
	else if (strcmp(line, "up") == 0)
		set_all(mc, brokers, 1);
	else if (sscanf(line, "topic %255s %d", name, &parts) == 2)
		printf(create_topic(mc, name, parts) == 0 ? "ok\n" : "error topic\n");
	else if (sscanf(line, "missing %255s", name) == 1) {
		rd_kafka_mock_topic_set_error(mc, name, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
		printf("ok\n");
	} else if (line[0])
		printf("error unknown command: %s\n", line);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	int brokers = 3, opt;
	const char *ready = NULL;
	while ((opt = getopt(argc, argv, "b:r:")) != -1) {
		if (opt == 'b')
			brokers = atoi(optarg);
		else if (opt == 'r')
			ready = optarg;
		else {
			fprintf(stderr, "usage: kafkamock [-b BROKERS] [-r READY_FILE] [TOPIC:PARTITIONS ...]\n");
			return 2;
		}
	}
	if (brokers < 1 || brokers > 64) {
		fprintf(stderr, "kafkamock: -b wants 1..64\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	/* The cluster needs a client handle for its bookkeeping; a producer
	 * that never produces is the lightest one. */
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) != RD_KAFKA_CONF_OK)
		fprintf(stderr, "kafkamock: %s\n", err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafkamock: %s\n", err);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (mc == NULL) {
		fprintf(stderr, "kafkamock: the mock cluster did not start\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	int rc = 0;
	for (int i = optind; i < argc && rc == 0; i++) {
		char *colon = strrchr(argv[i], ':');
		if (colon == NULL) {
			fprintf(stderr, "kafkamock: %s: want TOPIC:PARTITIONS\n", argv[i]);
			rc = 1;
			break;
		}
		*colon = 0;
		rc = create_topic(mc, argv[i], atoi(colon + 1)) == 0 ? 0 : 1;
	}
	const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
	if (rc == 0 && ready) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
		FILE *f = fopen(tmp, "w");
		if (f == NULL || fprintf(f, "%s\n", bs) < 0 || fclose(f) != 0 || rename(tmp, ready) != 0) {
			perror(ready);
			rc = 1;
		}
	} else if (rc == 0) {
		printf("%s\n", bs);
		fflush(stdout);
	}

	/* Commands until stdin closes or a signal; poll so that a signal
	 * ends the wait within a second even without input. */
	char line[512];
	size_t have = 0;
	while (rc == 0 && !stopping) {
		struct pollfd p = {.fd = 0, .events = POLLIN};
		int r = poll(&p, 1, 1000);
		if (r <= 0)
			continue;
		ssize_t got = read(0, line + have, sizeof(line) - 1 - have);
		if (got <= 0)
			break;
		have += (size_t)got;
		line[have] = 0;
		char *nl;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = 0;
			command(mc, brokers, line);
			size_t used = (size_t)(nl + 1 - line);
			memmove(line, nl + 1, have - used + 1);
			have -= used;
		}
		if (have == sizeof(line) - 1)
			have = 0;   /* an overlong line: dropped */
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return rc;
}
