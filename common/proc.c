#include "common/proc.h"
#include "common/opt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* Written by the signal handler, read by every thread: lock-free atomics
 * are safe in a handler and, unlike a volatile sig_atomic_t, not a data
 * race between threads. */
static atomic_int stop_flag, reload_flag;
static atomic_uint_fast64_t c_in, c_out, c_failed, c_pending, c_retried, c_pending_bytes;
static atomic_int_fast64_t c_oldest_ms;
/* The last error text, for status; "" none.  Guarded by last_error_mu. */
static pthread_mutex_t last_error_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512];
static atomic_int extra_stats;
static atomic_int spool_stats;
static atomic_uint_fast64_t c_spool_msgs, c_spool_bytes;
static atomic_int_fast64_t c_spool_oldest_ms;
/* Seconds; the supervisor renders them as the le labels of
 * iotrules_action_delivery_seconds.  From a millisecond (the resolution
 * of the envelope's receive time) to five minutes (a destination down). */
const double proc_latency_le_s[PROC_LATENCY_NLE] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1, 2.5, 5, 10, 30, 60, 300};
static atomic_int latency_stats;
static atomic_uint_fast64_t c_latency[PROC_LATENCY_NLE + 1], c_latency_sum_ms;
#define MAX_SECTIONS 4
static struct { const char *key; proc_stats_fn fn; void *arg; } sections[MAX_SECTIONS];
static int nsections;
static atomic_int ready_flag, stats_stop;
static pthread_t stats_thread;
static int stats_running;
static char stats_path[4400], stats_tmp[4500], stats_stage[64], stats_name[128];
static int64_t started_ms;

/* Read by the signal handler, on whichever thread takes the signal: a
 * lock-free atomic is safe there. */
static atomic_int watchdog_ms;
static char watchdog_line[512];

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		reload_flag = 1;
		return;
	}
	int ms = atomic_load(&watchdog_ms);
	if (!stop_flag && ms > 0) {
		struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
		setitimer(ITIMER_REAL, &it, NULL);
	}
	stop_flag = 1;
}

static void
on_watchdog(int sig)
{
	(void)sig;
	/* Only async-signal-safe calls here: the line was formatted ahead. */
	if (write(2, watchdog_line, strlen(watchdog_line)) < 0) {
		/* nowhere left to say it */
	}
	_exit(111);
}

void
proc_stop_watchdog(int ms)
{
	char name[160];
	log_json_str(name, sizeof(name), stats_name[0] ? stats_name : "iotrules");
	snprintf(watchdog_line, sizeof(watchdog_line),
	    "{\"level\":\"error\",\"proc\":%s,\"msg\":\"did not stop within %d ms of SIGTERM; exiting "
	    "now (what was not finished stays unacknowledged and is redone)\"}\n", name, ms);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_watchdog;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	atomic_store(&watchdog_ms, ms);
}

void
proc_init(const char *default_name)
{
	log_init(default_name);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	started_ms = proc_now_ms();
}

int
proc_opt(proc_conf *c, int argc, char **argv, int *i)
{
	const char *o = argv[*i];
	const char **dst = NULL;
	if (strcmp(o, "--run-dir") == 0)
		dst = &c->run_dir;
	else if (strcmp(o, "--state-dir") == 0)
		dst = &c->state_dir;
	else if (strcmp(o, "--name") == 0)
		dst = &c->name;
	if (dst == NULL)
		return 0;
	*dst = opt_value(argc, argv, i);
	if (dst == &c->name)
		log_init(c->name);
	return 1;
}

int64_t
proc_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
stats_write(void)
{
	/* Sections are rendered before the file is opened: a section that
	 * takes a while (many rules) keeps no file open meanwhile. */
	buf extra = BUF_ZERO;
	if (atomic_load(&spool_stats))
		buf_printf(&extra, ",\"spool\":{\"messages\":%llu,\"bytes\":%llu,\"oldest_ms\":%lld}",
		    (unsigned long long)atomic_load(&c_spool_msgs), (unsigned long long)atomic_load(&c_spool_bytes),
		    (long long)atomic_load(&c_spool_oldest_ms));
	if (atomic_load(&latency_stats)) {
		buf_adds(&extra, ",\"latency\":{\"counts\":[");
		for (int i = 0; i <= PROC_LATENCY_NLE; i++)
			buf_printf(&extra, "%s%llu", i ? "," : "", (unsigned long long)atomic_load(&c_latency[i]));
		buf_printf(&extra, "],\"sum_ms\":%llu}", (unsigned long long)atomic_load(&c_latency_sum_ms));
	}
	for (int i = 0; i < nsections; i++) {
		buf_printf(&extra, ",\"%s\":", sections[i].key);
		sections[i].fn(&extra, sections[i].arg);
	}
	FILE *f = fopen(stats_tmp, "w");
	if (f == NULL) {
		buf_free(&extra);
		return;
	}
	fprintf(f,
	    "{\"name\":\"%s\",\"stage\":\"%s\",\"pid\":%d,\"started_ms\":%lld,"
	    "\"ready\":%s,\"in\":%llu,\"out\":%llu,\"failed\":%llu,\"pending\":%llu",
	    stats_name, stats_stage, (int)getpid(), (long long)started_ms,
	    atomic_load(&ready_flag) ? "true" : "false",
	    (unsigned long long)atomic_load(&c_in), (unsigned long long)atomic_load(&c_out),
	    (unsigned long long)atomic_load(&c_failed), (unsigned long long)atomic_load(&c_pending));
	if (extra_stats) {
		char le[1100];
		pthread_mutex_lock(&last_error_mu);
		log_json_str(le, sizeof(le), last_error);
		pthread_mutex_unlock(&last_error_mu);
		fprintf(f, ",\"retried\":%llu,\"pending_bytes\":%llu,\"oldest_ms\":%lld,\"last_error\":%s",
		    (unsigned long long)atomic_load(&c_retried), (unsigned long long)atomic_load(&c_pending_bytes),
		    (long long)atomic_load(&c_oldest_ms), le);
	}
	if (extra.len)
		fwrite(extra.data, 1, extra.len, f);
	buf_free(&extra);
	fputs("}\n", f);
	/* A file cut short (disk full) must not replace a good one: the
	 * supervisor would read no counters from it. */
	if (fclose(f) != 0 || rename(stats_tmp, stats_path) != 0)
		unlink(stats_tmp);
}

