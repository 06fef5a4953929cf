/* sink: the runtime every iotrules-sink-<action> binary shares.
 *
 * It owns receive → spool → deliver → retry → ack → failure report, so an
 * action file only turns jobs into requests and judges the answers:
 *
 *   jobs/<action>/ (its .ipc sockets) ──► spool (state/sinks/<action>/<name>) ──►
 *   ops->deliver(batch) ──► OK: done | RETRY: backoff, again | FATAL or
 *   retries exhausted: a failure record to failures/<name>.ipc (when the
 *   rule has an errorAction), then done.
 *
 * A sink instance also adopts the spool directories of instances that are
 * gone (scaled down, rolled, crashed and replaced): nothing accepted by
 * any instance is lost. */
#ifndef IOTRULES_SINK_H
#define IOTRULES_SINK_H

#include "common/envelope.h"

typedef enum sink_status { SINK_OK = 0, SINK_RETRY = 1, SINK_FATAL = 2 } sink_status;

typedef struct sink_result {
	sink_status status;
	char resource[256];   /* failedResource (ERRORS.md §2.1) */
	char message[768];    /* errorMessage */
} sink_result;

typedef struct sink_ops {
	const char *action;        /* "republish": the hop and binary name */
	const char *failed_action; /* "RepublishAction" */
	const char *usage;         /* action-specific options, for --help */
	/* Handles one action-specific option at argv[*i]; returns 1 if taken,
	 * 0 if unknown, -1 if its value is bad.  May be NULL. */
	int (*option)(void *state, int argc, char **argv, int *i);
	/* Called once after options; returns 0, or -1 (process exits 111). */
	int (*start)(void *state);
	/* Delivers jobs[0..n): sets res[i] for each.  Called from up to
	 * --workers delivery threads at once (each with its own batch), so it
	 * must be thread-safe unless max_workers is 1. */
	void (*deliver)(void *state, const envelope *jobs, int n, sink_result *res);
	/* Most delivery threads this action allows (0: no limit beyond
	 * --workers); 1 keeps jobs in spool order. */
	int max_workers;
	void (*stop)(void *state);
	void *state;
} sink_ops;

/* Runs the sink process; returns its exit code. */
int sink_main(int argc, char **argv, const sink_ops *ops);

/* Formats an errorMessage in AWS's shape (ERRORS.md §2.1). */
void sink_error_message(sink_result *r, const envelope *job, const char *what,
    const char *received);

#endif
