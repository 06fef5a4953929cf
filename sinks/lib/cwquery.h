/* cwquery: what the cloudwatchMetric and cloudwatchAlarm sinks share: a
 * CloudWatch call in the query protocol (target-apis.json "cloudwatch":
 * protocol "query", API version 2010-08-01, signing name "monitoring",
 * endpoint id CLOUDWATCH).  The parameters go in a form body, never in
 * the URL (libcurl 7.88 signs an unsorted query string wrongly:
 * BACKENDS.md caveat 1c); the answer is XML, and an error answer's <Code>
 * decides the verdict as for every AWS sink (awssink_send).
 *
 * A sink builds its job's parameters in j->entry with cwq_param, in
 * prepare (so a value that cannot be sent fails there), and runs with
 * cwq_main: one job, one request. */
#ifndef IOTRULES_CWQUERY_H
#define IOTRULES_CWQUERY_H

#include "common/buf.h"
#include "sinks/lib/awssink.h"

/* Appends "&<name>=<value>" to b, value percent-encoded (form body). */
void cwq_param(buf *b, const char *name, const char *value);

/* Runs a sink whose every job is one request (batch_max 0): prepare
 * builds the job's parameters in j->entry with cwq_param; each job is
 * sent as "Action=<action>&Version=2010-08-01" followed by them, and
 * completes when the answer comes (awssink_send).  action and call must
 * be static.  Returns the exit code (awssink_main). */
int cwq_main(int argc, char **argv, int (*prepare)(void *, sink_job *), const char *action,
    const awssink_call *call);

#endif
