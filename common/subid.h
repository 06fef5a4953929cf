/* subid: MQTT 5 subscription identifiers for the rules' topic filters.
 *
 * Why: when two rules' filters overlap (m/+ and m/#), a broker may send
 * one copy of a message per matching subscription (mosquitto 2 does), and
 * evaluate, running every rule whose filter matches the topic on each
 * copy, would fire each rule twice.  With MQTT 5 each subscription carries
 * an identifier and each copy says which subscription(s) it came through;
 * ingest writes those filters into the message (ENV_FILTERS) and evaluate
 * runs only their rules, so each rule sees each message once, as on AWS.
 *
 * The identifier of a filter is derived from its text (SHA-256, 28 bits,
 * never 0), so it is the same in every ingest process and across
 * restarts: copies the broker queued for a persistent session before a
 * restart still map to their filter.  A copy with an identifier that is
 * not one of the current filters' (or without any) maps to nothing, and
 * evaluate then runs every rule whose filter matches, as before.
 *
 * A subid_table is built once per set of filters (the hashing is done
 * there, not per message); it owns its memory: subid_table_free. */
#ifndef IOTRULES_SUBID_H
#define IOTRULES_SUBID_H

#include <stdint.h>

#include "common/buf.h"

typedef struct subid_table {
	int n;
	uint32_t *id;    /* id[i] is the identifier of filter[i] */
	char **filter;
} subid_table;

#define SUBID_TABLE_ZERO {0, NULL, NULL}

/* The identifier of filter: 1 .. 268,435,455 (MQTT 5's range). */
uint32_t subid_of(const char *filter);

/* Builds t (empty before) from the newline-terminated filters of set.
 * 0, or -1 when two filters have the same identifier (identifiers cannot
 * tell them apart: t is then empty and not to be used). */
int subid_table_build(subid_table *t, const char *set);
void subid_table_free(subid_table *t);

/* Appends to out the filters of t whose identifiers are ids[0..n), each
 * followed by '\n'.  Appends nothing if n is 0 or any id is none of t's:
 * the copy is then unattributed. */
void subid_filters(const subid_table *t, const uint32_t *ids, int n, buf *out);

#endif
