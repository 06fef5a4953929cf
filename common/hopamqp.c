/* hopamqp: hops over RabbitMQ quorum queues (see hopamqp.h).
 *
 * rabbitmq-c connections are not thread safe: each one belongs to one
 * thread (the sender's I/O thread, each receiver worker), and nothing
 * else touches it. */
#include "common/hopamqp.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/seen.h"

/* ---- nodes and connections ---------------------------------------------- */

typedef struct node {
	char *text;                       /* the URL (parsed in place below) */
	char *shown;                      /* host:port, for log lines */
	struct amqp_connection_info ci;   /* points into text */
} node;

typedef struct cluster {
	node *nodes;
	int n, next;                      /* next: the node to try first */
	char queue[256];
	unsigned backoff_ms;              /* the pause before the next attempt */
	/* amqps: IOTRULES_AMQP_CAFILE, _CERTFILE, _KEYFILE (copies, or NULL) */
	char *cafile, *certfile, *keyfile;
} cluster;

static void
cluster_free(cluster *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->nodes[i].text);
		free(c->nodes[i].shown);
	}
	free(c->nodes);
	free(c->cafile);
	free(c->certfile);
	free(c->keyfile);
	c->nodes = NULL;
	c->cafile = c->certfile = c->keyfile = NULL;
	c->n = 0;
}

static char *
env_copy(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strdup(v) : NULL;
}

/* Parses urls into c.  0, or -1 with err set. */
static int
cluster_init(cluster *c, const char *urls, const char *queue, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->queue, sizeof(c->queue), "%s", queue);
	const char *p = urls;
	while (*p) {
		p += strspn(p, " ,\t\n");
		size_t len = strcspn(p, " ,\t\n");
		if (len == 0)
			break;
		node *nn = realloc(c->nodes, sizeof(node) * (size_t)(c->n + 1));
		if (nn == NULL)
			goto nomem;
		c->nodes = nn;
		node *x = &c->nodes[c->n];
		memset(x, 0, sizeof(*x));
		x->text = strndup(p, len);
		if (x->text == NULL)
			goto nomem;
		c->n++;
		amqp_default_connection_info(&x->ci);
		if (amqp_parse_url(x->text, &x->ci) != AMQP_STATUS_OK) {
			snprintf(err, errcap, "not an AMQP URL: \"%.*s\" (amqp://user:pass@host:port/vhost)", (int)len, p);
			cluster_free(c);
			return -1;
		}
		char shown[300];
		snprintf(shown, sizeof(shown), "%s:%d", x->ci.host, x->ci.port);
		x->shown = strdup(shown);
		if (x->shown == NULL)
			goto nomem;
		p += len;
	}
	if (c->n == 0) {
		snprintf(err, errcap, "no AMQP URL given");
		return -1;
	}
	c->cafile = env_copy("IOTRULES_AMQP_CAFILE");
	c->certfile = env_copy("IOTRULES_AMQP_CERTFILE");
	c->keyfile = env_copy("IOTRULES_AMQP_KEYFILE");
	if ((c->certfile == NULL) != (c->keyfile == NULL)) {
		snprintf(err, errcap, "IOTRULES_AMQP_CERTFILE and IOTRULES_AMQP_KEYFILE go together");
		cluster_free(c);
		return -1;
	}
	c->backoff_ms = 100;
	return 0;
nomem:
	snprintf(err, errcap, "out of memory");
	cluster_free(c);
	return -1;
}

static const char *
reply_text(amqp_rpc_reply_t r)
{
	static _Thread_local char t[160];
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return "ok";
	case AMQP_RESPONSE_NONE:
		return "no reply";
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		return amqp_error_string2(r.library_error);
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			/* Both methods start with reply_code and reply_text. */
			amqp_channel_close_t *m = r.reply.decoded;
			snprintf(t, sizeof(t), "server: %u %.*s", m->reply_code, (int)m->reply_text.len,
			    (char *)m->reply_text.bytes);
			return t;
		}
		return "server error";
	}
	return "?";
}

