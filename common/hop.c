/* hop: the transport-independent half of hop.h; hopnng.c and hopamqp.c
 * do the work. */
#include "common/hop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hopamqp.h"
#include "common/hopnng.h"

struct hop_sender {
	hopnng_sender *n;    /* exactly one of n and a is set */
	hopamqp_sender *a;
};

struct hop_receiver {
	hopnng_receiver *n;
	hopamqp_receiver *a;
};

static const char *
amqp_urls(void)
{
	const char *u = getenv("IOTRULES_AMQP");
	return u && u[strspn(u, " ,\t")] ? u : NULL;
}

const char *
hop_transport(void)
{
	return amqp_urls() ? "amqp" : "nng";
}

/* The queue of hop: <prefix>.<hop>. */
static void
queue_name(const char *hop, char *out, size_t cap)
{
	const char *p = getenv("IOTRULES_AMQP_PREFIX");
	snprintf(out, cap, "%s.%s", p && *p ? p : "iotrules", hop);
}

hop_sender *
hop_sender_open(const char *run_dir, const char *hop, const char *name, int window, char *err, size_t errcap)
{
	hop_sender *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	const char *urls = amqp_urls();
	if (urls) {
		char q[256];
		queue_name(hop, q, sizeof(q));
		h->a = hopamqp_sender_open(urls, q, window, err, errcap);
	} else {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", run_dir, hop);
		h->n = hopnng_sender_open(dir, name, window, err, errcap);
	}
	if (h->a == NULL && h->n == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

int
hop_send(hop_sender *h, const void *data, size_t len, hop_done_fn done, void *arg)
{
	return h->a ? hopamqp_send(h->a, data, len, done, arg) : hopnng_send(h->n, data, len, done, arg);
}

typedef struct hop_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, status;
} hop_waiter;

static void
waiter_done(void *arg, int status)
{
	hop_waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	w->status = status;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int
hop_send_wait(hop_sender *h, const void *data, size_t len)
{
	hop_waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, -1};
	if (hop_send(h, data, len, waiter_done, &w) < 0)
		return -1;
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	return w.status;
}

int
hop_inflight(hop_sender *h)
{
	return h->a ? hopamqp_inflight(h->a) : hopnng_inflight(h->n);
}

int
hop_drain(hop_sender *h, int timeout_ms)
{
	for (int waited = 0; hop_inflight(h) > 0; waited += 5) {
		if (waited >= timeout_ms)
			return -1;
		usleep(5000);
	}
	return 0;
}

void
hop_sender_shutdown(hop_sender *h)
{
	if (h->a)
		hopamqp_sender_shutdown(h->a);
	else
		hopnng_sender_shutdown(h->n);
}

void
hop_sender_close(hop_sender *h)
{
	if (h == NULL)
		return;
	if (h->a)
		hopamqp_sender_close(h->a);
	else
		hopnng_sender_close(h->n);
	free(h);
}

hop_receiver *
hop_receiver_open(const char *run_dir, const char *hop, int workers, hop_handler fn, void *arg, char *err,
    size_t errcap)
{
	hop_receiver *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	const char *urls = amqp_urls();
	if (urls) {
		char q[256];
		queue_name(hop, q, sizeof(q));
		h->a = hopamqp_receiver_open(urls, q, workers, fn, arg, err, errcap);
	} else {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", run_dir, hop);
		h->n = hopnng_receiver_open(dir, workers, fn, arg, err, errcap);
	}
	if (h->a == NULL && h->n == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void
hop_receiver_stop(hop_receiver *h)
{
	if (h->a)
		hopamqp_receiver_stop(h->a);
	else
		hopnng_receiver_stop(h->n);
}

void
hop_receiver_close(hop_receiver *h)
{
	if (h == NULL)
		return;
	if (h->a)
		hopamqp_receiver_close(h->a);
	else
		hopnng_receiver_close(h->n);
	free(h);
}
