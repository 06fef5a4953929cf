/* xalloc: see xalloc.h. */
#include "common/xalloc.h"

#include <stdlib.h>

#include "common/log.h"

void *
xcalloc(size_t n)
{
	return xmust(calloc(1, n ? n : 1));
}

void *
xmust(void *p)
{
	if (p == NULL)
		log_die(111, "out of memory");
	return p;
}
