/* rmqsmoke: test tool (issue 13 groundwork) — publishes N messages to a
 * RabbitMQ quorum queue with publisher confirms and consumes them back with
 * manual acks, one connection per thread, reconnecting to the next node when
 * a connection dies (a node killed under it), and counts what was lost.
 *
 *   rmqsmoke -P "PORT1 PORT2 ..." [-h 127.0.0.1] [-q QUEUE] [-n MSGS]
 *            [-r RECORDS] [-w WINDOW] [-f PREFETCH] [-s STATUSFILE] [-t SECS]
 *            [-i DRAIN_IDLE_SECS]
 *   rmqsmoke -D -P "PORT ..." [-q QUEUE]    declare the queue and exit
 *
 * The publisher starts on the first port, the consumer on the second (the
 * first if there is one).  Each message carries message_id "m<seq>" and
 * RECORDS newline-terminated JSON records.  A message is published again
 * when it was nacked or when its connection died before its basic.ack
 * (at-least-once: duplicates are counted, not an error).  STATUSFILE gets
 * the number of confirmed messages (rewritten as it grows) so that a
 * script can act mid-stream.  Exits 0 when every confirmed message was
 * consumed, 1 when some was lost, 2 on a setup error or the time limit.
 *
 * Build: cc -O2 -pthread -o rmqsmoke tests/backends/rmqsmoke.c -lrabbitmq */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { UNSENT = 0, INFLIGHT = 1, CONFIRMED = 2 };

static const char *host = "127.0.0.1";
static int ports[16];
static int nports;
static const char *queue = "rmqsmoke";
static uint32_t nmsg = 10000, nrec = 100, window = 1000, prefetch = 500;
static const char *statusfile;
static int time_limit = 600;
static int declare_only;
static double drain_idle = 5; /* -i: once all ids are in, stop after this long without a delivery */

static unsigned char *state;      /* per seq: UNSENT, INFLIGHT, CONFIRMED */
static uint32_t *seen;            /* per seq: times consumed */
static atomic_uint confirmed_n;
static atomic_int pub_done;
static atomic_int abort_all;
static double t_start;

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct gap {
	double last, max, max_end;
};

static void
gap_tick(struct gap *g)
{
	double t = now();
	if (g->last > 0 && t - g->last > g->max) {
		g->max = t - g->last;
		g->max_end = t;
	}
	g->last = t;
}

/* connect + login + channel 1 on ports[*idx]; on failure tries the next
 * port (round robin) until the time limit.  NULL when out of time. */
static amqp_connection_state_t
connect_any(int *idx, const char *who)
{
	for (;;) {
		if (atomic_load(&abort_all) || now() - t_start > time_limit)
			return NULL;
		int port = ports[*idx % nports];
		amqp_connection_state_t c = amqp_new_connection();
		amqp_socket_t *s = amqp_tcp_socket_new(c);
		struct timeval tv = {2, 0};
		const char *why = NULL;
		if (s == NULL || amqp_socket_open_noblock(s, host, port, &tv) != AMQP_STATUS_OK)
			why = "tcp connect";
		else if (amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type != AMQP_RESPONSE_NORMAL)
			why = "login";
		else if (amqp_channel_open(c, 1) == NULL || amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
			why = "channel.open";
		if (why == NULL) {
			fprintf(stderr, "rmqsmoke: %s connected to port %d\n", who, port);
			return c;
		}
		fprintf(stderr, "rmqsmoke: %s: %s to port %d failed, trying the next node\n", who, why, port);
		amqp_destroy_connection(c);
		(*idx)++;
		usleep(200000);
	}
}

static int
declare(amqp_connection_state_t c)
{
	amqp_table_entry_t e = {.key = amqp_cstring_bytes("x-queue-type"),
	                        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
	amqp_table_t args = {.num_entries = 1, .entries = &e};
	amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, "rmqsmoke: queue.declare %s failed (reply type %d)\n", queue, r.reply_type);
		return -1;
	}
	return 0;
}

