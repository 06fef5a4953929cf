/* iotrules-supervisor: runs the pipeline described by one config file.
 *
 * Starts every stage (ingest, evaluate, one sink per action type the rules
 * use, the error handler) with the configured number of instances,
 * restarts a crashed instance with exponential backoff (first restart
 * after 200 ms), and answers the `iotrules` control command on
 * <run_dir>/control.sock: status, scale, restart (rolling), reload.
 * Children share the supervisor's stderr, where every process logs JSON
 * lines.  Exit codes: 100 bad usage or configuration (or another
 * supervisor on the run_dir), 111 a system failure.
 *
 * One supervisor per run_dir: it holds flock(LOCK_EX) on
 * <run_dir>/supervisor.lock (0600, holding its pid); a second one exits
 * 100 naming the first's pid.
 *
 * A supervisor killed -9 leaves no orphans fighting its successor; both
 * halves are done, because either alone has a gap:
 * - Children die with it.  They are started with fork + PR_SET_PDEATHSIG
 *   (SIGTERM, so they stop cleanly: spool synced, nothing acknowledged
 *   that was not done) + a getppid() check (the supervisor may already be
 *   gone before the prctl) + execve.  fork is safe here: the supervisor
 *   never calls NNG (DESIGN.md forbids forking only after NNG use), and
 *   the child resets the signal handlers it inherited before unblocking
 *   signals, so a SIGTERM between fork and execve kills it instead of
 *   setting a flag that execve would forget.
 * - Leftovers are stopped, not adopted.  PDEATHSIG does not cover a
 *   stage that ignores or is slow to act on SIGTERM, a supervisor of an
 *   older build, or a stage someone started by hand on the same run_dir.
 *   So at start, after taking the lock and before starting anything, it
 *   reads the stats files (<run_dir>/stats/NAME.json) and SIGTERMs every
 *   live pid in them whose command line is an iotrules-* binary with
 *   --run-dir naming this run_dir (same inode), waits up to 6 s for them
 *   all to be gone, and SIGKILLs the rest.  Adopting them instead
 *   (watching pids that are not our children, without their exit status)
 *   would make restarts, rolling and status depend on polling and
 *   guesswork; their spools and the broker session outlive them, so
 *   stopping them loses nothing.
 *
 * Rolling restart (`iotrules restart STAGE`): for evaluate, the sinks and
 * the error handler a replacement is started under a new name and must
 * report ready before the old instance is stopped.  ingest is the
 * exception: its persistent MQTT session lives under the client id
 * iotrules-<instance name>, and a replacement under a new name would open
 * a new session and strand what the broker queued for the old one.  So
 * each ingest instance is stopped (SIGTERM, SIGKILL after 6 s) and then
 * started again under the same name (same spool, same client id); the
 * broker holds the messages meanwhile.
 *
 * Broker credentials and TLS files from the config never appear on a
 * command line (ps shows argv to every user): they reach ingest and
 * sink-republish, and only those, as IOTRULES_MQTT_USERNAME, _PASSWORD,
 * _PASSWORD_FILE, _CAFILE, _CERTFILE, _KEYFILE in the environment
 * (/proc/PID/environ is the owner's alone).
 *
 * Destinations (the config's "destinations", common/dest.h): the sinks
 * whose action reads them (http: ACT_DEST in common/actions.def) get
 * --config with the config's absolute path, and evaluate gets it too (a
 * URL no ENABLED destination covers loads with a warning).  A VPC
 * destination names a network namespace ("netns", made by `ip netns
 * add`); the sinks that send through VPC destinations (kafka: ACT_VPC)
 * are started inside it: the forked child joins /run/netns/NAME with
 * setns before execve, so everything they send leaves from there.  A
 * process is in one namespace, so every VPC destination must name the
 * same one (else the config is refused).
 *
 * Counters and metrics: `status` and the Prometheus endpoint
 * (metrics_listen) read every instance's stats file; when a child is
 * reaped its last figures are carried (supervisor/stats.h), so totals
 * survive restarts and scaling.  The endpoint is a plain socket polled in
 * the main loop with control.sock, not NNG's threaded HTTP server (see
 * above: no NNG before fork; supervisor/metrics.h).
 *
 * SIGTERM: every child gets SIGTERM, SIGKILL for those still there after
 * 4.5 s; the supervisor exits 0 within 5 s and removes control.sock only
 * if it is still the socket it bound. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/actions.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/dest.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/proc.h"
#include "evaluate/lib/rules.h"
#include "supervisor/metrics.h"
#include "supervisor/stats.h"

extern char **environ;

#define MAX_PROCS 256
/* How long a stopping ingest (restart) or leftover gets before SIGKILL. */
#define STOP_WAIT_MS 6000
/* The supervisor's own SIGTERM: children get this long, then SIGKILL,
 * all within 5 s. */
#define SHUTDOWN_TERM_MS 4500

typedef struct child {
	char stage[64], name[96];
	pid_t pid;
	int64_t started_ms, next_start_ms;
	int restarts, backoff_ms, retiring, used;
	int holding; /* stopped for a restart under the same name: not respawned by reap */
} child;

