/* stats: the supervisor's counters of the whole pipeline, for
 * `iotrules status [--json]` and the Prometheus endpoint (metrics.h).
 *
 * Every stage process writes <run_dir>/stats/<name>.json twice a second
 * (common/proc.h): its counters (in, out, failed, retried), its pending
 * figures and spool, a sink's delivery latency histogram, evaluate's
 * per-rule counters.  Those counters start at 0 in every process, and
 * processes come and go: a crash restart reuses the name, a rolling
 * restart replaces an instance by a new name, scaling down retires
 * instances.  So that a total never goes backwards, the figures of a
 * process that is gone are carried: when the supervisor reaps a child it
 * calls stats_gone, which reads the child's last stats file (written at
 * its clean exit; after a kill, the last periodic write, at most 0.5 s
 * old: what it counted after that is lost) and adds it to the carried
 * totals of its stage and its rules.  The file stays; it names a pid that
 * no instance has any more, and only a file naming an instance's current
 * pid is read as its figures.  A total is the carried figures plus those
 * of the live processes.
 *
 * A stats file that cannot be read for a live process (being replaced,
 * cut short) is stood in for by the last one read for that process, so a
 * read failure never lowers a total either.  A supervisor that restarts
 * starts from 0 (Prometheus takes that as a counter reset).
 *
 * Not thread-safe: the supervisor is single-threaded.  Views are the
 * caller's (stats_view_free). */
#ifndef IOTRULES_SUPERVISOR_STATS_H
#define IOTRULES_SUPERVISOR_STATS_H

#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/proc.h"

/* Latency histogram: per-bucket counts (not cumulative) for the upper
 * bounds proc_latency_le_s, then the +Inf bucket; the sum in ms. */
typedef struct stats_hist {
	uint64_t counts[PROC_LATENCY_NLE + 1];
	uint64_t sum_ms;
} stats_hist;

/* What the supervisor tells about one of its instances (a child slot). */
typedef struct stats_proc {
	const char *stage, *name;
	pid_t pid;             /* 0: not running (restarting, stopped) */
	int64_t started_ms;
	int restarts, retiring;
} stats_proc;

/* One instance, as its stats file shows it. */
typedef struct stats_inst {
	char stage[64], name[96];
	pid_t pid;
	int64_t uptime_ms;
	int restarts, retiring, ready;
	int delivery;          /* a sink: retried, pending_bytes, oldest_ms mean something */
	int has_spool;         /* spool_* are known */
	uint64_t in, out, failed, retried, pending, pending_bytes;
	int64_t oldest_ms;
	uint64_t spool_messages, spool_bytes;
	int64_t spool_oldest_ms;
	char last_error[512];
} stats_inst;

/* A stage: live instances plus what gone ones carried.  Counters (in,
 * out, failed, retried, restarts, lat) include the carried figures;
 * gauges (pending, spool_*) are the live instances' sum (the oldest age:
 * their maximum).  For a sink stage sink-X these are action X's figures:
 * delivered = out. */
typedef struct stats_stage {
	char stage[64];
	int instances;         /* not retiring */
	int delivery, has_spool, has_lat;
	uint64_t restarts, in, out, failed, retried, pending;
	uint64_t spool_messages, spool_bytes;
	int64_t spool_oldest_ms;
	stats_hist lat;
} stats_stage;

typedef struct stats_rule {
	char *name;            /* owned by the view */
	uint64_t matched, fired, no_result, sql_errors;
} stats_rule;

typedef struct stats_view {
	stats_inst *inst;
	int ninst;
	stats_stage *stage;
	int nstage;
	stats_rule *rule;      /* sorted by name */
	int nrule;
} stats_view;

#define STATS_VIEW_ZERO {NULL, 0, NULL, 0, NULL, 0}

/* The run_dir whose stats/ is read (borrowed; set once, at start). */
void stats_init(const char *run_dir);

/* Reads <run_dir>/stats/<name>.json; the parsed document (the caller's,
 * cJSON_Delete), or NULL if it is missing or not JSON. */
cJSON *stats_file_parse(const char *run_dir, const char *name);

/* The process pid of instance name (stage) is gone (reaped): its last
 * figures join the carried totals.  Call it once per process. */
void stats_gone(const char *stage, const char *name, pid_t pid);

/* A child slot is given up for good (retired): its restart count joins
 * the stage's carried restarts. */
void stats_forget_slot(const char *stage, int restarts);

/* Builds a view: the stages in the order given (every stage listed
 * appears, even with no instance), the instances procs (in that order),
 * and every rule that counted anything.  Out of memory exits 111 (as
 * buf does). */
void stats_collect(const stats_proc *procs, int nprocs, const char (*stages)[64], int nstages, stats_view *v);
void stats_view_free(stats_view *v);

/* `iotrules status`: the instance table with a total line per stage,
 * then the rules and the actions (see README "Commands").  Appends to
 * out. */
void stats_status_text(const stats_view *v, buf *out);
/* `iotrules status --json`: one JSON document on one line. */
void stats_status_json(const stats_view *v, buf *out);

#endif
