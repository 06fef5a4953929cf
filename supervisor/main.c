/* iotrules-supervisor: runs the pipeline described by one config file.
 *
 * Starts every stage (ingest, evaluate, one sink per action type the rules
 * use, the error handler) with the configured number of instances,
 * restarts a crashed instance with exponential backoff (first restart
 * after 200 ms), and answers the `iotrules` control command on
 * <run_dir>/control.sock: status, scale, restart (rolling), reload.
 * Children are started with posix_spawn (exec before they touch NNG) and
 * share the supervisor's stderr, where every process logs JSON lines. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/proc.h"
#include "evaluate/lib/rules.h"

extern char **environ;

#define MAX_PROCS 256

typedef struct child {
	char stage[64], name[96];
	pid_t pid;
	int64_t started_ms, next_start_ms;
	int restarts, backoff_ms, retiring, used;
} child;

static struct {
	config cf;
	char bin_dir[4096];
	child procs[MAX_PROCS];
	int counters[64];
	char counter_stage[64][64];
	int ncounters;
	char stages[64][64];
	int nstages;
	int ctl_fd;
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
	    "<run_dir>/control.sock.  SIGTERM stops everything cleanly; SIGHUP\n"
	    "reloads the rules.\n");
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

static void
add_stage(const char *stage)
{
	for (int i = 0; i < S.nstages; i++)
		if (strcmp(S.stages[i], stage) == 0)
			return;
	if (S.nstages < 64)
		snprintf(S.stages[S.nstages++], 64, "%s", stage);
}

/* Builds the argv of an instance and spawns it. */
static int
spawn(child *c)
{
	char exe[4300], *argv[32];
	int a = 0;
	const config *cf = &S.cf;
	char tries[16];
	snprintf(tries, sizeof(tries), "%d", cf->tries);
	char mv[8];
	snprintf(mv, sizeof(mv), "%d", cf->mqtt_version);
	snprintf(exe, sizeof(exe), "%s/iotrules-%s", S.bin_dir, c->stage);
	argv[a++] = exe;
	argv[a++] = "--run-dir";
	argv[a++] = cf->run_dir;
	argv[a++] = "--name";
	argv[a++] = c->name;
	if (strcmp(c->stage, "evaluate") != 0) {
		argv[a++] = "--state-dir";
		argv[a++] = cf->state_dir;
	}
	if (strcmp(c->stage, "ingest") == 0) {
		argv[a++] = "--broker";
		argv[a++] = cf->broker;
		argv[a++] = "--rules";
		argv[a++] = cf->rules;
		argv[a++] = "--mqtt-version";
		argv[a++] = mv;
		if (cf->share_group) {
			argv[a++] = "--share";
			argv[a++] = cf->share_group;
		}
	} else if (strcmp(c->stage, "evaluate") == 0) {
		argv[a++] = "--rules";
		argv[a++] = cf->rules;
		if (cf->account_id) {
			argv[a++] = "--account-id";
			argv[a++] = cf->account_id;
		}
	} else if (strncmp(c->stage, "sink-", 5) == 0) {
		argv[a++] = "--tries";
		argv[a++] = tries;
		if (strcmp(c->stage, "sink-republish") == 0) {
			argv[a++] = "--broker";
			argv[a++] = cf->broker;
		}
	}
	argv[a] = NULL;
	pid_t pid;
	int rc = posix_spawn(&pid, exe, NULL, NULL, argv, environ);
	if (rc != 0) {
		log_error("cannot start %s (%s): %s", c->name, exe, strerror(rc));
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
static void
discover_sinks(void)
{
	char err[512];
	ruleset *rs = ruleset_load(S.cf.rules, err, sizeof(err));
	if (rs == NULL) {
		log_error("%s", err);
		return;
	}
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
		c->pid = 0;
		if (c->retiring) {
			log_info("%s exited (retired)", c->name);
			c->used = 0;
			continue;
		}
		int64_t up = proc_now_ms() - c->started_ms;
		if (up > 30000)
			c->backoff_ms = 200;
		/* Exit 100 is a permanent error (bad options): restarting does
		 * not help, but we keep trying slowly so a fixed config heals. */
		if (WIFEXITED(st) && WEXITSTATUS(st) == 100)
			c->backoff_ms = 30000;
		c->next_start_ms = proc_now_ms() + c->backoff_ms;
		log_warn("%s (pid %d) %s %d; restarting in %d ms", c->name, (int)pid,
		    WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
		    c->backoff_ms);
		c->restarts++;
		c->backoff_ms = c->backoff_ms * 2 > 30000 ? 30000 : c->backoff_ms * 2;
	}
	int64_t now = proc_now_ms();
	for (int i = 0; i < MAX_PROCS; i++) {
		child *c = &S.procs[i];
		if (c->used && !c->retiring && c->pid == 0 && now >= c->next_start_ms)
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

static void
wait_ready(child *c, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		long long in, out;
		int ready;
		read_stats(c, NULL, &in, &out, &ready);
		if (ready)
			return;
		usleep(20000);
		reap();
	}
	log_warn("%s not ready after %d ms; continuing", c->name, ms);
}

static void
retire(child *c)
{
	c->retiring = 1;
	if (c->pid > 0)
		kill(c->pid, SIGTERM);
	else
		c->used = 0;
}

static void
wait_gone(child *c, int ms)
{
	for (int t = 0; t < ms && c->used; t += 20) {
		usleep(20000);
		reap();
	}
	if (c->used && c->pid > 0) {
		log_warn("%s did not stop in %d ms; killing it", c->name, ms);
		kill(c->pid, SIGKILL);
	}
}

static int
known_stage(const char *stage)
{
	for (int i = 0; i < S.nstages; i++)
		if (strcmp(S.stages[i], stage) == 0)
			return 1;
	return 0;
}

static void
command(const char *line, buf *out)
{
	char verb[32] = "", stage[64] = "";
	int n = -1;
	sscanf(line, "%31s %63s %d", verb, stage, &n);
	if (strcmp(verb, "status") == 0) {
		int64_t now = proc_now_ms();
		buf_printf(out, "%-22s %-26s %8s %9s %8s %10s %10s\n", "STAGE", "INSTANCE", "PID", "UPTIME_S",
		    "RESTARTS", "IN", "OUT");
		for (int s = 0; s < S.nstages; s++)
			for (int i = 0; i < MAX_PROCS; i++) {
				child *c = &S.procs[i];
				if (!c->used || strcmp(c->stage, S.stages[s]) != 0)
					continue;
				long long in, o;
				int ready;
				read_stats(c, NULL, &in, &o, &ready);
				buf_printf(out, "%-22s %-26s %8d %9lld %8d %10lld %10lld%s\n", c->stage, c->name, (int)c->pid,
				    c->pid ? (long long)(now - c->started_ms) / 1000 : 0LL, c->restarts, in, o,
				    c->retiring ? " (stopping)" : "");
			}
		return;
	}
	if (strcmp(verb, "reload") == 0) {
		discover_sinks();
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
		/* Rolling: for each instance, start its replacement, wait until it
		 * is ready, then stop the old one. */
		int olds[MAX_PROCS], nold = 0;
		for (int i = 0; i < MAX_PROCS; i++)
			if (S.procs[i].used && !S.procs[i].retiring && strcmp(S.procs[i].stage, stage) == 0)
				olds[nold++] = i;
		for (int k = 0; k < nold; k++) {
			child *old = &S.procs[olds[k]];
			child *nc = new_child(stage);
			if (nc == NULL || spawn(nc) < 0) {
				buf_printf(out, "ERROR cannot start a replacement for %s\n", old->name);
				return;
			}
			wait_ready(nc, 10000);
			retire(old);
			wait_gone(old, 5000);
			buf_printf(out, "OK %s replaced by %s\n", old->name, nc->name);
		}
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
	char line[256];
	ssize_t n = read(fd, line, sizeof(line) - 1);
	if (n > 0) {
		line[n] = 0;
		buf out = BUF_ZERO;
		command(line, &out);
		if (out.len && write(fd, out.data, out.len) < 0)
			log_warn("control reply not sent");
		buf_free(&out);
	}
	close(fd);
}

static int
open_control(void)
{
	struct sockaddr_un sa = {0};
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", S.cf.run_dir);
	if (n >= (int)sizeof(sa.sun_path))
		log_die(100, "run_dir %s is too long for a control socket path", S.cf.run_dir);
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		log_die(111, "control socket %s: %s", sa.sun_path, strerror(errno));
	return fd;
}

int
main(int argc, char **argv)
{
	const char *cfg = NULL;
	proc_init("supervisor");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfg = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 100;
		}
	}
	if (cfg == NULL) {
		usage(stderr);
		return 100;
	}
	char err[600];
	if (config_load(cfg, &S.cf, err, sizeof(err)) < 0)
		log_die(100, "%s", err);
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
	S.ctl_fd = open_control();
	add_stage("ingest");
	add_stage("evaluate");
	discover_sinks();
	add_stage("error-handler");
	ensure_instances();
	log_info("supervising %d stage(s); control socket %s/control.sock", S.nstages, S.cf.run_dir);
	while (!proc_stopping()) {
		struct pollfd p = {S.ctl_fd, POLLIN, 0};
		if (poll(&p, 1, 100) > 0)
			serve_control();
		reap();
		if (proc_take_reload()) {
			buf out = BUF_ZERO;
			command("reload", &out);
			buf_free(&out);
		}
	}
	log_info("stopping every process");
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && S.procs[i].pid > 0) {
			S.procs[i].retiring = 1;
			kill(S.procs[i].pid, SIGTERM);
		}
	for (int t = 0; t < 5000; t += 20) {
		int left = 0;
		reap();
		for (int i = 0; i < MAX_PROCS; i++)
			left += S.procs[i].used && S.procs[i].pid > 0;
		if (left == 0)
			break;
		usleep(20000);
	}
	for (int i = 0; i < MAX_PROCS; i++)
		if (S.procs[i].used && S.procs[i].pid > 0) {
			log_warn("%s did not stop; killing it", S.procs[i].name);
			kill(S.procs[i].pid, SIGKILL);
		}
	close(S.ctl_fd);
	char sock[4400];
	snprintf(sock, sizeof(sock), "%s/control.sock", S.cf.run_dir);
	unlink(sock);
	config_free(&S.cf);
	log_info("stopped");
	return 0;
}