static struct {
	config cf;
	char cfg_path[PATH_MAX];   /* absolute: sinks with ACT_DEST read it */
	dest_list dests;
	char netns[256];           /* ACT_VPC sinks run in it ("": none) */
	char bin_dir[4096];
	child procs[MAX_PROCS];
	int counters[64];
	char counter_stage[64][64];
	int ncounters;
	char stages[64][64];
	int nstages;
	int ctl_fd, lock_fd;
	pid_t self;
	dev_t ctl_dev;
	ino_t ctl_ino;
} S;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-supervisor --config FILE\n"
	    "\n"
	    "Runs the iotrules pipeline described by FILE (JSON; see README):\n"
	    "starts every stage, restarts crashed processes with backoff, and\n"
	    "serves `iotrules status|scale|restart|reload` on\n"
	    "<run_dir>/control.sock.  One supervisor per run_dir (a lock); at\n"
	    "start it stops stage processes an earlier supervisor of the run_dir\n"
	    "left behind.  SIGTERM stops everything cleanly; SIGHUP reloads the\n"
	    "rules.  Exit 100: bad usage or configuration; 111: system failure.\n");
}

static int
next_index(const char *stage)
{
	for (int i = 0; i < S.ncounters; i++)
		if (strcmp(S.counter_stage[i], stage) == 0)
			return ++S.counters[i];
	snprintf(S.counter_stage[S.ncounters], 64, "%s", stage);
	S.counters[S.ncounters] = 1;
	return S.counters[S.ncounters++];
}

/* Adds stage to those supervised here, unless "stages" leaves it to
 * another machine. */
static void
add_stage(const char *stage)
{
	if (!config_runs(&S.cf, stage))
		return;
	for (int i = 0; i < S.nstages; i++)
		if (strcmp(S.stages[i], stage) == 0)
			return;
	if (S.nstages < 64)
		snprintf(S.stages[S.nstages++], 64, "%s", stage);
}

static int
is_stage(const child *c, const char *stage)
{
	return strcmp(c->stage, stage) == 0;
}

/* The flags (ACT_AWS, ACT_MQTT) of a sink stage's action type, from
 * common/actions.def; 0 for a stage that is no sink. */
static int
sink_flags(const child *c)
{
	const action_type *t = strncmp(c->stage, "sink-", 5) == 0 ? action_by_stage(c->stage) : NULL;
	return t ? t->flags : 0;
}

/* In the forked child, before execve: the broker credentials and TLS
 * files go to ingest and sink-republish through the environment (config
 * values override inherited ones); every other stage gets none of them. */
static void
child_env(const child *c)
{
	static const char *names[] = {"IOTRULES_MQTT_USERNAME", "IOTRULES_MQTT_PASSWORD",
	    "IOTRULES_MQTT_PASSWORD_FILE", "IOTRULES_MQTT_CAFILE", "IOTRULES_MQTT_CERTFILE",
	    "IOTRULES_MQTT_KEYFILE"};
	const config *cf = &S.cf;
	const char *values[] = {cf->username, cf->password, cf->password_file, cf->cafile, cf->certfile,
	    cf->keyfile};
	int mqtt = is_stage(c, "ingest") || (sink_flags(c) & ACT_MQTT);
	/* A configured password or password file replaces both inherited ones. */
	int pw = cf->password || cf->password_file;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!mqtt || (pw && (i == 1 || i == 2)))
			unsetenv(names[i]);
		if (mqtt && values[i])
			setenv(names[i], values[i], 1);
	}
	/* The hop transport (common/hop.h) is the config's: an inherited
	 * IOTRULES_AMQP must not divert a pipeline configured without one. */
	if (cf->amqp)
		setenv("IOTRULES_AMQP", cf->amqp, 1);
	else
		unsetenv("IOTRULES_AMQP");
	const char *an[] = {"IOTRULES_AMQP_PREFIX", "IOTRULES_AMQP_CAFILE", "IOTRULES_AMQP_CERTFILE",
	    "IOTRULES_AMQP_KEYFILE"};
	const char *av[] = {cf->amqp_prefix, cf->amqp_cafile, cf->amqp_certfile, cf->amqp_keyfile};
	for (size_t i = 0; i < sizeof(an) / sizeof(an[0]); i++) {
		if (av[i])
			setenv(an[i], av[i], 1);
		else
			unsetenv(an[i]);
	}
}

/* In the forked child: joins the VPC destination's network namespace
 * (/run/netns/NAME, as `ip netns add` makes it), so that everything the
 * sink sends leaves from there.  0, or -1 having said why. */
