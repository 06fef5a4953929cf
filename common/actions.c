/* actions: see actions.h.  Which sinks are built is decided by the
 * Makefile (the sinks/<source>.c files present at build time), handed in
 * as IOTRULES_SINK_SOURCES, a list with a space on both sides of each
 * name. */
#include "common/actions.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sinks_built.h"

#define ACTION(key, stage, source, failed, flags, required) \
	{key, stage, source, failed, flags, required},
static const action_type table[] = {
#include "common/actions.def"
};
#undef ACTION

#define NROWS ((int)(sizeof(table) / sizeof(table[0])))

int
action_built(const action_type *a)
{
	char word[80];
	snprintf(word, sizeof(word), " %s ", a->source);
	return strstr(IOTRULES_SINK_SOURCES, word) != NULL;
}

const action_type *
action_at(int i)
{
	if (i < 0 || i >= NROWS)
		return NULL;
	return &table[i];
}

const action_type *
action_by_key(const char *key)
{
	const action_type *a;
	for (int i = 0; (a = action_at(i)) != NULL; i++)
		if (strcasecmp(a->key, key) == 0)
			return a;
	return NULL;
}

const action_type *
action_by_stage(const char *stage)
{
	const action_type *a;
	if (strncmp(stage, "sink-", 5) == 0)
		stage += 5;
	for (int i = 0; (a = action_at(i)) != NULL; i++)
		if (strcmp(a->stage, stage) == 0)
			return a;
	return NULL;
}
