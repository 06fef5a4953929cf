/* xalloc: allocation that cannot fail.  A sink or stage that runs out of
 * memory cannot do its job safely; it says so on stderr and exits 111
 * (a system failure: the supervisor restarts it, and what it had not
 * finished is still in its spool). */
#ifndef IOTRULES_XALLOC_H
#define IOTRULES_XALLOC_H

#include <stddef.h>

/* calloc(1, n) (n 0: 1 byte); the caller frees it. */
void *xcalloc(size_t n);

/* p, when it is not NULL (the result of an allocating call: cJSON_Create*,
 * cJSON_Print*, strdup, ...); NULL: out of memory, the process exits. */
void *xmust(void *p);

#endif