/* Sleeps c->backoff_ms (with jitter) in slices, unless *stop is set, and
 * doubles the backoff up to 5 s. */
static void
cluster_pause(cluster *c, atomic_int *stop)
{
	unsigned ms = c->backoff_ms / 2 + (unsigned)rand() % (c->backoff_ms / 2 + 1);
	for (unsigned slept = 0; slept < ms && !*stop; slept += 20)
		usleep(20000);
	c->backoff_ms = c->backoff_ms * 2 > 5000 ? 5000 : c->backoff_ms * 2;
}

/* An amqps socket: TLS 1.2 or later, the server's certificate checked
 * against the CA file (IOTRULES_AMQP_CAFILE, else the system's) and its
 * name against the URL's host; a client certificate if one is set.  NULL
 * with *why set on failure. */
static amqp_socket_t *
tls_socket(cluster *c, amqp_connection_state_t conn, const char **why)
{
	amqp_socket_t *s = amqp_ssl_socket_new(conn);
	if (s == NULL) {
		*why = "cannot create a TLS socket";
		return NULL;
	}
	amqp_ssl_socket_set_verify_peer(s, 1);
	amqp_ssl_socket_set_verify_hostname(s, 1);
	if (amqp_ssl_socket_set_ssl_versions(s, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
		*why = "TLS 1.2 is not available";
		return NULL;
	}
	const char *ca = c->cafile ? c->cafile : "/etc/ssl/certs/ca-certificates.crt";
	if (amqp_ssl_socket_set_cacert(s, ca) != AMQP_STATUS_OK) {
		*why = "cannot read the CA file (IOTRULES_AMQP_CAFILE)";
		return NULL;
	}
	if (c->certfile && amqp_ssl_socket_set_key(s, c->certfile, c->keyfile) != AMQP_STATUS_OK) {
		*why = "cannot read the client certificate or key (IOTRULES_AMQP_CERTFILE, _KEYFILE)";
		return NULL;
	}
	return s;
}

/* Connects to the next node that answers (one attempt per node, then
 * NULL), opens channel 1 and declares the queue.  what names the client
 * in log lines. */
static amqp_connection_state_t
cluster_connect(cluster *c, const char *what)
{
	for (int tries = 0; tries < c->n; tries++) {
		node *x = &c->nodes[c->next];
		c->next = (c->next + 1) % c->n;
		amqp_connection_state_t conn = amqp_new_connection();
		if (conn == NULL)
			return NULL;
		struct timeval tv = {2, 0};
		const char *why = NULL;
		int rv;
		amqp_rpc_reply_t r;
		amqp_socket_t *sock = x->ci.ssl ? tls_socket(c, conn, &why) : amqp_tcp_socket_new(conn);
		if (sock == NULL) {
			why = why ? why : "no socket";
		} else if ((rv = amqp_socket_open_noblock(sock, x->ci.host, x->ci.port, &tv)) != AMQP_STATUS_OK) {
			why = amqp_error_string2(rv);
		} else {
			struct timeval hs = {5, 0}, rpc = {10, 0};
			amqp_set_handshake_timeout(conn, &hs);
			amqp_set_rpc_timeout(conn, &rpc);
			r = amqp_login(conn, x->ci.vhost, 0, 1 << 20, 0, AMQP_SASL_METHOD_PLAIN, x->ci.user,
			    x->ci.password);
			if (r.reply_type != AMQP_RESPONSE_NORMAL)
				why = reply_text(r);
		}
		if (why == NULL) {
			amqp_channel_open(conn, 1);
			r = amqp_get_rpc_reply(conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL)
				why = reply_text(r);
		}
		if (why == NULL) {
			amqp_table_entry_t e = {amqp_cstring_bytes("x-queue-type"),
			    {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes("quorum")}}};
			amqp_table_t args = {1, &e};
			amqp_queue_declare(conn, 1, amqp_cstring_bytes(c->queue), 0, 1, 0, 0, args);
			r = amqp_get_rpc_reply(conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL)
				why = reply_text(r);
		}
		if (why == NULL) {
			c->backoff_ms = 100;
			log_info("%s: connected to %s, queue %s", what, x->shown, c->queue);
			return conn;
		}
		log_warn("%s: cannot use AMQP node %s: %s", what, x->shown, why);
		amqp_destroy_connection(conn);
	}
	return NULL;
}