static int
enter_netns(const child *c)
{
	char path[300];
	snprintf(path, sizeof(path), "/run/netns/%s", S.netns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		log_error("cannot start %s in network namespace %s (%s): %s", c->name, S.netns, path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* The network namespace of the VPC destinations (ACTIONS.md §3): the
 * sinks that send through one run in its namespace.  A sink process is in
 * one namespace, so the VPC destinations must name the same one.  0, or
 * -1 with err set. */
/* Builds the argv of an instance and starts it (see the header comment:
 * fork + PR_SET_PDEATHSIG + execve). */
static int
spawn(child *c)
{
	char exe[4300], *argv[40];
	int a = 0;
	const config *cf = &S.cf;
	char tries[16], mv[8], retry[24], expiry[24], spool_max[24];
	snprintf(tries, sizeof(tries), "%d", cf->tries);
	snprintf(mv, sizeof(mv), "%d", cf->mqtt_version);
	snprintf(retry, sizeof(retry), "%lld", cf->retry_s);
	snprintf(expiry, sizeof(expiry), "%lld", cf->session_expiry_s);
	snprintf(spool_max, sizeof(spool_max), "%lld", cf->spool_max_bytes);
	snprintf(exe, sizeof(exe), "%s/iotrules-%s", S.bin_dir, c->stage);
	int sink = strncmp(c->stage, "sink-", 5) == 0;
	argv[a++] = exe;
	argv[a++] = "--run-dir";
	argv[a++] = cf->run_dir;
	argv[a++] = "--name";
	argv[a++] = c->name;
	if (!is_stage(c, "evaluate")) {
		argv[a++] = "--state-dir";
		argv[a++] = cf->state_dir;
	}
	if (is_stage(c, "ingest") && cf->ingest_journal) {
		/* Plugin mode: the broker journals; nothing to subscribe to.
		 * The rules give the plugin its topic filters (ingest writes
		 * them next to the journal). */
		argv[a++] = "--journal";
		argv[a++] = cf->ingest_journal;
		argv[a++] = "--rules";
		argv[a++] = cf->rules;
	} else if (is_stage(c, "ingest")) {
		argv[a++] = "--broker";
		argv[a++] = cf->broker;
		argv[a++] = "--rules";
		argv[a++] = cf->rules;
		argv[a++] = "--mqtt-version";
		argv[a++] = mv;
		argv[a++] = "--session-expiry-s";
		argv[a++] = expiry;
		if (cf->share_group) {
			argv[a++] = "--share";
			argv[a++] = cf->share_group;
		}
	} else if (is_stage(c, "evaluate")) {
		argv[a++] = "--rules";
		argv[a++] = cf->rules;
		if (cf->account_id) {
			argv[a++] = "--account-id";
			argv[a++] = cf->account_id;
		}
		if (cf->assume_role)
			argv[a++] = "--assume-role";
		argv[a++] = "--mqtt-version";
		argv[a++] = mv;
		argv[a++] = "--config";
		argv[a++] = S.cfg_path;
	} else if (sink) {
		argv[a++] = "--tries";
		argv[a++] = tries;
		argv[a++] = "--retry-s";
		argv[a++] = retry;
		if (sink_flags(c) & ACT_MQTT) {
			argv[a++] = "--broker";
			argv[a++] = cf->broker;
			argv[a++] = "--mqtt-version";
			argv[a++] = mv;
		}
		if (sink_flags(c) & ACT_DEST) {
			argv[a++] = "--config";
			argv[a++] = S.cfg_path;
		}
		if (cf->assume_role && (sink_flags(c) & ACT_AWS))
			argv[a++] = "--assume-role";
		if (cf->account_id && (sink_flags(c) & ACT_AWS)) {
			argv[a++] = "--account-id";
			argv[a++] = cf->account_id;
		}
	}
	if (cf->spool_max_bytes > 0 && (sink || is_stage(c, "ingest") || is_stage(c, "error-handler"))) {
		argv[a++] = "--spool-max-bytes";
		argv[a++] = spool_max;
	}
	argv[a] = NULL;

	/* Signals stay blocked from fork until the child has reset the
	 * supervisor's handlers: a SIGTERM in between then kills the child
	 * (default action) rather than being swallowed by a handler that
	 * execve forgets. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
			_exit(111);
		/* The supervisor died before the prctl: no signal will come. */
		if (getppid() != S.self)
			_exit(111);
		sigprocmask(SIG_SETMASK, &old, NULL);
		child_env(c);
		if (S.netns[0] && (sink_flags(c) & ACT_VPC) && enter_netns(c) < 0)
			_exit(111);
		execve(exe, argv, environ);
		int e = errno;
		log_error("cannot start %s (%s): %s", c->name, exe, strerror(e));
		_exit(e == ENOENT || e == EACCES ? 100 : 111);
	}
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("cannot start %s (%s): fork: %s", c->name, exe, strerror(e));
		return -1;
	}
	c->pid = pid;
	c->started_ms = proc_now_ms();
	log_info("started %s (pid %d)", c->name, (int)pid);
	return 0;
}

static child *
new_child(const char *stage)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (!S.procs[i].used) {
			child *c = &S.procs[i];
			memset(c, 0, sizeof(*c));
			c->used = 1;
			snprintf(c->stage, sizeof(c->stage), "%s", stage);
			snprintf(c->name, sizeof(c->name), "%s-%d", stage, next_index(stage));
			c->backoff_ms = 200;
			return c;
		}
	return NULL;
}

static int
count_stage(const char *stage)
{
	int n = 0;
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && !S.procs[i].retiring && strcmp(S.procs[i].stage, stage) == 0)
			n++;
	return n;
}

/* Adds sink stages for every action type the rules use. */
/* Adds a stage for every action type the rules use.  0, or -1 with the
 * loader's reason in err when the rules directory is refused (evaluate,
 * loading the same directory with the same context, refuses it too).
 * The rule files refused (evaluate skips them as well) are added to
 * refused, "ERROR rule refused: FILE: reason" a line, when not NULL. */
static int
discover_sinks(char *err, size_t errcap, buf *refused)
{
	ruleset *rs = ruleset_load(S.cf.rules, err, errcap);
	if (rs == NULL)
		return -1;
	for (int i = 0; refused && i < rs->nrefused; i++)
		buf_printf(refused, "ERROR rule refused: %s\n", rs->refused[i]);
	for (int i = 0; i < rs->n; i++) {
		rule *r = rs->rules[i];
		char stage[64];
		for (int k = 0; k < r->nactions; k++) {
			snprintf(stage, sizeof(stage), "sink-%s", r->actions[k].type);
			add_stage(stage);
		}
		if (r->error_action) {
			snprintf(stage, sizeof(stage), "sink-%s", r->error_action->type);
			add_stage(stage);
		}
	}
	ruleset_free(rs);
	return 0;
}

