/* iotrules: the control front door.
 *
 *   iotrules [--config FILE] COMMAND [ARGS] [--json]
 *
 * status, reload, scale and restart talk to the running supervisor over
 * <run_dir>/control.sock (the run_dir of the config); destination confirm
 * edits the config; check and check-config work offline.  Options may
 * come before or after the command.  Exit status: 0 done, 1 the command
 * failed (a reply line starting with ERROR, the supervisor not reachable,
 * a rule file refused), 2 a usage error, 100 a bad config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "common/dest.h"
#include "common/opt.h"
#include "evaluate/lib/rulecheck.h"
#include "evaluate/lib/rules.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules [--config FILE] COMMAND [ARGS]\n"
	    "\n"
	    "Commands that ask the running supervisor (the config's run_dir):\n"
	    "  status [--json]          every instance: pid, uptime, restarts, in, out,\n"
	    "                           failed, retried, pending, spool depth\n"
	    "  reload                   re-read the rules (refused rules: exit 1)\n"
	    "  scale STAGE N            run N instances of STAGE (0-64)\n"
	    "  restart STAGE            rolling restart of STAGE\n"
	    "Commands on files:\n"
	    "  destination confirm ARN  AWS's confirmation exchange with an HTTP\n"
	    "                           destination of the config; ENABLED when confirmed\n"
	    "  check PATH...            check rule files and rules directories as the\n"
	    "                           pipeline loads them (with --config: against its\n"
	    "                           MQTT version and destinations)\n"
	    "  check-config [FILE]      check a config file (default: --config) as the\n"
	    "                           supervisor does before starting anything\n"
	    "\n"
	    "Options (before or after the command; --opt=value works too):\n"
	    "  --config FILE            the pipeline config (default $IOTRULES_CONFIG)\n"
	    "  --json                   status: one JSON document\n"
	    "  --help, --version\n"
	    "\n"
	    "STAGE is ingest, evaluate, error-handler or sink-<action>.\n"
	    "Exit status: 0 done, 1 the command failed, 2 usage error, 100 bad config.\n");
}

/* Loads the config or exits 100 with its problems, one per line. */
static void
load_config(const char *cfg, config *c)
{
	char err[8192];
	if (config_load(cfg, c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(100);
	}
}

/* With a config, rules are checked against it as evaluate would load
 * them: its MQTT version and its destinations. */
static int
check(const char *cfg, int n, char **files)
{
	int bad = 0;
	dest_list dests = DEST_LIST_ZERO;
	rules_context ctx = {.mqtt_version = 5};
	if (cfg) {
		config c;
		const char *netns;
		char err[8192];
		if (config_check(cfg, &c, &dests, &netns, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 100;
		}
		ctx.mqtt_version = c.mqtt_version;
		ctx.dests = &dests;
		config_free(&c);
	}
	rules_set_context(&ctx);
	bad = rulecheck_run(n, files, stdout);
	dest_free(&dests);
	return bad ? 1 : 0;
}

/* The supervisor's checks of a config, without starting anything. */
static int
check_config(const char *path)
{
	config c;
	dest_list dests;
	const char *netns;
	char err[8192];
	if (config_check(path, &c, &dests, &netns, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 100;
	}
	printf("OK %s\n", path);
	dest_free(&dests);
	config_free(&c);
	return 0;
}

/* Sends line to the supervisor of cfg and copies its reply to stdout.
 * 1 if a reply line starts with ERROR or the supervisor is not there. */
static int
ask(const char *cfg, const char *line)
{
	config c;
	load_config(cfg, &c);
	struct sockaddr_un sa = {0};
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", c.run_dir);
	config_free(&c);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "iotrules: cannot reach the supervisor at %s: %s (is iotrules-supervisor running "
		    "with this config?)\n", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (write(fd, line, strlen(line)) < 0) {
		fprintf(stderr, "iotrules: %s: %s\n", sa.sun_path, strerror(errno));
		close(fd);
		return 1;
	}
	shutdown(fd, SHUT_WR);
	char buf[4096], head[6] = "";
	size_t hl = 0; /* bytes of the current line's start seen so far */
	ssize_t n;
	int failed = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		fwrite(buf, 1, (size_t)n, stdout);
		/* Any reply line starting with ERROR (restart answers one line
		 * per instance) makes the exit status 1. */
		for (ssize_t k = 0; k < n; k++) {
			if (buf[k] == '\n') {
				hl = 0;
				continue;
			}
			if (hl < 5) {
				head[hl++] = buf[k];
				if (hl == 5 && strncmp(head, "ERROR", 5) == 0)
					failed = 1;
			}
		}
	}
	close(fd);
	return failed;
}

static void
need_args(const char *cmd, int have, int want, const char *what)
{
	if (have != want)
		opt_usage_error("%s takes %s", cmd, what);
}

int
main(int argc, char **argv)
{
	opt_init("iotrules", &argc, &argv);
	const char *cfg = getenv("IOTRULES_CONFIG");
	if (cfg && cfg[0] == 0)
		cfg = NULL;
	int json = 0, nw = 0;
	char **words = calloc((size_t)argc + 1, sizeof(char *));
	if (words == NULL)
		abort();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0)
			cfg = opt_value(argc, argv, &i);
		else if (strcmp(a, "--json") == 0)
			json = 1;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			free(words);
			return 0;
		} else if (a[0] == '-' && a[1] != 0)
			opt_usage_error("unknown option %s", a);
		else
			words[nw++] = argv[i];
	}
	if (nw == 0)
		opt_usage_error("a command is needed: status, reload, scale, restart, destination, check or check-config");
	const char *cmd = words[0];
	int nargs = nw - 1, rc;
	if (json && strcmp(cmd, "status") != 0)
		opt_usage_error("--json is for status");
	if (strcmp(cmd, "check") == 0) {
		if (nargs < 1)
			opt_usage_error("check takes one or more rule files or directories");
		rc = check(cfg, nargs, words + 1);
	} else if (strcmp(cmd, "check-config") == 0) {
		if (nargs > 1 || (nargs == 0 && cfg == NULL))
			opt_usage_error("check-config takes one config file (or --config FILE)");
		rc = check_config(nargs ? words[1] : cfg);
	} else {
		char line[256];
		if (strcmp(cmd, "status") == 0) {
			need_args(cmd, nargs, 0, "no argument");
			snprintf(line, sizeof(line), "status%s", json ? " --json" : "");
		} else if (strcmp(cmd, "reload") == 0) {
			need_args(cmd, nargs, 0, "no argument");
			snprintf(line, sizeof(line), "reload");
		} else if (strcmp(cmd, "scale") == 0) {
			need_args(cmd, nargs, 2, "a stage and a count (scale sink-sqs 3)");
			opt_int("scale's count", words[2], 0, 64);
			snprintf(line, sizeof(line), "scale %.64s %s", words[1], words[2]);
		} else if (strcmp(cmd, "restart") == 0) {
			need_args(cmd, nargs, 1, "one stage (restart evaluate)");
			snprintf(line, sizeof(line), "restart %.64s", words[1]);
		} else if (strcmp(cmd, "destination") == 0) {
			if (nargs != 2 || strcmp(words[1], "confirm") != 0)
				opt_usage_error("destination takes: confirm ARN");
		} else
			opt_usage_error("unknown command '%s'", cmd);
		if (cfg == NULL)
			opt_usage_error("%s needs --config FILE (or $IOTRULES_CONFIG)", cmd);
		if (strcmp(cmd, "destination") == 0) {
			config c;
			load_config(cfg, &c);
			config_free(&c);
			char derr[1024];
			rc = dest_confirm(cfg, words[2], stdout, derr, sizeof(derr));
			if (rc != 0)
				fprintf(stderr, "iotrules: destination confirm %s: %s\n", words[2], derr);
			rc = rc == 0 ? 0 : 1;
		} else
			rc = ask(cfg, line);
	}
	free(words);
	return rc;
}