/* ---- sender -------------------------------------------------------------- */

typedef struct item {
	struct item *next;
	void *data;
	size_t len;
	hop_done_fn fn;
	void *arg;
	uint64_t tag;         /* delivery tag on the current channel, 0: not sent */
	int64_t not_before;   /* proc_now_ms() before which it is not resent */
	char id[40];          /* message_id: the same on every resend */
} item;

typedef struct ilist {
	item *head, *tail;
} ilist;

static void
ilist_push(ilist *l, item *it)
{
	it->next = NULL;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
}

/* Puts every item of src, in order, before those of dst. */
static void
ilist_prepend(ilist *dst, ilist *src)
{
	if (src->head == NULL)
		return;
	src->tail->next = dst->head;
	if (dst->head == NULL)
		dst->tail = src->tail;
	dst->head = src->head;
	src->head = src->tail = NULL;
}

struct hopamqp_sender {
	cluster cl;
	pthread_t io;
	pthread_mutex_t mu;
	pthread_cond_t cv;           /* window space, and the thread's exit */
	ilist queue;                 /* to publish (under mu) */
	int window, inflight;        /* inflight: queued + unconfirmed */
	atomic_int closed;
	int wake[2];                 /* a byte here wakes the I/O thread */
	/* The I/O thread's own: */
	ilist unconfirmed;           /* published, confirm awaited, by tag */
	uint64_t next_tag;
	unsigned nack_ms;
};

static void
item_finish(hopamqp_sender *h, item *it, int status)
{
	if (it->fn)
		it->fn(it->arg, status);
	free(it->data);
	free(it);
	pthread_mutex_lock(&h->mu);
	h->inflight--;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static int
publish(hopamqp_sender *h, amqp_connection_state_t conn, item *it)
{
	amqp_basic_properties_t p;
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
	p.delivery_mode = 2;
	p.message_id = amqp_cstring_bytes(it->id);
	p.content_type = amqp_cstring_bytes("application/x-iotrules-batch");
	amqp_bytes_t body = {it->len, it->data};
	if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(h->cl.queue), 0, 0, &p, body) !=
	    AMQP_STATUS_OK)
		return -1;
	it->tag = ++h->next_tag;
	return 0;
}

/* A confirm (ack 1 / nack 0) for tag (and every earlier one if
 * multiple). */
static void
confirmed(hopamqp_sender *h, uint64_t tag, int multiple, int ack)
{
	ilist again = {NULL, NULL};
	item **pp = &h->unconfirmed.head, *prev = NULL;
	while (*pp) {
		item *it = *pp;
		if (it->tag > tag)
			break;
		if (!multiple && it->tag != tag) {
			prev = it;
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		if (h->unconfirmed.tail == it)
			h->unconfirmed.tail = prev;
		if (ack) {
			item_finish(h, it, HOP_OK);
		} else {
			it->tag = 0;
			it->not_before = proc_now_ms() + h->nack_ms;
			ilist_push(&again, it);
		}
	}
	if (ack) {
		h->nack_ms = 100;
	} else if (again.head) {
		/* The queue could not take them (no leader yet, or a
		 * minority): pause before resending, longer each time. */
		h->nack_ms = h->nack_ms * 2 > 2000 ? 2000 : h->nack_ms * 2;
		pthread_mutex_lock(&h->mu);
		ilist_prepend(&h->queue, &again);
		pthread_mutex_unlock(&h->mu);
	}
}

/* Reads every frame waiting.  0, or -1 when the connection is gone. */
static int
read_frames(hopamqp_sender *h, amqp_connection_state_t conn)
{
	for (;;) {
		amqp_frame_t f;
		struct timeval tv = {0, 0};
		int rv = amqp_simple_wait_frame_noblock(conn, &f, &tv);
		if (rv == AMQP_STATUS_TIMEOUT)
			return 0;
		if (rv != AMQP_STATUS_OK) {
			log_warn("hop %s: connection lost: %s", h->cl.queue, amqp_error_string2(rv));
			return -1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *a = f.payload.method.decoded;
			confirmed(h, a->delivery_tag, a->multiple, 1);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *n = f.payload.method.decoded;
			confirmed(h, n->delivery_tag, n->multiple, 0);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_channel_close_t *m = f.payload.method.decoded;
			log_warn("hop %s: closed by the server: %u %.*s", h->cl.queue, m->reply_code,
			    (int)m->reply_text.len, (char *)m->reply_text.bytes);
			return -1;
		}
		default:
			break;
		}
		amqp_maybe_release_buffers(conn);
	}
}