static void
ensure_instances(void)
{
	for (int s = 0; s < S.nstages; s++) {
		int want = config_instances(&S.cf, S.stages[s]);
		for (int n = count_stage(S.stages[s]); n < want; n++) {
			child *c = new_child(S.stages[s]);
			if (c)
				spawn(c);
		}
	}
}

static child *
find_pid(pid_t pid)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && S.procs[i].pid == pid)
			return &S.procs[i];
	return NULL;
}

static void
reap(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		child *c = find_pid(pid);
		if (c == NULL)
			continue;
		/* Its counters are carried from now on (supervisor/stats.h). */
		stats_gone(c->stage, c->name, pid);
		c->pid = 0;
		if (c->retiring) {
			log_info("%s exited (retired)", c->name);
			stats_forget_slot(c->stage, c->restarts);
			c->used = 0;
			continue;
		}
		if (c->holding) {
			log_info("%s (pid %d) stopped for its restart", c->name, (int)pid);
			continue;
		}
		int64_t up = proc_now_ms() - c->started_ms;
		if (up > 30000)
			c->backoff_ms = 200;
		/* Exit 100 (bad config or rules) and 2 (bad usage) are
		 * permanent: restarting does not help, but we keep trying
		 * slowly so that a fixed config heals. */
		if (WIFEXITED(st) && (WEXITSTATUS(st) == 100 || WEXITSTATUS(st) == 2))
			c->backoff_ms = 30000;
		c->next_start_ms = proc_now_ms() + c->backoff_ms;
		log_warn("%s (pid %d) %s %d; restarting in %d ms", c->name, (int)pid,
		    WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
		    c->backoff_ms);
		c->restarts++;
		c->backoff_ms = c->backoff_ms * 2 > 30000 ? 30000 : c->backoff_ms * 2;
	}
	if (proc_stopping())
		return;
	int64_t now = proc_now_ms();
	for (int i = 0; i < MAX_PROCS; i++) {
		child *c = &S.procs[i];
		if (c->used && !c->retiring && !c->holding && c->pid == 0 && now >= c->next_start_ms)
			spawn(c);
	}
}

static int
read_stats(const child *c, char *field, long long *in, long long *out, int *ready)
{
	(void)field;
	char path[4400], text[1024];
	snprintf(path, sizeof(path), "%s/stats/%s.json", S.cf.run_dir, c->name);
	FILE *f = fopen(path, "r");
	*in = *out = 0;
	*ready = 0;
	if (f == NULL)
		return -1;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	int pid = 0;
	char *p;
	if ((p = strstr(text, "\"pid\":")))
		pid = atoi(p + 6);
	if ((p = strstr(text, "\"in\":")))
		*in = atoll(p + 5);
	if ((p = strstr(text, "\"out\":")))
		*out = atoll(p + 6);
	*ready = strstr(text, "\"ready\":true") != NULL && pid == c->pid;
	return pid == c->pid ? 0 : -1;
}

/* 1 when c reported ready within ms. */
static int
wait_ready(child *c, int ms)
{
	for (int t = 0; t < ms && !proc_stopping(); t += 20) {
		long long in, out;
		int ready;
		read_stats(c, NULL, &in, &out, &ready);
		if (ready)
			return 1;
		usleep(20000);
		reap();
	}
	log_warn("%s not ready after %d ms; continuing", c->name, ms);
	return 0;
}

static void
retire(child *c)
{
	c->retiring = 1;
	if (c->pid > 0)
		kill(c->pid, SIGTERM);
	else {
		stats_forget_slot(c->stage, c->restarts);
		c->used = 0;
	}
}

static void
wait_gone(child *c, int ms)
{
	for (int t = 0; t < ms && c->used && !proc_stopping(); t += 20) {
		usleep(20000);
		reap();
	}
	if (c->used && c->pid > 0 && !proc_stopping()) {
		log_warn("%s did not stop in %d ms; killing it", c->name, ms);
		kill(c->pid, SIGKILL);
	}
}

/* Stops c (SIGTERM, SIGKILL after STOP_WAIT_MS) and keeps its slot and
 * name for a restart.  0 once it is gone, -1 if it would not go (or the
 * supervisor is stopping: the shutdown takes over). */
static int
stop_holding(child *c)
{
	c->holding = 1;
	if (c->pid <= 0)
		return 0;
	kill(c->pid, SIGTERM);
	for (int t = 0; t < STOP_WAIT_MS && c->pid > 0 && !proc_stopping(); t += 20) {
		usleep(20000);
		reap();
	}
	if (proc_stopping())
		return -1;
	if (c->pid > 0) {
		log_warn("%s did not stop in %d ms; killing it", c->name, STOP_WAIT_MS);
		kill(c->pid, SIGKILL);
		for (int t = 0; t < 2000 && c->pid > 0; t += 20) {
			usleep(20000);
			reap();
		}
	}
	return c->pid > 0 ? -1 : 0;
}

