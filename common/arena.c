#include "common/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	arena_chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

static void *
arena_oom(size_t n)
{
	fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
	abort();
}

void *
arena_alloc(arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (a->head == NULL || a->head->size - a->head->used < n) {
		size_t sz = a->chunk_size ? a->chunk_size : 16384;
		if (sz < n)
			sz = n;
		arena_chunk *c = malloc(sizeof(*c) + sz);
		if (c == NULL)
			return arena_oom(n);
		c->size = sz;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += n;
	memset(p, 0, n);
	return p;
}

char *
arena_strndup(arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);   /* s may be NULL when n is 0 (an empty buf) */
	p[n] = 0;
	return p;
}

void
arena_reset(arena *a)
{
	/* Keep the oldest chunk (the tail of the list): it is the one the
	 * steady state fits in, so reuse avoids a malloc per message. */
	arena_chunk *c = a->head, *keep = NULL;
	while (c) {
		arena_chunk *n = c->next;
		if (n == NULL)
			keep = c;
		else
			free(c);
		c = n;
	}
	a->head = keep;
	if (keep)
		keep->used = 0;
}

void
arena_free(arena *a)
{
	arena_chunk *c = a->head;
	while (c) {
		arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
}
