/* ruletime: the {"value", "unit"} timestamps of the timestream and
 * location actions (ACTIONS.md §2.15, §2.22).  Owned by those two sinks.
 *
 * "value" is an epoch time in "unit" (SECONDS, MILLISECONDS, the default,
 * MICROSECONDS or NANOSECONDS), a template resolved to text: it must be a
 * whole, non-negative number in digits (what timestamp() and
 * time_to_epoch() give; a zero fraction, "1796173748152000.0", as
 * SQL 2015-10-08 arithmetic writes it, is accepted), at most 9999-12-31
 * 23:59:59 UTC.  Without the
 * parameter the time is the one the rules engine received the message at
 * (the job's ts_ms: what timestamp() returns), in MILLISECONDS.
 *
 * Errors: ruletime_get returns why the job's timestamp cannot be used
 * (NULL when it can); nothing else fails.  Pure: any thread. */
#ifndef IOTRULES_RULETIME_H
#define IOTRULES_RULETIME_H

#include <stdint.h>

#include "sinks/lib/sink.h"

typedef struct ruletime {
	char value[24];     /* the epoch time in unit, digits only */
	const char *unit;   /* "MILLISECONDS", ... (a static string) */
	int64_t ms;         /* the same time in ms since the epoch, truncated */
} ruletime;

/* Reads the job's object parameter name ("timestamp") into t.  NULL, or
 * a static text saying what is wrong with it. */
const char *ruletime_get(const sink_job *j, const char *name, ruletime *t);

/* ms since the epoch as ISO 8601 UTC with milliseconds,
 * "2026-12-01T20:00:00.123Z" (out holds at least 25 bytes). */
void ruletime_iso(int64_t ms, char *out, size_t cap);

/* An ISO 8601 time as a service writes it back ("...:00Z",
 * "...:00.123Z", "...:00.123456+00:00", any UTC offset) in ms since the
 * epoch, sub-millisecond digits dropped; -1 when it is not one. */
int64_t ruletime_parse_iso(const char *s);

#endif
