#include "common/hopnng.h"

#include <dirent.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"

/* ---- sender -------------------------------------------------------------- */

enum { S_IDLE, S_SEND, S_RECV, S_WAIT };

typedef struct slot {
	hopnng_sender *h;
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *copy;     /* the request, kept for resends */
	/* S_IDLE is entered and left under h->mu; the other states change
	 * on NNG's callback threads while hopnng_send scans for an idle slot:
	 * atomic, so that scan is not a data race. */
	atomic_int state;
	hop_done_fn fn;
	void *arg;
} slot;

struct hopnng_sender {
	nng_socket sock;
	slot *slots;
	int window, inflight, closed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void
slot_finish(slot *s, int status)
{
	hopnng_sender *h = s->h;
	hop_done_fn fn = s->fn;
	void *arg = s->arg;
	if (s->copy) {
		nng_msg_free(s->copy);
		s->copy = NULL;
	}
	s->fn = NULL;
	s->arg = NULL;
	if (fn)
		fn(arg, status);
	/* The slot becomes reusable only now, after its callback is done
	 * with it. */
	pthread_mutex_lock(&h->mu);
	s->state = S_IDLE;
	h->inflight--;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void
slot_send(slot *s)
{
	nng_msg *m;
	if (nng_msg_dup(&m, s->copy) != 0) {
		s->state = S_WAIT;
		nng_sleep_aio(100, s->aio);
		return;
	}
	s->state = S_SEND;
	nng_aio_set_msg(s->aio, m);
	nng_ctx_send(s->ctx, s->aio);
}

static int
sender_closed(hopnng_sender *h)
{
	pthread_mutex_lock(&h->mu);
	int c = h->closed;
	pthread_mutex_unlock(&h->mu);
	return c;
}

static void
slot_cb(void *arg)
{
	slot *s = arg;
	int rv = nng_aio_result(s->aio);
	switch (s->state) {
	case S_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			if (rv == NNG_ECLOSED || sender_closed(s->h)) {
				slot_finish(s, -1);
				return;
			}
			s->state = S_WAIT;
			nng_sleep_aio(100, s->aio);
			return;
		}
		s->state = S_RECV;
		nng_ctx_recv(s->ctx, s->aio);
		return;
	case S_RECV: {
		if (rv != 0) {
			if (rv == NNG_ECLOSED || sender_closed(s->h)) {
				slot_finish(s, -1);
				return;
			}
			slot_send(s);
			return;
		}
		nng_msg *m = nng_aio_get_msg(s->aio);
		int st = nng_msg_len(m) >= 1 ? ((unsigned char *)nng_msg_body(m))[0] : HOP_RETRY;
		nng_msg_free(m);
		if (st == HOP_OK) {
			slot_finish(s, HOP_OK);
			return;
		}
		/* The receiver could not take it now: pause, then resend. */
		s->state = S_WAIT;
		nng_sleep_aio(50, s->aio);
		return;
	}
	case S_WAIT:
		if (sender_closed(s->h)) {
			slot_finish(s, -1);
			return;
		}
		slot_send(s);
		return;
	}
}

hopnng_sender *
hopnng_sender_open(const char *dir, const char *name, int window, char *err, size_t errcap)
{
	char path[4096], url[4200];
	int rv;
	if (proc_mkdirs(dir) < 0) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	hopnng_sender *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	if (window < 1)
		window = 1;
	h->window = window;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->slots = calloc((size_t)window, sizeof(slot));
	if ((rv = nng_req0_open(&h->sock)) != 0) {
		snprintf(err, errcap, "nng req socket: %s", nng_strerror(rv));
		free(h->slots);
		free(h);
		return NULL;
	}
	/* A request outstanding this long is sent again (duplicates are
	 * allowed; a lost request is not). */
	nng_socket_set_ms(h->sock, NNG_OPT_REQ_RESENDTIME, 60000);
	for (int i = 0; i < window; i++) {
		slot *s = &h->slots[i];
		s->h = h;
		if ((rv = nng_ctx_open(&s->ctx, h->sock)) != 0 ||
		    (rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
			snprintf(err, errcap, "nng context: %s", nng_strerror(rv));
			hopnng_sender_close(h);
			return NULL;
		}
	}
	/* No unlink here: NNG's ipc listener replaces a stale socket file
	 * (connect refused) and refuses one a live process listens on, which
	 * an unlink would steal from it. */
	snprintf(path, sizeof(path), "%s/%s.ipc", dir, name);
	snprintf(url, sizeof(url), "ipc://%s", path);
	if ((rv = nng_listen(h->sock, url, NULL, 0)) != 0) {
		snprintf(err, errcap, "listen on %s: %s", path, nng_strerror(rv));
		hopnng_sender_close(h);
		return NULL;
	}
	return h;
}

int
hopnng_send(hopnng_sender *h, const void *data, size_t len, hop_done_fn done, void *arg)
{
	slot *s = NULL;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (h->closed) {
			pthread_mutex_unlock(&h->mu);
			return -1;
		}
		for (int i = 0; i < h->window; i++)
			if (h->slots[i].state == S_IDLE) {
				s = &h->slots[i];
				break;
			}
		if (s && h->inflight < h->window)
			break;
		s = NULL;
		pthread_cond_wait(&h->cv, &h->mu);
	}
	s->state = S_SEND;
	h->inflight++;
	pthread_mutex_unlock(&h->mu);

	s->fn = done;
	s->arg = arg;
	if (nng_msg_alloc(&s->copy, len) != 0) {
		slot_finish(s, -1);
		return -1;
	}
	memcpy(nng_msg_body(s->copy), data, len);
	slot_send(s);
	return 0;
}

int
hopnng_inflight(hopnng_sender *h)
{
	pthread_mutex_lock(&h->mu);
	int n = h->inflight;
	pthread_mutex_unlock(&h->mu);
	return n;
}

void
hopnng_sender_shutdown(hopnng_sender *h)
{
	pthread_mutex_lock(&h->mu);
	int was = h->closed;
	h->closed = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	/* Completes every pending send/receive with NNG_ECLOSED; slots
	 * pausing before a resend see closed when they wake. */
	if (!was)
		nng_close(h->sock);
}

void
hopnng_sender_close(hopnng_sender *h)
{
	if (h == NULL)
		return;
	hopnng_sender_shutdown(h);
	for (int i = 0; i < h->window; i++)
		if (h->slots[i].aio)
			nng_aio_stop(h->slots[i].aio);
	for (int i = 0; i < h->window; i++) {
		slot *s = &h->slots[i];
		if (s->state != S_IDLE)
			slot_finish(s, -1);
		if (s->aio)
			nng_aio_free(s->aio);
	}
	free(h->slots);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* ---- receiver ------------------------------------------------------------ */

typedef struct dialed {
	char *path;
	nng_dialer d;
	int seen;
} dialed;

struct hopnng_receiver {
	nng_socket sock;
	char *dir;
	hop_handler fn;
	void *arg;
	int workers;
	pthread_t *threads;
	pthread_t watcher;
	atomic_int stop;   /* read by every worker thread */
	dialed *dials;
	int ndials, capdials;
};

static void
rescan(hopnng_receiver *h)
{
	DIR *d = opendir(h->dir);
	if (d == NULL)
		return;
	for (int i = 0; i < h->ndials; i++)
		h->dials[i].seen = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".ipc") != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", h->dir, de->d_name);
		int found = 0;
		for (int i = 0; i < h->ndials; i++)
			if (strcmp(h->dials[i].path, path) == 0) {
				h->dials[i].seen = 1;
				found = 1;
			}
		if (found)
			continue;
		if (h->ndials == h->capdials) {
			int cap = h->capdials ? h->capdials * 2 : 8;
			dialed *nd = realloc(h->dials, sizeof(dialed) * (size_t)cap);
			if (nd == NULL)
				break;
			h->dials = nd;
			h->capdials = cap;
		}
		char url[4200];
		snprintf(url, sizeof(url), "ipc://%s", path);
		dialed *x = &h->dials[h->ndials];
		/* Non-blocking: NNG keeps redialing if the peer is not there
		 * yet or restarts. */
		if (nng_dial(h->sock, url, &x->d, NNG_FLAG_NONBLOCK) != 0)
			continue;
		x->path = strdup(path);
		x->seen = 1;
		h->ndials++;
	}
	closedir(d);
	/* Sockets that disappeared: their sender is gone for good. */
	for (int i = 0; i < h->ndials;) {
		if (!h->dials[i].seen) {
			nng_dialer_close(h->dials[i].d);
			free(h->dials[i].path);
			h->dials[i] = h->dials[--h->ndials];
		} else {
			i++;
		}
	}
}

