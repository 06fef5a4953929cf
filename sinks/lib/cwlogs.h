/* cwlogs: CloudWatch Logs PutLogEvents for the cloudwatchLogs sink
 * (ACTIONS.md §2.2; target-apis.json "logs": JSON 1.1, target prefix
 * Logs_20140328, signing name "logs", endpoint id CLOUDWATCH_LOGS).
 *
 * A job's entry holds its log events (cwlogs_add_event: a job has one, or
 * in batchMode several; j->units counts them).  cwlogs_send puts the
 * events of a batch of jobs for one log group, stream and role:
 *
 *   - cut into requests that each span less than 24 hours (a job's own
 *     events must: the sink checks that), whole jobs to a request;
 *   - each request's events sorted by timestamp (the API refuses them
 *     out of order), equal timestamps in arrival order;
 *   - a ResourceNotFoundException answer (no such stream, or no such
 *     group) is followed by CreateLogStream once; when that succeeds or
 *     answers ResourceAlreadyExistsException the request is sent again,
 *     otherwise every job fails with CreateLogStream's error (a missing
 *     group: permanent);
 *   - a 200 answer's rejectedLogEventsInfo gives index ranges of the
 *     sorted request (AWS: the start index inclusive, the end indexes
 *     exclusive): too new [tooNewLogEventStartIndex, n), too old
 *     [0, tooOldLogEventEndIndex), expired [0, expiredLogEventEndIndex).
 *     A job with a rejected event fails for good (SINK_FATAL: the same
 *     event is rejected again), naming how many of its events were
 *     rejected and why; the service kept the others, so nothing is sent
 *     again.  Every other job of the request is done.
 *   - any other error answer is every job's, as awssink_send judges it.
 *
 * Limits the runtime batches by (sink_ops): CWLOGS_MAX_EVENTS events
 * (units) and CWLOGS_MAX_BYTES bytes of entries; an entry is larger than
 * the message bytes + 26 the API counts, so a request never exceeds the
 * API's size. */
#ifndef IOTRULES_CWLOGS_H
#define IOTRULES_CWLOGS_H

#include <stdint.h>

#include "sinks/lib/awssink.h"

#define CWLOGS_MAX_EVENTS 10000
#define CWLOGS_MAX_BYTES 1048576
#define CWLOGS_EVENT_OVERHEAD 26            /* bytes the API counts per event */
#define CWLOGS_MAX_SPAN_MS (24 * 3600 * 1000LL)

/* "Failed to put log events", Amazon CloudWatch Logs. */
extern const awssink_call cwlogs_put;

/* Appends the event {timestamp: ts (epoch ms), message: msg[0..n)} to
 * j's entry and counts it in j->units.  msg must be UTF-8 text (the
 * caller checks). */
void cwlogs_add_event(sink_job *j, int64_t ts, const char *msg, size_t n);

/* Puts the events of jobs[0..n) (one group, stream and role) as above;
 * each job completes when its request's answer comes. */
void cwlogs_send(sink_job **jobs, int n, const char *group, const char *stream, const char *role);

#endif