static void *
sender_main(void *arg)
{
	hopamqp_sender *h = arg;
	amqp_connection_state_t conn = NULL;
	char what[300];
	snprintf(what, sizeof(what), "hop %s (sender)", h->cl.queue);
	while (!h->closed) {
		if (conn == NULL) {
			conn = cluster_connect(&h->cl, what);
			if (conn == NULL) {
				cluster_pause(&h->cl, &h->closed);
				continue;
			}
			amqp_confirm_select(conn, 1);
			if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
				amqp_destroy_connection(conn);
				conn = NULL;
				cluster_pause(&h->cl, &h->closed);
				continue;
			}
			h->next_tag = 0;
		}
		int broken = 0;
		/* Publish what is due, in order; an item paused after a nack
		 * holds back those behind it only until its time comes. */
		int64_t now = proc_now_ms(), wait_ms = 1000;
		pthread_mutex_lock(&h->mu);
		while (h->queue.head && !broken) {
			item *it = h->queue.head;
			if (it->not_before > now) {
				wait_ms = it->not_before - now;
				break;
			}
			h->queue.head = it->next;
			if (h->queue.head == NULL)
				h->queue.tail = NULL;
			pthread_mutex_unlock(&h->mu);
			/* One the connection failed to take joins the
			 * unconfirmed ones, which go back in order below. */
			broken = publish(h, conn, it) < 0;
			ilist_push(&h->unconfirmed, it);
			pthread_mutex_lock(&h->mu);
		}
		pthread_mutex_unlock(&h->mu);
		if (!broken && !amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) {
			struct pollfd pf[2] = {{amqp_get_sockfd(conn), POLLIN, 0}, {h->wake[0], POLLIN, 0}};
			poll(pf, 2, (int)(wait_ms < 1000 ? wait_ms : 1000));
			if (pf[1].revents & POLLIN) {
				char b[64];
				while (read(h->wake[0], b, sizeof(b)) > 0)
					;
			}
		}
		if (!broken)
			broken = read_frames(h, conn) < 0;
		if (broken) {
			/* Everything unconfirmed goes out again on the next
			 * connection (some of it may be in the queue already:
			 * duplicates, which the receivers drop by message_id). */
			amqp_destroy_connection(conn);
			conn = NULL;
			for (item *it = h->unconfirmed.head; it; it = it->next)
				it->tag = 0;
			pthread_mutex_lock(&h->mu);
			ilist_prepend(&h->queue, &h->unconfirmed);
			pthread_mutex_unlock(&h->mu);
			cluster_pause(&h->cl, &h->closed);
		}
	}
	if (conn) {
		amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
	}
	/* Closed: every batch not confirmed is abandoned (it stays
	 * unacknowledged upstream). */
	pthread_mutex_lock(&h->mu);
	ilist_prepend(&h->queue, &h->unconfirmed);
	item *it = h->queue.head;
	h->queue.head = h->queue.tail = NULL;
	pthread_mutex_unlock(&h->mu);
	while (it) {
		item *next = it->next;
		item_finish(h, it, -1);
		it = next;
	}
	return NULL;
}