static int
known_stage(const char *stage)
{
	for (int i = 0; i < S.nstages; i++)
		if (strcmp(S.stages[i], stage) == 0)
			return 1;
	return 0;
}

/* `restart STAGE`: see the header comment. */
static void
restart_stage(const char *stage, buf *out)
{
	int olds[MAX_PROCS], nold = 0;
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && !S.procs[i].retiring && strcmp(S.procs[i].stage, stage) == 0)
			olds[nold++] = i;
	if (nold == 0) {
		buf_printf(out, "ERROR %s has no instance to restart\n", stage);
		return;
	}
	for (int k = 0; k < nold && !proc_stopping(); k++) {
		child *old = &S.procs[olds[k]];
		if (strcmp(stage, "ingest") == 0) {
			/* Same name: same spool and MQTT client id, so the broker
			 * session (and what it queues meanwhile) carries over. */
			if (stop_holding(old) < 0) {
				old->holding = 0;
				if (proc_stopping())
					buf_printf(out, "ERROR the supervisor is stopping\n");
				else
					buf_printf(out, "ERROR %s (pid %d) would not stop\n", old->name, (int)old->pid);
				return;
			}
			old->holding = 0;
			if (spawn(old) < 0) {
				old->next_start_ms = proc_now_ms() + old->backoff_ms;
				buf_printf(out, "ERROR cannot start %s again (retrying)\n", old->name);
				return;
			}
			int ready = wait_ready(old, 10000);
			buf_printf(out, "OK %s restarted (stop, then start: the broker session holds messages meanwhile)%s\n",
			    old->name, ready ? "" : " but not ready yet");
			continue;
		}
		child *nc = new_child(stage);
		if (nc == NULL || spawn(nc) < 0) {
			if (nc)
				nc->used = 0;
			buf_printf(out, "ERROR cannot start a replacement for %s\n", old->name);
			return;
		}
		wait_ready(nc, 10000);
		retire(old);
		wait_gone(old, 5000);
		buf_printf(out, "OK %s replaced by %s\n", old->name, nc->name);
	}
}

/* The counters of every instance (supervisor/stats.h) in a view the
 * caller frees. */
static void
collect(stats_view *v)
{
	static stats_proc procs[MAX_PROCS];
	int n = 0;
	/* Stage by stage, in the order the stages were added. */
	for (int s = 0; s < S.nstages; s++)
		for (int i = 0; i < MAX_PROCS; i++) {
			const child *c = &S.procs[i];
			if (!c->used || strcmp(c->stage, S.stages[s]) != 0)
				continue;
			procs[n++] = (stats_proc){c->stage, c->name, c->pid, c->started_ms, c->restarts, c->retiring};
		}
	stats_collect(procs, n, (const char (*)[64])S.stages, S.nstages, v);
}

/* A scrape of the metrics endpoint (metrics_fill_fn). */
static void
metrics_fill(buf *out, void *arg)
{
	(void)arg;
	stats_view v = STATS_VIEW_ZERO;
	collect(&v);
	metrics_render(&v, out);
	stats_view_free(&v);
}

static void
command(const char *line, buf *out)
{
	char verb[32] = "", stage[64] = "";
	int n = -1;
	sscanf(line, "%31s %63s %d", verb, stage, &n);
	if (strcmp(verb, "status") == 0) {
		int json = strcmp(stage, "--json") == 0;
		if (stage[0] && !json) {
			buf_printf(out, "ERROR status takes only --json, not '%s'\n", stage);
			return;
		}
		stats_view v = STATS_VIEW_ZERO;
		collect(&v);
		if (json)
			stats_status_json(&v, out);
		else
			stats_status_text(&v, out);
		stats_view_free(&v);
		return;
	}
	if (strcmp(verb, "reload") == 0) {
		char err[1024];
		buf refused = BUF_ZERO;
		if (discover_sinks(err, sizeof(err), &refused) < 0) {
			/* evaluate would refuse them as well and keep what it runs:
			 * say so, and signal nobody. */
			buf_printf(out, "ERROR rules refused, the running rules are kept: %s\n", err);
			buf_free(&refused);
			return;
		}
		ensure_instances();
		int k = 0;
		for (int i = 0; i < MAX_PROCS; i++) {
			child *c = &S.procs[i];
			if (c->used && c->pid > 0 && (strcmp(c->stage, "ingest") == 0 || strcmp(c->stage, "evaluate") == 0)) {
				kill(c->pid, SIGHUP);
				k++;
			}
		}
		buf_printf(out, "OK reload signalled to %d process(es)\n", k);
		/* The other rules run; the refused ones are named, and make the
		 * command's exit status 1. */
		if (refused.len)
			buf_add(out, refused.data, refused.len);
		buf_free(&refused);
		return;
	}
	if (!known_stage(stage)) {
		buf_printf(out, "ERROR unknown stage '%s' (see status)\n", stage);
		return;
	}
	if (strcmp(verb, "scale") == 0) {
		if (n < 0 || n > 64) {
			buf_printf(out, "ERROR scale needs a count 0-64\n");
			return;
		}
		if (strcmp(stage, "ingest") == 0 && n > 1 && S.cf.ingest_journal) {
			buf_printf(out, "ERROR ingest reads the journal of \"ingest_journal\": one instance only\n");
			return;
		}
		if (strcmp(stage, "ingest") == 0 && n > 1 && S.cf.share_group == NULL) {
			buf_printf(out, "ERROR ingest needs \"share_group\" in the config to run more than one "
			    "instance: without a shared subscription each would receive every message\n");
			return;
		}
		int have = count_stage(stage);
		for (; have < n; have++) {
			child *c = new_child(stage);
			if (c)
				spawn(c);
		}
		/* Scale down: retire the newest; their spools are adopted by the
		 * instances that stay. */
		for (int i = MAX_PROCS - 1; i >= 0 && have > n; i--) {
			child *c = &S.procs[i];
			if (c->used && !c->retiring && strcmp(c->stage, stage) == 0) {
				retire(c);
				have--;
			}
		}
		for (int i = 0; i < S.cf.ninst; i++)
			if (strcmp(S.cf.inst[i].stage, stage) == 0)
				S.cf.inst[i].n = n;
		if (config_instances(&S.cf, stage) != n && S.cf.ninst < 64) {
			snprintf(S.cf.inst[S.cf.ninst].stage, 64, "%s", stage);
			S.cf.inst[S.cf.ninst++].n = n;
		}
		buf_printf(out, "OK %s scaled to %d\n", stage, n);
		return;
	}
	if (strcmp(verb, "restart") == 0) {
		restart_stage(stage, out);
		return;
	}
	buf_printf(out, "ERROR unknown command '%s'\n", verb);
}

