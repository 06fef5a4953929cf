/* seen: a bounded memory of keys handled recently, to drop duplicates.
 *
 * The last `cap` keys added are remembered (a ring; the oldest is
 * forgotten when a new one comes), each up to SEEN_KEY_MAX bytes (longer
 * keys are cut).  Lookups are by an open-addressing index over the ring.
 * Thread-safe.  The AMQP hop remembers the message_ids of the batches it
 * delivered, the stages the ids of the records they took (common/hop.h:
 * a batch may be delivered twice across a failover). */
#ifndef IOTRULES_SEEN_H
#define IOTRULES_SEEN_H

#include <stddef.h>

enum { SEEN_KEY_MAX = 48 };

typedef struct seen seen;

/* NULL when out of memory.  Free with seen_free. */
seen *seen_new(size_t cap);
void seen_free(seen *s);

/* 1 if key (n bytes) is among the remembered ones, else 0. */
int seen_has(seen *s, const void *key, size_t n);

/* Remembers key (n bytes); adding one already there changes nothing. */
void seen_add(seen *s, const void *key, size_t n);

#endif