hopamqp_sender *
hopamqp_sender_open(const char *urls, const char *queue, int window, char *err, size_t errcap)
{
	hopamqp_sender *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	if (cluster_init(&h->cl, urls, queue, err, errcap) < 0) {
		free(h);
		return NULL;
	}
	if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errcap, "pipe: %s", strerror(errno));
		cluster_free(&h->cl);
		free(h);
		return NULL;
	}
	h->window = window < 1 ? 1 : window;
	h->nack_ms = 100;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->io, NULL, sender_main, h) != 0) {
		snprintf(err, errcap, "cannot start a thread");
		close(h->wake[0]);
		close(h->wake[1]);
		cluster_free(&h->cl);
		free(h);
		return NULL;
	}
	return h;
}

int
hopamqp_send(hopamqp_sender *h, const void *data, size_t len, hop_done_fn done, void *arg)
{
	item *it = calloc(1, sizeof(*it));
	if (it == NULL || (it->data = malloc(len ? len : 1)) == NULL) {
		free(it);
		return -1;
	}
	memcpy(it->data, data, len);
	it->len = len;
	it->fn = done;
	it->arg = arg;
	uuid_t u;
	uuid_generate(u);
	uuid_unparse_lower(u, it->id);
	pthread_mutex_lock(&h->mu);
	while (!h->closed && h->inflight >= h->window)
		pthread_cond_wait(&h->cv, &h->mu);
	if (h->closed) {
		pthread_mutex_unlock(&h->mu);
		free(it->data);
		free(it);
		return -1;
	}
	h->inflight++;
	ilist_push(&h->queue, it);
	pthread_mutex_unlock(&h->mu);
	if (write(h->wake[1], "", 1) < 0) {
		/* Full pipe: the thread has wake-ups pending already. */
	}
	return 0;
}

int
hopamqp_inflight(hopamqp_sender *h)
{
	pthread_mutex_lock(&h->mu);
	int n = h->inflight;
	pthread_mutex_unlock(&h->mu);
	return n;
}

void
hopamqp_sender_shutdown(hopamqp_sender *h)
{
	pthread_mutex_lock(&h->mu);
	h->closed = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (write(h->wake[1], "", 1) < 0) {
		/* Full pipe: it wakes anyway. */
	}
}

void
hopamqp_sender_close(hopamqp_sender *h)
{
	if (h == NULL)
		return;
	hopamqp_sender_shutdown(h);
	pthread_join(h->io, NULL);
	close(h->wake[0]);
	close(h->wake[1]);
	cluster_free(&h->cl);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* ---- receiver ------------------------------------------------------------ */

struct hopamqp_receiver {
	char *urls;
	char queue[256];
	hop_handler fn;
	void *arg;
	int workers;
	pthread_t *threads;
	atomic_int stop;
	seen *seen;          /* message_ids handled (HOPAMQP_SEEN) */
};

/* Opens a consumer on a fresh connection: NULL when no node answered. */
static amqp_connection_state_t
consumer_connect(hopamqp_receiver *h, cluster *cl, const char *what)
{
	amqp_connection_state_t conn = cluster_connect(cl, what);
	if (conn == NULL)
		return NULL;
	/* Prefetch 16: with 2 the broker's deliveries, not the handler,
	 * limited a consumer (bench/hop: 250k against 390k records/s). */
	amqp_basic_qos(conn, 1, 0, 16, 0);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		amqp_basic_consume(conn, 1, amqp_cstring_bytes(h->queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
		r = amqp_get_rpc_reply(conn);
	}
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		log_warn("%s: cannot consume: %s", what, reply_text(r));
		amqp_destroy_connection(conn);
		return NULL;
	}
	return conn;
}

/* One delivery: dedup, handle, acknowledge.  0, or -1 when the
 * connection failed. */
static int
deliver(hopamqp_receiver *h, amqp_connection_state_t conn, amqp_envelope_t *env)
{
	char id[40] = "";
	amqp_basic_properties_t *p = &env->message.properties;
	if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len < sizeof(id)) {
		memcpy(id, p->message_id.bytes, p->message_id.len);
		id[p->message_id.len] = 0;
	}
	if (id[0] && seen_has(h->seen, id, strlen(id)))
		return amqp_basic_ack(conn, 1, env->delivery_tag, 0) == 0 ? 0 : -1;
	int st = h->fn(h->arg, env->message.body.bytes, env->message.body.len);
	if (st == HOP_OK) {
		if (id[0])
			seen_add(h->seen, id, strlen(id));
		return amqp_basic_ack(conn, 1, env->delivery_tag, 0) == 0 ? 0 : -1;
	}
	usleep(50000);
	return amqp_basic_reject(conn, 1, env->delivery_tag, 1) == 0 ? 0 : -1;
}

