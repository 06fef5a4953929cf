/* sink: the runtime every iotrules-sink-<action> binary shares.
 *
 * It owns receive → spool → batch → send → retry → ack → failure report,
 * so an action file only turns jobs into requests and judges the answers:
 *
 *   jobs/<action>/ (its .ipc sockets) ──► spool (state/sinks/<action>/<name>)
 *   ──► ops->prepare(job): destination + request entry
 *   ──► batches per destination, cut by count, bytes and linger time
 *   ──► ops->send(batch): asynchronous; each job completes later, from any
 *       thread, with its own verdict (sink_job_done)
 *   ──► OK: done | RETRY/THROTTLED: again after a jittered backoff, on a
 *       timer, until --retry-s is spent | FATAL or retries spent: a failure
 *       record to failures/<name>.ipc (when the rule has an errorAction).
 *
 * A spooled batch is acknowledged only once every one of its jobs is final
 * and its outcome reports are with the error handler; a job that was not
 * finished when the stage stops stays in the spool and is redone.  Requests
 * in flight are bounded by --inflight, jobs held in memory by --window:
 * the rest waits in the spool (back-pressure, never loss).
 *
 * A sink instance also adopts the spool directories of instances that are
 * gone (scaled down, rolled, crashed and replaced): nothing accepted by
 * any instance is lost. */
#ifndef IOTRULES_SINK_H
#define IOTRULES_SINK_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/envelope.h"

typedef enum sink_status {
	SINK_OK = 0,
	SINK_RETRY = 1,      /* transient: connection, timeout, 5xx */
	SINK_THROTTLED = 2,  /* the destination asks us to slow down */
	SINK_FATAL = 3,      /* permanent: retrying cannot help */
} sink_status;

/* One job.  The runtime owns it; the action reads env and params, fills
 * dest/entry/units/solo in prepare, and resource/message (and
 * retry_after_ms) before sink_job_done. */
typedef struct sink_job {
	envelope env;          /* the job; its slices live as long as the job */
	cJSON *params;         /* ENV_PARAMS parsed; NULL if it is not JSON */

	/* Set by prepare: */
	char dest[512];        /* batching key: only jobs with equal dest share a send */
	buf entry;             /* the job's part of a request, as the action likes */
	int units;             /* entries it adds to a request (default 1) */
	int solo;              /* 1: always sent alone */

	/* Set before sink_job_done when the verdict is not OK: */
	char resource[256];    /* failedResource (ERRORS.md §2.1) */
	char message[1024];    /* errorMessage */
	int retry_after_ms;    /* the destination's Retry-After, 0: none */
	/* A job that failed in a batched request whose error document covers
	 * the whole batch (ERRORS.md 2.2, http enableBatching): an id the
	 * batch's jobs share ("" none), their number, and whether the batch
	 * mixed topics (batchAcrossTopics). */
	char batch[40];
	int batch_size, batch_across;

	/* The runtime's own. */
	struct sink_chunk *chunk;
	struct sink_job *next;
	struct sink_send *send;
	sink_status status;
	int attempts;
	int64_t first_fail_ms, due_ms, queued_ms;
} sink_job;

typedef struct sink_ops {
	/* The stage ("republish": hop, binary and stage name); NULL: taken
	 * from argv[0] (iotrules-sink-<stage>), for a source that serves
	 * several actions. */
	const char *action;
	/* "RepublishAction"; NULL: the action's row of common/actions.def. */
	const char *failed_action;
	const char *usage;         /* action-specific options, for --help */
	/* Handles one action-specific option at argv[*i]; returns 1 if taken,
	 * 0 if unknown, -1 if its value is bad.  May be NULL. */
	int (*option)(void *state, int argc, char **argv, int *i);
	/* Called once after options; returns 0, or -1 (process exits 111). */
	int (*start)(void *state);
	/* Turns a job into its destination and entry.  0, or -1 when the job
	 * can never be sent (its resource and message set): a failure at once.
	 * Called on the runtime's thread, once per job (again after a retry
	 * only if the entry was cleared). */
	int (*prepare)(void *state, sink_job *j);
	/* Sends jobs[0..n), all with the same dest, and returns without
	 * waiting: sink_job_done must then be called exactly once for each
	 * job, from any thread, now or later.  The array is the caller's
	 * (copy the pointers you keep); the jobs stay valid until done. */
	void (*send)(void *state, sink_job **jobs, int n);
	/* Called about every 100 ms on the runtime's thread (timeouts of the
	 * action's own); may be NULL. */
	void (*tick)(void *state);
	/* Stops the action's clients.  Every job still in flight must be
	 * completed (sink_job_done) before this returns. */
	void (*stop)(void *state);
	void *state;

	/* The API's limits: most entries (units) and bytes of entries per
	 * send (0: 1 entry; 0 bytes: no limit), and the default linger. */
	int batch_max;
	size_t batch_bytes;
	int linger_ms;
	/* Most sends in flight at once (--inflight caps it; 0: no own limit);
	 * 1 keeps jobs in spool order (stdout). */
	int max_inflight;
} sink_ops;

/* Runs the sink process; returns its exit code. */
int sink_main(int argc, char **argv, const sink_ops *ops);

/* Completes a job sent with ops->send: thread-safe, never blocks. */
void sink_job_done(sink_job *j, sink_status st);

/* Completes a job that failed: formats its message in AWS's shape
 * (ERRORS.md §2.1) from what failed and what the destination said, then
 * sink_job_done.  j->resource must be set. */
void sink_job_fail(sink_job *j, sink_status st, const char *what, const char *received);

/* Formats j->message in AWS's shape, without completing the job. */
void sink_error_message(sink_job *j, const char *what, const char *received);

/* A string parameter of the job ("" when missing or not a string). */
const char *sink_param(const sink_job *j, const char *name);

#endif