static void
serve_control(void)
{
	int fd = accept4(S.ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* A client that connects and never writes must not stop supervision
	 * (reaping, restarts): one second to send its command. */
	struct timeval tv = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char line[256];
	ssize_t n = read(fd, line, sizeof(line) - 1);
	if (n > 0) {
		line[n] = 0;
		buf out = BUF_ZERO;
		command(line, &out);
		/* status --json with many rules is larger than one write. */
		for (size_t off = 0; off < out.len;) {
			ssize_t w = write(fd, out.data + off, out.len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_warn("control reply not sent in full");
				break;
			}
			off += (size_t)w;
		}
		buf_free(&out);
	}
	close(fd);
}

static void
control_path(char *out, size_t cap)
{
	snprintf(out, cap, "%s/control.sock", S.cf.run_dir);
}

/* Binds <run_dir>/control.sock (any earlier one is stale: we hold the
 * run_dir's lock) and remembers which inode it is, so that at exit only
 * our own socket file is removed. */
static int
open_control(void)
{
	struct sockaddr_un sa = {0};
	sa.sun_family = AF_UNIX;
	control_path(sa.sun_path, sizeof(sa.sun_path));
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		log_die(111, "control socket %s: %s", sa.sun_path, strerror(errno));
	struct stat st;
	if (stat(sa.sun_path, &st) == 0) {
		S.ctl_dev = st.st_dev;
		S.ctl_ino = st.st_ino;
	}
	return fd;
}

static void
close_control(void)
{
	char path[4400];
	struct stat st;
	close(S.ctl_fd);
	control_path(path, sizeof(path));
	if (stat(path, &st) == 0 && st.st_dev == S.ctl_dev && st.st_ino == S.ctl_ino)
		unlink(path);
	else
		log_info("%s is not the socket this supervisor bound; left alone", path);
}

/* ---- one supervisor per run_dir ---------------------------------------- */

static void
take_lock(void)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/supervisor.lock", S.cf.run_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		log_die(111, "cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			log_die(111, "cannot lock %s: %s", path, strerror(errno));
		/* The holder writes its pid right after locking: give it a
		 * moment if we came in between. */
		int other = 0;
		for (int t = 0; t < 1000 && other <= 0; t += 50) {
			char text[32] = "";
			ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
			text[n > 0 ? n : 0] = 0;
			other = atoi(text);
			if (other <= 0)
				usleep(50000);
		}
		char kv[64], pid_text[24] = "unknown";
		snprintf(kv, sizeof(kv), "\"other_pid\":%d", other);
		if (other > 0)
			snprintf(pid_text, sizeof(pid_text), "%d", other);
		log_kv(LOG_ERROR, other > 0 ? kv : NULL, "another supervisor (pid %s) runs on %s", pid_text, S.cf.run_dir);
		exit(100);
	}
	char text[32];
	int n = snprintf(text, sizeof(text), "%d\n", (int)S.self);
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n)
		log_die(111, "cannot write %s: %s", path, strerror(errno));
	S.lock_fd = fd; /* held until exit */
}

/* ---- leftovers of an earlier supervisor -------------------------------- */