static void *
stats_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stats_stop)) {
		stats_write();
		for (int i = 0; i < 10 && !atomic_load(&stats_stop); i++)
			usleep(50000);
	}
	return NULL;
}

void
proc_stats_start(const proc_conf *c, const char *stage)
{
	if (c->run_dir == NULL || c->name == NULL)
		return;
	char dir[4096];
	proc_path(dir, sizeof(dir), c->run_dir, "stats");
	proc_mkdirs(dir);
	snprintf(stats_path, sizeof(stats_path), "%s/%s.json", dir, c->name);
	snprintf(stats_tmp, sizeof(stats_tmp), "%s/.%s.json.tmp", dir, c->name);
	snprintf(stats_stage, sizeof(stats_stage), "%s", stage);
	snprintf(stats_name, sizeof(stats_name), "%s", c->name);
	stats_write();
	if (pthread_create(&stats_thread, NULL, stats_main, NULL) == 0)
		stats_running = 1;
}

void
proc_ready(void)
{
	atomic_store(&ready_flag, 1);
	if (stats_path[0])
		stats_write();
}

void
proc_stats_stop(void)
{
	if (!stats_running)
		return;
	atomic_store(&stats_stop, 1);
	pthread_join(stats_thread, NULL);
	stats_running = 0;
	stats_write();
}

void proc_count_in(uint64_t n) { atomic_fetch_add(&c_in, n); }
void proc_count_out(uint64_t n) { atomic_fetch_add(&c_out, n); }
void proc_count_failed(uint64_t n) { atomic_fetch_add(&c_failed, n); }
void proc_set_pending(uint64_t n) { atomic_store(&c_pending, n); }
void proc_count_retried(uint64_t n) { extra_stats = 1; atomic_fetch_add(&c_retried, n); }

void
proc_set_delivery(uint64_t pending_bytes, int64_t oldest_ms)
{
	extra_stats = 1;
	atomic_store(&c_pending_bytes, pending_bytes);
	atomic_store(&c_oldest_ms, oldest_ms);
}

void
proc_set_spool(uint64_t messages, uint64_t bytes, int64_t oldest_ms)
{
	atomic_store(&c_spool_msgs, messages);
	atomic_store(&c_spool_bytes, bytes);
	atomic_store(&c_spool_oldest_ms, oldest_ms);
	atomic_store(&spool_stats, 1);
}

void
proc_observe_latency_ms(int64_t ms)
{
	if (ms < 0)
		ms = 0;   /* clocks of two processes: never a negative latency */
	int i = 0;
	while (i < PROC_LATENCY_NLE && (double)ms / 1000.0 > proc_latency_le_s[i])
		i++;
	atomic_fetch_add(&c_latency[i], 1);
	atomic_fetch_add(&c_latency_sum_ms, (uint64_t)ms);
	atomic_store(&latency_stats, 1);
}

int
proc_stats_section(const char *key, proc_stats_fn fn, void *arg)
{
	if (nsections == MAX_SECTIONS)
		return -1;
	sections[nsections].key = key;
	sections[nsections].fn = fn;
	sections[nsections++].arg = arg;
	return 0;
}

void
proc_set_last_error(const char *msg)
{
	pthread_mutex_lock(&last_error_mu);
	snprintf(last_error, sizeof(last_error), "%s", msg);
	pthread_mutex_unlock(&last_error_mu);
}

int
proc_stopping(void)
{
	return stop_flag;
}

int
proc_take_reload(void)
{
	if (!reload_flag)
		return 0;
	reload_flag = 0;
	return 1;
}

void
proc_sleep_ms(int ms)
{
	for (int t = 0; t < ms && !stop_flag; t += 10)
		usleep(10000);
}

int
proc_check_ipc_paths(const char *run_dir, const char *name, char *err, size_t errcap)
{
	/* The longest action type name (cloudwatchmetric) and, without a
	 * name, the longest instance name the supervisor makes of it. */
	char path[8192];
	const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	snprintf(path, sizeof(path), "%s/jobs/cloudwatchmetric/%s.ipc", run_dir,
	    name ? name : "sink-cloudwatchmetric-999");
	if (strlen(path) > max) {
		snprintf(err, errcap, "run_dir %s is too long: the hop socket %s would be %zu bytes, "
		    "more than the %zu a Unix socket path can hold", run_dir, path, strlen(path), max);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/control.sock", run_dir);
	if (strlen(path) > max) {
		snprintf(err, errcap, "run_dir %s is too long for the control socket %s (%zu bytes, at most %zu)",
		    run_dir, path, strlen(path), max);
		return -1;
	}
	return 0;
}

char *
proc_path(char *out, size_t cap, const char *a, const char *b)
{
	snprintf(out, cap, "%s/%s", a, b);
	return out;
}

int
proc_mkdirs(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}