static void
write_status(uint32_t n)
{
	if (statusfile == NULL)
		return;
	char tmp[4096], buf[32];
	snprintf(tmp, sizeof tmp, "%s.tmp", statusfile);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	int len = snprintf(buf, sizeof buf, "%u\n", n);
	if (write(fd, buf, len) == len)
		rename(tmp, statusfile);
	close(fd);
}

/* ---- publisher ---- */

static uint32_t *retry; /* seqs to publish again */
static uint32_t nretry;
static int pub_reconnects;
static struct gap pub_gap;
static uint64_t pub_nacks; /* basic.nack received (messages) */
static double pub_nack_at; /* last basic.nack: re-publish 100 ms after it at the earliest */
static double pub_lost_at, pub_back_at; /* last connection loss, first confirm after it */

struct pubconn {
	uint32_t *tagseq; /* delivery tag -> seq (tag 1 is index 1) */
	unsigned char *tagdone;
	uint64_t cap, next_tag, low; /* low: lowest tag not yet acked/nacked */
	uint32_t inflight;
};

static void
confirm_tag(struct pubconn *p, uint64_t tag, int ack)
{
	if (tag == 0 || tag >= p->next_tag || p->tagdone[tag])
		return;
	p->tagdone[tag] = 1;
	p->inflight--;
	uint32_t seq = p->tagseq[tag];
	if (state[seq] != INFLIGHT)
		return;
	if (ack) {
		state[seq] = CONFIRMED;
		uint32_t n = atomic_fetch_add(&confirmed_n, 1) + 1;
		if (n % 100 == 0 || n == nmsg)
			write_status(n);
	} else {
		pub_nacks++;
		pub_nack_at = now();
		state[seq] = UNSENT;
		retry[nretry++] = seq;
	}
}

static void
confirm_upto(struct pubconn *p, uint64_t tag, int multiple, int ack)
{
	if (!multiple) {
		confirm_tag(p, tag, ack);
	} else {
		for (uint64_t t = p->low; t <= tag && t < p->next_tag; t++)
			confirm_tag(p, t, ack);
	}
	while (p->low < p->next_tag && p->tagdone[p->low])
		p->low++;
	if (ack)
		gap_tick(&pub_gap);
	if (ack && pub_lost_at > 0 && pub_back_at == 0)
		pub_back_at = pub_gap.last;
}

/* reads one frame (waiting up to tv); 0 ok/timeout, -1 the connection is gone */
static int
pub_read(amqp_connection_state_t c, struct pubconn *p, struct timeval *tv)
{
	amqp_frame_t f;
	int rc = amqp_simple_wait_frame_noblock(c, &f, tv);
	if (rc == AMQP_STATUS_TIMEOUT)
		return 0;
	if (rc != AMQP_STATUS_OK)
		return -1;
	if (f.frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (f.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = f.payload.method.decoded;
		confirm_upto(p, a->delivery_tag, a->multiple, 1);
		return 0;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = f.payload.method.decoded;
		confirm_upto(p, n->delivery_tag, n->multiple, 0);
		return 0;
	}
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		fprintf(stderr, "rmqsmoke: publisher: broker closed the channel/connection\n");
		return -1;
	default:
		return 0;
	}
}

