/* entrylist: a batch request's list of entries, for the sinks whose
 * request bodies wrap the list with more than one member (timestream:
 * DatabaseName and TableName; location: nothing but Updates, its tracker
 * being in the path), which awssink_send_entries does not cover.  Owned
 * by those two sinks.  No errors (appending aborts on out of memory). */
#ifndef IOTRULES_ENTRYLIST_H
#define IOTRULES_ENTRYLIST_H

#include "sinks/lib/sink.h"

/* Appends "[<entry of jobs[0]>,<entry of jobs[1]>,...]" to out. */
void entrylist_add(buf *out, sink_job **jobs, int n);

#endif