/* 1 if pid exists and is not a zombie. */
static int
pid_alive(pid_t pid)
{
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	char path[64], text[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	char *p = strrchr(text, ')');
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* 1 if pid runs an iotrules-* binary with --run-dir naming our run_dir
 * (compared by inode, so "run" and "/abs/run" match). */
static int
is_our_stage(pid_t pid, const struct stat *rd)
{
	char path[64], cmd[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	cmd[n] = 0;
	const char *exe = strrchr(cmd, '/');
	exe = exe ? exe + 1 : cmd;
	if (strncmp(exe, "iotrules-", 9) != 0)
		return 0;
	for (const char *a = cmd; a < cmd + n; a += strlen(a) + 1) {
		if (strcmp(a, "--run-dir") != 0)
			continue;
		const char *dir = a + strlen(a) + 1;
		if (dir >= cmd + n)
			return 0;
		char full[8400];
		if (dir[0] == '/')
			snprintf(full, sizeof(full), "%s", dir);
		else
			snprintf(full, sizeof(full), "/proc/%d/cwd/%s", (int)pid, dir);
		struct stat st;
		return stat(full, &st) == 0 && st.st_dev == rd->st_dev && st.st_ino == rd->st_ino;
	}
	return 0;
}

/* Stops stage processes that an earlier supervisor of this run_dir left
 * running (see the header comment), and removes the stats files of
 * processes that are gone.  Called with the lock held, before any stage
 * of ours starts. */
/* Signals a leftover through its pidfd when there is one. */
static int
leftover_signal(pid_t pid, int pfd, int sig)
{
	return pfd >= 0 ? pidfd_send_signal(pfd, sig, NULL, 0) : kill(pid, sig);
}

/* Is the leftover still running?  Its pidfd turns readable when it has
 * exited (reaped or not). */
static int
leftover_alive(pid_t pid, int pfd)
{
	if (pfd < 0)
		return pid_alive(pid);
	struct pollfd p = {pfd, POLLIN, 0};
	return poll(&p, 1, 0) == 0;
}

static void
stop_leftovers(void)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/stats", S.cf.run_dir);
	struct stat rd;
	if (stat(S.cf.run_dir, &rd) < 0)
		return;
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	/* Each leftover is held by a pidfd taken before its identity is
	 * checked: the signals, and the wait for its exit, then reach that
	 * process and never another one that reused its pid meanwhile (it
	 * is not our child, so whoever reaps it frees the pid at once).
	 * Without pidfds (kernel before 5.3) fall back to the pid. */
	struct { pid_t pid; int fd; char name[96]; } left[MAX_PROCS];
	int nleft = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		char path[4500], fname[256];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(fname, sizeof(fname), "%.*s", (int)(len - 5), e->d_name);
		/* The whole file: evaluate's per-rule counters make it long. */
		cJSON *j = stats_file_parse(S.cf.run_dir, fname);
		cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pid");
		cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
		pid_t pid = cJSON_IsNumber(p) ? (pid_t)p->valueint : 0;
		char name[96];
		snprintf(name, sizeof(name), "%s", cJSON_IsString(nm) ? nm->valuestring : "?");
		cJSON_Delete(j);
		int dup = 0;
		for (int i = 0; i < nleft; i++)
			dup |= left[i].pid == pid;
		int pfd = pid > 1 && pid != S.self && !dup && nleft < MAX_PROCS ? pidfd_open(pid, 0) : -1;
		if (pfd < 0 && errno != ENOSYS)
			pid = 0;   /* gone already */
		if (pid > 1 && pid != S.self && !dup && pid_alive(pid) && is_our_stage(pid, &rd) && nleft < MAX_PROCS) {
			if (leftover_signal(pid, pfd, SIGTERM) < 0) {
				if (pfd >= 0)
					close(pfd);
				log_warn("leftover %s (pid %d) on %s cannot be stopped: %s", name, (int)pid, S.cf.run_dir,
				    strerror(errno));
				continue;
			}
			log_warn("stopping leftover %s (pid %d) of an earlier supervisor of %s", name, (int)pid,
			    S.cf.run_dir);
			left[nleft].pid = pid;
			left[nleft].fd = pfd;
			snprintf(left[nleft++].name, sizeof(left[0].name), "%s", name);
		}
		else if (pfd >= 0)
			close(pfd);
		/* Its process is gone or about to be: the stats file is stale
		 * (ours rewrite theirs under the same names anyway). */
		unlink(path);
	}
	closedir(d);
	if (nleft == 0)
		return;
	int64_t t0 = proc_now_ms();
	int alive = nleft;
	while (alive > 0 && proc_now_ms() - t0 < STOP_WAIT_MS && !proc_stopping()) {
		usleep(50000);
		alive = 0;
		for (int i = 0; i < nleft; i++)
			alive += leftover_alive(left[i].pid, left[i].fd);
	}
	if (proc_stopping()) {
		for (int i = 0; i < nleft; i++)
			if (left[i].fd >= 0)
				close(left[i].fd);
		return; /* they have their SIGTERM; main exits without starting anything */
	}
	for (int i = 0; i < nleft; i++) {
		if (!leftover_alive(left[i].pid, left[i].fd)) {
			log_info("leftover %s (pid %d) stopped", left[i].name, (int)left[i].pid);
			continue;
		}
		log_warn("leftover %s (pid %d) did not stop in %d ms; killing it", left[i].name, (int)left[i].pid,
		    STOP_WAIT_MS);
		leftover_signal(left[i].pid, left[i].fd, SIGKILL);
	}
	/* SIGKILLed ones release their spools and sockets as they go. */
	for (int t = 0; t < 2000; t += 50) {
		alive = 0;
		for (int i = 0; i < nleft; i++)
			alive += leftover_alive(left[i].pid, left[i].fd);
		if (alive == 0)
			break;
		usleep(50000);
	}
	if (alive > 0)
		log_error("%d leftover process(es) still there after SIGKILL; starting anyway", alive);
	for (int i = 0; i < nleft; i++)
		if (left[i].fd >= 0)
			close(left[i].fd);
}

/* ---- main -------------------------------------------------------------- */

static void
stop_all(void)
{
	log_info("stopping every process");
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && S.procs[i].pid > 0) {
			S.procs[i].retiring = 1;
			kill(S.procs[i].pid, SIGTERM);
		}
	int64_t t0 = proc_now_ms();
	int left = 1;
	while (left > 0) {
		reap();
		left = 0;
		for (int i = 0; i < MAX_PROCS; i++)
			left += S.procs[i].used && S.procs[i].pid > 0;
		if (left == 0 || proc_now_ms() - t0 >= SHUTDOWN_TERM_MS)
			break;
		usleep(20000);
	}
	if (left == 0)
		return;
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && S.procs[i].pid > 0) {
			log_warn("%s (pid %d) did not stop in %d ms; killing it", S.procs[i].name, (int)S.procs[i].pid,
			    SHUTDOWN_TERM_MS);
			kill(S.procs[i].pid, SIGKILL);
		}
	for (int t = 0; t < 400 && left > 0; t += 20) {
		usleep(20000);
		reap();
		left = 0;
		for (int i = 0; i < MAX_PROCS; i++)
			left += S.procs[i].used && S.procs[i].pid > 0;
	}
}