static void *
worker_main(void *arg)
{
	hopamqp_receiver *h = arg;
	cluster cl;
	char err[300], what[300];
	snprintf(what, sizeof(what), "hop %s (receiver)", h->queue);
	if (cluster_init(&cl, h->urls, h->queue, err, sizeof(err)) < 0) {
		log_error("%s: %s", what, err);
		return NULL;
	}
	/* Spread the workers over the nodes. */
	cl.next = rand() % cl.n;
	amqp_connection_state_t conn = NULL;
	while (!h->stop) {
		if (conn == NULL) {
			conn = consumer_connect(h, &cl, what);
			if (conn == NULL) {
				cluster_pause(&cl, &h->stop);
				continue;
			}
		}
		amqp_maybe_release_buffers(conn);
		amqp_envelope_t env;
		struct timeval tv = {0, 100000};
		amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
		int broken = 0;
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			broken = deliver(h, conn, &env) < 0;
			amqp_destroy_envelope(&env);
		} else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
			continue;
		} else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
			/* A frame other than a delivery: a cancel or a close
			 * ends this consumer; anything else is passed over. */
			amqp_frame_t f;
			if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK) {
				broken = 1;
			} else if (f.frame_type == AMQP_FRAME_METHOD &&
			    (f.payload.method.id == AMQP_BASIC_CANCEL_METHOD ||
				f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
				f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
				log_warn("%s: consumer ended by the server (method 0x%08x)", what,
				    (unsigned)f.payload.method.id);
				broken = 1;
			}
		} else {
			log_warn("%s: connection lost: %s", what, reply_text(r));
			broken = 1;
		}
		if (broken) {
			amqp_destroy_connection(conn);
			conn = NULL;
			cluster_pause(&cl, &h->stop);
		}
	}
	if (conn) {
		/* Unacknowledged deliveries go back to the queue. */
		amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
	}
	cluster_free(&cl);
	return NULL;
}

hopamqp_receiver *
hopamqp_receiver_open(const char *urls, const char *queue, int workers, hop_handler fn, void *arg, char *err,
    size_t errcap)
{
	cluster check;
	if (cluster_init(&check, urls, queue, err, errcap) < 0)
		return NULL;
	cluster_free(&check);
	hopamqp_receiver *h = calloc(1, sizeof(*h));
	if (h == NULL || (h->urls = strdup(urls)) == NULL || (h->seen = seen_new(HOPAMQP_SEEN)) == NULL) {
		if (h)
			free(h->urls);
		free(h);
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	snprintf(h->queue, sizeof(h->queue), "%s", queue);
	h->fn = fn;
	h->arg = arg;
	h->workers = workers < 1 ? 1 : workers;
	h->threads = calloc((size_t)h->workers, sizeof(pthread_t));
	srand((unsigned)getpid() ^ (unsigned)proc_now_ms());
	for (int i = 0; i < h->workers; i++)
		pthread_create(&h->threads[i], NULL, worker_main, h);
	return h;
}

void
hopamqp_receiver_stop(hopamqp_receiver *h)
{
	h->stop = 1;
}

void
hopamqp_receiver_close(hopamqp_receiver *h)
{
	if (h == NULL)
		return;
	h->stop = 1;
	for (int i = 0; i < h->workers; i++)
		pthread_join(h->threads[i], NULL);
	seen_free(h->seen);
	free(h->threads);
	free(h->urls);
	free(h);
}
