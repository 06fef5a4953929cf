/* tsrecord: Amazon Timestream records from a rule's result, as the
 * timestream action writes them (ACTIONS.md §2.22).  Owned by the
 * timestream sink.
 *
 * One record per top-level attribute of the result (a JSON object), null
 * attributes skipped: the action's dimensions (DimensionValueType VARCHAR),
 * MeasureName the attribute's name, MeasureValue its value as text and
 * MeasureValueType from the JSON: true/false BOOLEAN; a number without a
 * point or exponent BIGINT (one beyond 64 bits DOUBLE); another number
 * DOUBLE, in either case the number's own text (never rounded through a
 * double); a string VARCHAR, unchanged; an object or array VARCHAR holding
 * its compact JSON.  Time and TimeUnit are the caller's.
 *
 * What Timestream would refuse for a whole WriteRecords (so that one bad
 * message cannot sink the others of its request) is refused here: a
 * reserved dimension name, more than 100 records, an empty attribute
 * name, a value empty or over 2,048 characters.
 *
 * Errors: -1 with why (for the errorMessage); out is then undefined.
 * Pure: any thread. */
#ifndef IOTRULES_TSRECORD_H
#define IOTRULES_TSRECORD_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/buf.h"

#define TSRECORD_MAX 100      /* records per message, and per WriteRecords */

/* The Dimensions array (JSON) of the action's "dimensions" parameter
 * ([{"name", "value"}], 1 to 128); 0, or -1 with why. */
int tsrecord_dimensions(buf *out, const cJSON *dimensions, char *why, size_t cap);

/* Appends the records of the result (json, n bytes) to out, separated by
 * commas, each with the Dimensions array dims and the time; returns how
 * many (1..TSRECORD_MAX), or -1 with why (none left is an error too). */
int tsrecord_build(buf *out, const char *json, size_t n, const buf *dims, const char *time, const char *unit,
    char *why, size_t cap);

#endif
