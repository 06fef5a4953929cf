#include "common/seen.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
	unsigned char key[SEEN_KEY_MAX];
	uint8_t len;              /* 0: empty */
} slot;

struct seen {
	pthread_mutex_t mu;
	slot *ring;
	uint32_t *index;          /* ring position + 1, 0 empty */
	size_t cap, nindex, pos;
};

static uint32_t
hash(const unsigned char *k, size_t n)
{
	uint32_t x = 2166136261u;   /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		x = (x ^ k[i]) * 16777619u;
	return x;
}

seen *
seen_new(size_t cap)
{
	seen *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->cap = cap ? cap : 1;
	s->nindex = s->cap * 2;
	s->ring = calloc(s->cap, sizeof(slot));
	s->index = calloc(s->nindex, sizeof(uint32_t));
	if (s->ring == NULL || s->index == NULL) {
		seen_free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void
seen_free(seen *s)
{
	if (s == NULL)
		return;
	if (s->ring && s->index)
		pthread_mutex_destroy(&s->mu);
	free(s->ring);
	free(s->index);
	free(s);
}

/* The index slot holding key, or -1.  Under mu. */
static long
find(seen *s, const unsigned char *k, size_t n)
{
	for (size_t i = hash(k, n) % s->nindex;; i = (i + 1) % s->nindex) {
		uint32_t v = s->index[i];
		if (v == 0)
			return -1;
		slot *x = &s->ring[v - 1];
		if (x->len == n && memcmp(x->key, k, n) == 0)
			return (long)i;
	}
}

/* Empties index slot i and moves the later entries of its probe run
 * back where a lookup finds them (deletion without tombstones). */
static void
unindex(seen *s, size_t i)
{
	s->index[i] = 0;
	for (size_t j = (i + 1) % s->nindex; s->index[j]; j = (j + 1) % s->nindex) {
		uint32_t v = s->index[j];
		s->index[j] = 0;
		size_t k = hash(s->ring[v - 1].key, s->ring[v - 1].len) % s->nindex;
		while (s->index[k])
			k = (k + 1) % s->nindex;
		s->index[k] = v;
	}
}

int
seen_has(seen *s, const void *key, size_t n)
{
	if (n > SEEN_KEY_MAX)
		n = SEEN_KEY_MAX;
	pthread_mutex_lock(&s->mu);
	int found = find(s, key, n) >= 0;
	pthread_mutex_unlock(&s->mu);
	return found;
}

void
seen_add(seen *s, const void *key, size_t n)
{
	if (n > SEEN_KEY_MAX)
		n = SEEN_KEY_MAX;
	if (n == 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (find(s, key, n) < 0) {
		slot *x = &s->ring[s->pos];
		if (x->len) {
			long old = find(s, x->key, x->len);
			if (old >= 0)
				unindex(s, (size_t)old);
		}
		memcpy(x->key, key, n);
		x->len = (uint8_t)n;
		size_t k = hash(x->key, n) % s->nindex;
		while (s->index[k])
			k = (k + 1) % s->nindex;
		s->index[k] = (uint32_t)s->pos + 1;
		s->pos = (s->pos + 1) % s->cap;
	}
	pthread_mutex_unlock(&s->mu);
}
