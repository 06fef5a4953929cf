/* arena: a bump allocator for values that all die together.
 *
 * The SQL evaluator allocates every intermediate value of one message's
 * evaluation here and frees them at once with arena_reset, which keeps
 * the hot path free of malloc/free pairs and of ownership bookkeeping:
 * whatever arena_alloc returns belongs to the arena.  Allocation failure
 * aborts (like redis's zmalloc): a rules engine that cannot allocate a few
 * bytes cannot do anything useful and must be restarted. */
#ifndef IOTRULES_ARENA_H
#define IOTRULES_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;
typedef struct arena {
	arena_chunk *head;
	size_t chunk_size;
} arena;

#define ARENA_ZERO {NULL, 0}

void *arena_alloc(arena *a, size_t n);           /* zeroed, 16-aligned */
char *arena_strndup(arena *a, const char *s, size_t n); /* NUL-terminated */
void arena_reset(arena *a);  /* frees all but the first chunk */
void arena_free(arena *a);   /* frees everything */

#endif