int
main(int argc, char **argv)
{
	const char *cfg = NULL;
	proc_init("supervisor");
	S.self = getpid();
	opt_init("iotrules-supervisor", &argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0)
			cfg = opt_value(argc, argv, &i);
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strncmp(argv[i], "--", 2) == 0)
			opt_usage_error("unknown option %s", argv[i]);
		else
			opt_usage_error("unexpected argument '%s'", argv[i]);
	}
	if (cfg == NULL)
		cfg = getenv("IOTRULES_CONFIG");
	if (cfg == NULL)
		opt_usage_error("--config FILE (or $IOTRULES_CONFIG) is required");
	char err[8400];
	if (realpath(cfg, S.cfg_path) == NULL)
		log_die(100, "%s: %s", cfg, strerror(errno));
	const char *netns;
	if (config_check(S.cfg_path, &S.cf, &S.dests, &netns, err, sizeof(err)) < 0) {
		/* One log line per problem, then nothing is started. */
		for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
			log_error("%s", line);
		log_die(100, "%s: the configuration has errors; nothing was started", cfg);
	}
	snprintf(S.netns, sizeof(S.netns), "%s", netns ? netns : "");
	/* Rules are read as evaluate reads them: same MQTT version, same
	 * destinations. */
	rules_context rctx = {.mqtt_version = S.cf.mqtt_version, .dests = &S.dests};
	rules_set_context(&rctx);
	if (proc_check_ipc_paths(S.cf.run_dir, NULL, err, sizeof(err)) < 0)
		log_die(100, "%s", err);
	if (S.cf.password) {
		struct stat st;
		if (stat(cfg, &st) == 0 && (st.st_mode & 077))
			log_warn("%s holds a broker password and is readable by others (mode %03o): chmod 600 it",
			    cfg, (unsigned)(st.st_mode & 0777));
	}
	if (S.cf.bin_dir)
		snprintf(S.bin_dir, sizeof(S.bin_dir), "%s", S.cf.bin_dir);
	else {
		/* Default: the directory this supervisor binary is in. */
		ssize_t n = readlink("/proc/self/exe", S.bin_dir, sizeof(S.bin_dir) - 1);
		S.bin_dir[n > 0 ? n : 0] = 0;
		char *slash = strrchr(S.bin_dir, '/');
		if (slash)
			*slash = 0;
	}
	if (proc_mkdirs(S.cf.run_dir) < 0 || proc_mkdirs(S.cf.state_dir) < 0)
		log_die(111, "cannot create %s or %s: %s", S.cf.run_dir, S.cf.state_dir, strerror(errno));
	const char *dirs[] = {S.cf.run_dir, S.cf.state_dir};
	for (int i = 0; i < 2; i++) {
		struct stat st;
		if (stat(dirs[i], &st) == 0 && (st.st_mode & 077))
			log_warn("%s is open to other users (mode %03o); 0700 keeps spools and hops private", dirs[i],
			    (unsigned)(st.st_mode & 0777));
	}
	take_lock();
	stop_leftovers();
	if (proc_stopping()) {
		log_info("stopped before starting anything");
		return 0;
	}
	S.ctl_fd = open_control();
	stats_init(S.cf.run_dir);
	/* A plain socket polled here, not NNG's HTTP server: see metrics.h. */
	metrics_start(S.cf.metrics_listen, S.cf.run_dir, metrics_fill, NULL);
	add_stage("ingest");
	add_stage("evaluate");
	char rerr[1024];
	if (discover_sinks(rerr, sizeof(rerr), NULL) < 0)
		log_error("%s", rerr);
	add_stage("error-handler");
	ensure_instances();
	log_info("supervising %d stage(s); control socket %s/control.sock", S.nstages, S.cf.run_dir);
	while (!proc_stopping()) {
		struct pollfd p[16] = {{S.ctl_fd, POLLIN, 0}};
		int np = 1 + metrics_pollfds(p + 1, 15);
		int ready = poll(p, (nfds_t)np, 100);
		if (ready > 0 && p[0].revents)
			serve_control();
		metrics_service(p + 1, ready > 0 ? np - 1 : 0);
		reap();
		if (proc_take_reload()) {
			buf out = BUF_ZERO;
			command("reload", &out);
			buf_free(&out);
		}
	}
	metrics_stop();
	stop_all();
	close_control();
	config_free(&S.cf);
	dest_free(&S.dests);
	log_info("stopped");
	return 0;
}
