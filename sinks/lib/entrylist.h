/* entrylist: a batch request's list of entries, for the sinks whose
 * request bodies wrap the list with more than one member (timestream:
 * DatabaseName and TableName; location: nothing but Updates, its tracker
 * being in the path), which awssink_send_entries does not cover, and the
 * split of a batch into requests without two entries of one key.  Owned
 * by those two sinks.  No errors (appending aborts on out of memory). */
#ifndef IOTRULES_ENTRYLIST_H
#define IOTRULES_ENTRYLIST_H

#include "sinks/lib/sink.h"

/* Appends "[<entry of jobs[0]>,<entry of jobs[1]>,...]" to out. */
void entrylist_add(buf *out, sink_job **jobs, int n);

/* For APIs that answer by a key an entry carries, not by position (a
 * request holding two entries with one key could not tell them apart):
 * moves to group the jobs of jobs[0..*n) for which same() is false with
 * every job moved before, leaves the others in order in jobs[0..*n), and
 * returns how many it moved (at least one when *n > 0). */
int entrylist_take_distinct(sink_job **jobs, int *n, sink_job **group,
    int (*same)(const sink_job *a, const sink_job *b));

#endif
