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
 * evaluate then runs every rule whose filter matches, as before. */
#ifndef IOTRULES_SUBID_H
#define IOTRULES_SUBID_H

#include <stdint.h>

#include "common/buf.h"

/* The identifier of filter: 1 .. 268,435,455 (MQTT 5's range). */
uint32_t subid_of(const char *filter);

/* 1 if no two of the newline-terminated filters of set have the same
 * identifier (else identifiers cannot tell them apart: not used). */
int subid_distinct(const char *set);

/* Appends to out the filters of set (newline-terminated lines) whose
 * identifiers are ids[0..n), each followed by '\n'.  Appends nothing if
 * n is 0 or any id is none of set's: the copy is then unattributed. */
void subid_filters(const char *set, const uint32_t *ids, int n, buf *out);

#endif