static void *
publisher(void *arg)
{
	(void)arg;
	int idx = 0;
	size_t cap = 64 + (size_t)nrec * 96;
	char *body = malloc(cap);
	struct pubconn p = {0};
	uint32_t next_fresh = 0;
	while (atomic_load(&confirmed_n) < nmsg) {
		amqp_connection_state_t c = connect_any(&idx, "publisher");
		if (c == NULL)
			break;
		if (declare(c) < 0 || amqp_confirm_select(c, 1) == NULL ||
		    amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
			amqp_destroy_connection(c);
			idx++;
			pub_reconnects++;
			continue;
		}
		p.cap = 1024;
		p.tagseq = realloc(p.tagseq, p.cap * sizeof *p.tagseq);
		p.tagdone = realloc(p.tagdone, p.cap);
		p.next_tag = p.low = 1;
		p.inflight = 0;
		int dead = 0, since_drain = 0;
		while (!dead && atomic_load(&confirmed_n) < nmsg) {
			if (now() - t_start > time_limit) {
				atomic_store(&abort_all, 1);
				break;
			}
			/* a nack (no leader yet, mid-election): back off before re-publishing */
			int backoff = nretry > 0 && now() - pub_nack_at < 0.1;
			int have = (nretry > 0 && !backoff) || (nretry == 0 && next_fresh < nmsg);
			if (have && p.inflight < window) {
				uint32_t seq = nretry > 0 ? retry[--nretry] : next_fresh++;
				size_t len = (size_t)snprintf(body, cap, "seq=%u\n", seq);
				for (uint32_t i = 0; i < nrec; i++)
					len += (size_t)snprintf(body + len, cap - len,
					                        "{\"dev\":\"d%03u\",\"seq\":%u,\"i\":%u,\"temp\":%u.%u}\n",
					                        i % 1000, seq, i, 15 + (seq + i) % 20, i % 10);
				char mid[32];
				snprintf(mid, sizeof mid, "m%u", seq);
				amqp_basic_properties_t props = {
					._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
					.delivery_mode = 2,
					.message_id = amqp_cstring_bytes(mid),
					.content_type = amqp_cstring_bytes("application/x-ndjson"),
				};
				if (p.next_tag >= p.cap) {
					p.cap *= 2;
					p.tagseq = realloc(p.tagseq, p.cap * sizeof *p.tagseq);
					p.tagdone = realloc(p.tagdone, p.cap);
				}
				p.tagseq[p.next_tag] = seq;
				p.tagdone[p.next_tag] = 0;
				p.next_tag++;
				p.inflight++;
				state[seq] = INFLIGHT;
				if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
				                       (amqp_bytes_t){len, body}) != AMQP_STATUS_OK) {
					dead = 1;
					break;
				}
				if (++since_drain >= 64) { /* drain whatever acks came */
					since_drain = 0;
					struct timeval zero = {0, 0};
					for (int k = 0; k < 256 && !dead; k++) {
						uint64_t before = p.low;
						uint32_t infl = p.inflight;
						if (pub_read(c, &p, &zero) < 0)
							dead = 1;
						if (p.low == before && p.inflight == infl && !amqp_data_in_buffer(c))
							break;
					}
				}
			} else {
				struct timeval tv = {0, backoff ? 20000 : 500000};
				if (pub_read(c, &p, &tv) < 0)
					dead = 1;
			}
			amqp_maybe_release_buffers(c);
		}
		if (dead) {
			/* everything not confirmed on this connection goes again */
			uint32_t back = 0;
			for (uint64_t t = p.low; t < p.next_tag; t++) {
				if (!p.tagdone[t] && state[p.tagseq[t]] == INFLIGHT) {
					state[p.tagseq[t]] = UNSENT;
					retry[nretry++] = p.tagseq[t];
					back++;
				}
			}
			pub_reconnects++;
			pub_lost_at = now();
			pub_back_at = 0;
			fprintf(stderr, "rmqsmoke: publisher: connection lost at %.3f, %u unconfirmed to publish again\n",
			        pub_lost_at, back);
			amqp_destroy_connection(c);
			idx++;
			continue;
		}
		amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(c, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(c);
		if (atomic_load(&abort_all))
			break;
	}
	atomic_store(&pub_done, 1);
	free(body);
	free(p.tagseq);
	free(p.tagdone);
	return NULL;
}

/* ---- consumer ---- */

static uint64_t consumed, dupes, records, bad;
static int con_reconnects;
static struct gap con_gap;
static double t_last_consume;

