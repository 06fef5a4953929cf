/* stage: the spooled input every consuming stage shares (the sinks and
 * the error handler): its spool at <state_dir>/<kind>/<name>, the hop
 * whose batches are appended to it, the spool size option, and the
 * adoption of the spools of instances that are gone.
 *
 *   stage_input in;
 *   stage_input_open(&in, &pc, "sinks/kinesis", "jobs/kinesis", ...);
 *   ... spool_next(in.sp, ...) / spool_done ...
 *   stage_input_adopt(&in, fn, arg);    when idle
 *   stage_input_stop(&in);              at SIGTERM: refuse new batches
 *   ... join the consumers ...
 *   stage_input_close(&in);
 *
 * A batch arriving on the hop is acknowledged to its sender only once it
 * is in the spool (appended with one write); a full or failing spool
 * answers "retry", so the sender keeps it and resends it (to this or
 * another instance): back-pressure, never loss.  A malformed batch is
 * logged and dropped.
 *
 * With the AMQP hop transport (hop.h), where a failover may deliver a
 * batch twice, a record this instance took recently (the last
 * STAGE_SEEN, by kind, message id, action index and rule) is dropped
 * before the spool: a failover does not multiply deliveries. */
#ifndef IOTRULES_STAGE_H
#define IOTRULES_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/hop.h"
#include "common/proc.h"
#include "common/seen.h"
#include "common/spool.h"

enum { STAGE_SEEN = 65536 };

typedef struct stage_input {
	spool *sp;                 /* this instance's spool (owned) */
	hop_receiver *rx;          /* the hop feeding it (owned) */
	char parent[4000];         /* <state_dir>/<kind>: the siblings' spools */
	const char *name;          /* the instance name (the caller's) */
	const char *what;          /* "jobs", "reports": for log lines */
	uint64_t spool_max;        /* --spool-max-bytes, 0: the default */
	void (*appended)(void);    /* called after each batch is spooled, or NULL */
	seen *taken;               /* AMQP transport: records taken (owned), else NULL */
} stage_input;

/* Handles --spool-max-bytes N at argv[*i]; 1 if taken (in->spool_max
 * set), 0 if not that option, -1 if its value is missing or bad. */
int stage_input_opt(stage_input *in, int argc, char **argv, int *i);

/* Opens <state_dir>/<kind>/<pc->name> (created 0700) and the receiver of
 * <run_dir>/<hopdir> with workers threads.  in->spool_max, what and
 * appended are read from *in.  0, or -1 with err set ("spool: ...",
 * "<hopdir> hop: ..."): the caller exits 111. */
int stage_input_open(stage_input *in, const proc_conf *pc, const char *kind, const char *hopdir,
    int workers, char *err, size_t errcap);

/* Runs spool_adopt_orphans over the siblings (fn drains each one). */
int stage_input_adopt(stage_input *in, void (*fn)(spool *orphan, const char *name, void *arg), void *arg);

/* Refuses new batches and wakes whoever waits in spool_next. */
void stage_input_stop(stage_input *in);

/* Frees the spool; every thread using it must be joined first. */
void stage_input_close(stage_input *in);

#endif
