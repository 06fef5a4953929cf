#include "common/fanout.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hop.h"
#include "common/log.h"

struct fanout {
	char *run_dir, *name;
	int window;
	pthread_mutex_t mu;
	int n, down;
	char type[FANOUT_MAX_TYPES][32];
	hop_sender *h[FANOUT_MAX_TYPES];
};

fanout *
fanout_new(const char *run_dir, const char *name, int window)
{
	fanout *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->run_dir = strdup(run_dir);
	f->name = strdup(name);
	f->window = window;
	pthread_mutex_init(&f->mu, NULL);
	return f;
}

void
fanout_shutdown(fanout *f)
{
	pthread_mutex_lock(&f->mu);
	f->down = 1;
	for (int i = 0; i < f->n; i++)
		hop_sender_shutdown(f->h[i]);
	pthread_mutex_unlock(&f->mu);
}

void
fanout_free(fanout *f)
{
	if (f == NULL)
		return;
	for (int i = 0; i < f->n; i++)
		hop_sender_close(f->h[i]);
	pthread_mutex_destroy(&f->mu);
	free(f->run_dir);
	free(f->name);
	free(f);
}

static hop_sender *
sender_for(fanout *f, const char *type)
{
	hop_sender *h = NULL;
	pthread_mutex_lock(&f->mu);
	if (f->down) {
		pthread_mutex_unlock(&f->mu);
		return NULL;
	}
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->type[i], type) == 0)
			h = f->h[i];
	if (h == NULL && f->n < FANOUT_MAX_TYPES) {
		char hop[300], err[512];
		snprintf(hop, sizeof(hop), "jobs/%s", type);
		h = hop_sender_open(f->run_dir, hop, f->name, f->window, err, sizeof(err));
		if (h == NULL) {
			log_error("jobs hop for %s: %s", type, err);
		} else {
			snprintf(f->type[f->n], 32, "%s", type);
			f->h[f->n++] = h;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return h;
}

void
fanout_batch_reset(fanout_batch *b)
{
	for (int i = 0; i < b->n; i++)
		buf_reset(&b->b[i]);
	b->n = 0;
	b->jobs = 0;
}

void
fanout_batch_free(fanout_batch *b)
{
	for (int i = 0; i < FANOUT_MAX_TYPES; i++)
		buf_free(&b->b[i]);
	b->n = 0;
}

void
fanout_batch_add(fanout_batch *b, const envelope *job)
{
	char type[32];
	snprintf(type, sizeof(type), "%.*s", (int)job->s[ENV_ACTION].n, job->s[ENV_ACTION].p);
	int i;
	for (i = 0; i < b->n; i++)
		if (strcmp(b->type[i], type) == 0)
			break;
	if (i == b->n) {
		if (b->n == FANOUT_MAX_TYPES)
			return;
		memcpy(b->type[i], type, sizeof(type));
		buf_reset(&b->b[i]);
		env_batch_begin(&b->b[i]);
		b->n++;
	}
	env_append(&b->b[i], job);
	b->jobs++;
}

typedef struct latch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int left, failed;
} latch;

static void
latch_done(void *arg, int status)
{
	latch *l = arg;
	pthread_mutex_lock(&l->mu);
	if (status != HOP_OK)
		l->failed = 1;
	l->left--;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

int
fanout_send(fanout *f, fanout_batch *b)
{
	latch l = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	for (int i = 0; i < b->n; i++) {
		env_batch_end(&b->b[i], 0);
		hop_sender *h = sender_for(f, b->type[i]);
		if (h == NULL) {
			l.failed = 1;
			continue;
		}
		pthread_mutex_lock(&l.mu);
		l.left++;
		pthread_mutex_unlock(&l.mu);
		if (hop_send(h, b->b[i].data, b->b[i].len, latch_done, &l) < 0)
			latch_done(&l, -1);
	}
	pthread_mutex_lock(&l.mu);
	while (l.left > 0)
		pthread_cond_wait(&l.cv, &l.mu);
	pthread_mutex_unlock(&l.mu);
	return l.failed ? -1 : 0;
}