static void *
consumer(void *arg)
{
	(void)arg;
	int idx = nports > 1 ? 1 : 0;
	uint32_t distinct = 0;
	double idle_since = 0;
	int stop = 0;
	while (!stop) {
		amqp_connection_state_t c = connect_any(&idx, "consumer");
		if (c == NULL)
			break;
		if (declare(c) < 0 || amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0) == NULL ||
		    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table) == NULL ||
		    amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
			amqp_destroy_connection(c);
			idx++;
			con_reconnects++;
			continue;
		}
		int dead = 0;
		uint64_t unacked_tag = 0;
		uint32_t unacked = 0;
		while (!dead && !stop) {
			if (now() - t_start > time_limit || atomic_load(&abort_all))
				break;
			amqp_envelope_t env;
			struct timeval tv = {0, 200000};
			amqp_maybe_release_buffers(c);
			amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
			if (r.reply_type == AMQP_RESPONSE_NORMAL) {
				idle_since = 0;
				uint32_t seq = UINT32_MAX;
				amqp_bytes_t id = env.message.properties.message_id;
				if ((env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) && id.len > 1 && id.len < 16) {
					char b[16];
					memcpy(b, id.bytes, id.len);
					b[id.len] = 0;
					seq = (uint32_t)strtoul(b + 1, NULL, 10);
				}
				if (seq >= nmsg) {
					bad++;
				} else {
					uint32_t lines = 0;
					const char *s = env.message.body.bytes;
					for (size_t k = 0; k < env.message.body.len; k++)
						lines += s[k] == '\n';
					if (lines != nrec + 1)
						bad++;
					consumed++;
					if (seen[seq]++ == 0) {
						distinct++;
						t_last_consume = now(); /* rates: up to the last new message */
						records += lines - 1;
					} else {
						dupes++;
					}
				}
				gap_tick(&con_gap);
				unacked_tag = env.delivery_tag;
				amqp_destroy_envelope(&env);
				if (++unacked >= 50) {
					if (amqp_basic_ack(c, 1, unacked_tag, 1) != AMQP_STATUS_OK)
						dead = 1;
					unacked = 0;
				}
				continue;
			}
			if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
				if (unacked > 0) {
					if (amqp_basic_ack(c, 1, unacked_tag, 1) != AMQP_STATUS_OK)
						dead = 1;
					unacked = 0;
				}
				if (atomic_load(&pub_done)) {
					if (idle_since == 0)
						idle_since = now();
					else if (now() - idle_since > (distinct >= nmsg ? drain_idle : 15))
						stop = 1; /* all in (duplicates drained), or nothing more is coming */
				}
				continue;
			}
			if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
				/* a frame that is not a delivery: basic.cancel, channel.close ... */
				amqp_frame_t f;
				if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) {
					dead = 1;
				} else if (f.frame_type == AMQP_FRAME_METHOD) {
					amqp_method_number_t m = f.payload.method.id;
					if (m == AMQP_BASIC_CANCEL_METHOD || m == AMQP_CHANNEL_CLOSE_METHOD ||
					    m == AMQP_CONNECTION_CLOSE_METHOD) {
						fprintf(stderr, "rmqsmoke: consumer: broker sent method 0x%08x\n", m);
						dead = 1;
					}
				}
				continue;
			}
			dead = 1;
		}
		if (dead) {
			con_reconnects++;
			fprintf(stderr, "rmqsmoke: consumer: connection lost at %.3f\n", now());
			amqp_destroy_connection(c);
			idx++;
			continue;
		}
		if (unacked > 0)
			amqp_basic_ack(c, 1, unacked_tag, 1);
		amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(c, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(c);
		break;
	}
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: rmqsmoke [-D] -P \"PORT ...\" [-h HOST] [-q QUEUE] [-n MSGS] [-r RECORDS] "
	                "[-w WINDOW] [-f PREFETCH] [-s STATUSFILE] [-t SECS] [-i SECS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "DP:h:q:n:r:w:f:s:t:i:")) != -1) {
		switch (o) {
		case 'P': {
			char *save = NULL, *dup = strdup(optarg);
			for (char *t = strtok_r(dup, " ,", &save); t && nports < 16; t = strtok_r(NULL, " ,", &save))
				ports[nports++] = atoi(t);
			break;
		}
		case 'D': declare_only = 1; break;
		case 'h': host = optarg; break;
		case 'q': queue = optarg; break;
		case 'n': nmsg = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'r': nrec = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'w': window = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'f': prefetch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': statusfile = optarg; break;
		case 't': time_limit = atoi(optarg); break;
		case 'i': drain_idle = atof(optarg); break;
		default: usage();
		}
	}
	if (nports == 0 || nmsg == 0 || window == 0 || prefetch == 0 || prefetch > 65535)
		usage();
	state = calloc(nmsg, 1);
	seen = calloc(nmsg, sizeof *seen);
	retry = calloc(nmsg, sizeof *retry);
	if (state == NULL || seen == NULL || retry == NULL)
		return 2;
	t_start = now();
	if (declare_only) {
		int idx = 0;
		amqp_connection_state_t c = connect_any(&idx, "declare");
		int rc = c == NULL || declare(c) < 0 ? 2 : 0;
		if (c != NULL) {
			amqp_connection_close(c, AMQP_REPLY_SUCCESS);
			amqp_destroy_connection(c);
		}
		return rc;
	}
	write_status(0);
	pthread_t pt, ct;
	pthread_create(&ct, NULL, consumer, NULL);
	pthread_create(&pt, NULL, publisher, NULL);
	pthread_join(pt, NULL);
	double t_pub = now() - t_start;
	pthread_join(ct, NULL);
	double t_con = (t_last_consume > 0 ? t_last_consume : now()) - t_start;
	uint64_t lost = 0, confirmed = 0, unconfirmed_seen = 0;
	for (uint32_t s = 0; s < nmsg; s++) {
		if (state[s] == CONFIRMED) {
			confirmed++;
			if (seen[s] == 0)
				lost++;
		} else if (seen[s]) {
			unconfirmed_seen++;
		}
	}
	printf("messages %u records/message %u window %u prefetch %u\n", nmsg, nrec, window, prefetch);
	printf("confirmed %llu in %.2f s: %.0f msg/s, %.0f records/s\n", (unsigned long long)confirmed, t_pub,
	       confirmed / t_pub, confirmed * (double)nrec / t_pub);
	printf("consumed %llu (distinct %llu, duplicates %llu, malformed %llu) by %.2f s: %.0f msg/s, %.0f records/s\n",
	       (unsigned long long)consumed, (unsigned long long)(consumed - dupes), (unsigned long long)dupes,
	       (unsigned long long)bad, t_con, (consumed - dupes) / t_con, records / t_con);
	printf("lost %llu (confirmed, never consumed); consumed without a confirm %llu\n", (unsigned long long)lost,
	       (unsigned long long)unconfirmed_seen);
	printf("publisher nacks %llu\n", (unsigned long long)pub_nacks);
	printf("publisher reconnects %d, longest gap between confirms %.3f s (ended at %.3f)\n", pub_reconnects,
	       pub_gap.max, pub_gap.max_end);
	if (pub_lost_at > 0)
		printf("publisher connection lost at %.3f, first confirm after it at %.3f (%.3f s later)\n", pub_lost_at,
		       pub_back_at, pub_back_at > 0 ? pub_back_at - pub_lost_at : -1.0);
	printf("consumer reconnects %d, longest gap between deliveries %.3f s (ended at %.3f)\n", con_reconnects,
	       con_gap.max, con_gap.max_end);
	if (confirmed < nmsg) {
		printf("time limit: only %llu of %u confirmed\n", (unsigned long long)confirmed, nmsg);
		return 2;
	}
	return lost ? 1 : 0;
}
