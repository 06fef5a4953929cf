/* proc: what every long-running stage process shares.
 *
 * - Signals: SIGTERM/SIGINT ask the process to stop (proc_stopping), SIGHUP
 *   to reload (proc_take_reload); SIGPIPE is ignored.
 * - Counters and status: messages in/out/failed are counted with
 *   proc_count_*; a thread writes <run_dir>/stats/<name>.json twice a
 *   second (atomically, by rename) for the supervisor and `iotrules status`.
 *   proc_ready marks the process ready in that file, which is what a
 *   rolling restart waits for.
 * - Metrics for the supervisor's /metrics and `status --json`: a stage's
 *   spool (proc_set_spool), delivery latencies (proc_observe_latency_ms,
 *   fixed buckets) and sections a stage renders itself
 *   (proc_stats_section: evaluate's per-rule counters).  Every counter in
 *   the file only grows during a process's life; the supervisor adds up
 *   the files of its instances and carries a gone instance's last figures
 *   (supervisor/stats.h).
 * - Common options: --run-dir, --state-dir, --name, parsed by proc_opt. */
#ifndef IOTRULES_PROC_H
#define IOTRULES_PROC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct proc_conf {
	const char *run_dir;    /* hops, stats, control socket */
	const char *state_dir;  /* spools */
	const char *name;       /* instance name, e.g. "sink-republish-2" */
} proc_conf;

/* Initialises logging (proc name) and signal handling, and sets the
 * umask to 077: spools, sockets, stats and directories are the owner's
 * alone (a local user without access reads no payload, connects to no
 * hop). */
void proc_init(const char *default_name);

/* Handles --run-dir/--state-dir/--name at argv[*i] (with its value);
 * returns 1 if it consumed the option, 0 if not one of them. */
int proc_opt(proc_conf *c, int argc, char **argv, int *i);

/* Starts the stats writer (no-op when run_dir is NULL). */
void proc_stats_start(const proc_conf *c, const char *stage);
void proc_ready(void);
void proc_stats_stop(void);

void proc_count_in(uint64_t n);
void proc_count_out(uint64_t n);
void proc_count_failed(uint64_t n);
void proc_set_pending(uint64_t n);
/* Delivery stages (sinks) also show: jobs retried, spooled bytes, the
 * age of the oldest job waiting (ms, 0 none) and the last error text
 * (copied; never a secret).  The first call of either adds these to the
 * stats file. */
void proc_count_retried(uint64_t n);
void proc_set_delivery(uint64_t pending_bytes, int64_t oldest_ms);
void proc_set_last_error(const char *msg);

/* The stage's own spool, shown as "spool":{"messages","bytes",
 * "oldest_ms"} (oldest_ms: age of the oldest record waiting, 0 none or
 * unknown).  The first call adds the section. */
void proc_set_spool(uint64_t messages, uint64_t bytes, int64_t oldest_ms);

/* Delivery latency histogram (sinks): the upper bounds in seconds of the
 * buckets, the same for every stage and for the supervisor that adds
 * them up; a last, unbounded bucket (+Inf) follows them.  Written as
 * "latency":{"counts":[PROC_LATENCY_NLE + 1 per-bucket counts, not
 * cumulative],"sum_ms":N} once the first value is observed.  Thread-safe
 * (atomics). */
#define PROC_LATENCY_NLE 16
extern const double proc_latency_le_s[PROC_LATENCY_NLE];
void proc_observe_latency_ms(int64_t ms);

/* A section of the stats file the stage renders itself: twice a second
 * the stats thread calls fn, which appends one JSON value to out; it is
 * written as "key":value.  fn runs on the stats thread (it must lock
 * what it reads); key is borrowed (a literal).  At most 4 sections;
 * register before proc_stats_start.  0, or -1 when full. */
typedef void (*proc_stats_fn)(buf *out, void *arg);
int proc_stats_section(const char *key, proc_stats_fn fn, void *arg);

int proc_stopping(void);

/* A stage promises to stop within 5 s of SIGTERM whatever is down.  After
 * this call, ms milliseconds after the first SIGTERM/SIGINT the process
 * logs that it did not finish stopping and _exits 111, as if killed: safe,
 * because every stage acknowledges only what it has done (its spool and
 * its upstream replay the rest).  The clean stop paths are still meant to
 * finish well before: this is the net under them. */
void proc_stop_watchdog(int ms);
int proc_take_reload(void);
/* Sleeps up to ms, returning early when a stop is requested. */
void proc_sleep_ms(int ms);

/* Checks that the ipc socket paths this instance may listen on fit in a
 * Unix socket address (107 bytes): <run_dir>/jobs/<longest action
 * name>/<name>.ipc, and <run_dir>/control.sock.  0, or -1 with the
 * offending path and the limit in err (the caller exits 100).  name NULL:
 * the longest instance name a supervisor gives (sink-cloudwatchmetric-999). */
int proc_check_ipc_paths(const char *run_dir, const char *name, char *err, size_t errcap);

/* Joins a/b into out ("a/b"); returns out. */
char *proc_path(char *out, size_t cap, const char *a, const char *b);
/* mkdir -p, mode 0700 (before the umask). 0 or -1. */
int proc_mkdirs(const char *path);
int64_t proc_now_ms(void);

#endif