static void *
watcher_main(void *arg)
{
	hopnng_receiver *h = arg;
	while (!h->stop) {
		rescan(h);
		for (int i = 0; i < 10 && !h->stop; i++)
			usleep(20000);
	}
	return NULL;
}

static void *
worker_main(void *arg)
{
	hopnng_receiver *h = arg;
	nng_ctx ctx;
	nng_aio *aio;
	if (nng_ctx_open(&ctx, h->sock) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0) {
		log_error("hop %s: cannot open an NNG context", h->dir);
		return NULL;
	}
	/* Wake up regularly to notice a stop request. */
	nng_aio_set_timeout(aio, 100);
	while (!h->stop) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			continue;
		nng_msg *m = nng_aio_get_msg(aio);
		unsigned char st = (unsigned char)h->fn(h->arg, nng_msg_body(m), nng_msg_len(m));
		nng_msg_clear(m);
		nng_msg_append(m, &st, 1);
		nng_aio_set_msg(aio, m);
		nng_aio_set_timeout(aio, 1000);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			nng_msg_free(m);
		nng_aio_set_timeout(aio, 100);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

hopnng_receiver *
hopnng_receiver_open(const char *dir, int workers, hop_handler fn, void *arg, char *err, size_t errcap)
{
	int rv;
	if (proc_mkdirs(dir) < 0) {
		snprintf(err, errcap, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	hopnng_receiver *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	h->dir = strdup(dir);
	h->fn = fn;
	h->arg = arg;
	h->workers = workers < 1 ? 1 : workers;
	if ((rv = nng_rep0_open(&h->sock)) != 0) {
		snprintf(err, errcap, "nng rep socket: %s", nng_strerror(rv));
		free(h->dir);
		free(h);
		return NULL;
	}
	nng_socket_set_ms(h->sock, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(h->sock, NNG_OPT_RECONNMAXT, 500);
	rescan(h);
	h->threads = calloc((size_t)h->workers, sizeof(pthread_t));
	for (int i = 0; i < h->workers; i++)
		pthread_create(&h->threads[i], NULL, worker_main, h);
	pthread_create(&h->watcher, NULL, watcher_main, h);
	return h;
}

void
hopnng_receiver_stop(hopnng_receiver *h)
{
	h->stop = 1;
}

void
hopnng_receiver_close(hopnng_receiver *h)
{
	if (h == NULL)
		return;
	h->stop = 1;
	pthread_join(h->watcher, NULL);
	for (int i = 0; i < h->workers; i++)
		pthread_join(h->threads[i], NULL);
	nng_close(h->sock);
	for (int i = 0; i < h->ndials; i++)
		free(h->dials[i].path);
	free(h->dials);
	free(h->threads);
	free(h->dir);
	free(h);
}
