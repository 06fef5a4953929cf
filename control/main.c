/* iotrules: the control front door.
 *
 *   iotrules --config FILE status|reload|scale STAGE N|restart STAGE
 *   iotrules --config FILE destination confirm ARN
 *   iotrules [--config FILE] check RULEFILE...
 *
 * The first form talks to the running supervisor over
 * <run_dir>/control.sock; `check` validates rule files offline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "common/dest.h"
#include "evaluate/lib/rules.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules --config FILE status\n"
	    "       iotrules --config FILE scale STAGE N\n"
	    "       iotrules --config FILE restart STAGE     (rolling)\n"
	    "       iotrules --config FILE reload            (rules, no restart)\n"
	    "       iotrules --config FILE destination confirm ARN\n"
	    "       iotrules [--config FILE] check RULEFILE...\n"
	    "\n"
	    "STAGE is ingest, evaluate, error-handler or sink-<action>.\n"
	    "destination confirm performs AWS's confirmation exchange with the HTTP\n"
	    "destination ARN of the config and, when the endpoint echoes the token,\n"
	    "sets its status to ENABLED in the config file (the sinks re-read it).\n"
	    "check prints 'OK <file>' or 'ERROR <file>: <reason>' per file and\n"
	    "exits 0 only if every file is a valid rule.\n");
}

/* With a config (--config or $IOTRULES_CONFIG), rules are checked
 * against it as evaluate would load them: its MQTT version and its
 * destinations. */
static int
check(const char *cfg, int n, char **files)
{
	int bad = 0;
	config c;
	dest_list dests = DEST_LIST_ZERO;
	rules_context ctx = {.mqtt_version = 5};
	char cerr[600];
	if (cfg) {
		if (config_load(cfg, &c, cerr, sizeof(cerr)) < 0 || dest_load(cfg, &dests, cerr, sizeof(cerr)) < 0) {
			fprintf(stderr, "iotrules: %s\n", cerr);
			return 2;
		}
		ctx.mqtt_version = c.mqtt_version;
		ctx.dests = &dests;
		config_free(&c);
	}
	rules_set_context(&ctx);
	for (int i = 0; i < n; i++) {
		char err[600];
		rule *r = rule_load_file(files[i], err, sizeof(err));
		if (r == NULL) {
			printf("ERROR %s: %s\n", files[i], err);
			bad++;
		} else {
			printf("OK %s\n", files[i]);
			rule_free(r);
		}
	}
	dest_free(&dests);
	return bad ? 1 : 0;
}

int
main(int argc, char **argv)
{
	const char *cfg = getenv("IOTRULES_CONFIG");
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfg = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else
			break;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "check") == 0) {
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		return check(cfg, argc - i - 1, argv + i + 1);
	}
	if (cfg == NULL) {
		fprintf(stderr, "iotrules: --config FILE (or $IOTRULES_CONFIG) is needed for '%s'\n", argv[i]);
		return 2;
	}
	if (strcmp(argv[i], "destination") == 0) {
		if (i + 2 >= argc || strcmp(argv[i + 1], "confirm") != 0) {
			usage(stderr);
			return 2;
		}
		char derr[1024];
		int rc = dest_confirm(cfg, argv[i + 2], stdout, derr, sizeof(derr));
		if (rc != 0)
			fprintf(stderr, "iotrules: destination confirm %s: %s\n", argv[i + 2], derr);
		return rc == 0 ? 0 : 1;
	}
	config c;
	char err[600];
	if (config_load(cfg, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "iotrules: %s\n", err);
		return 2;
	}
	char line[256] = "";
	size_t o = 0;
	for (int k = i; k < argc && o < sizeof(line) - 2; k++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", k > i ? " " : "", argv[k]);
	struct sockaddr_un sa = {0};
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", c.run_dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "iotrules: cannot reach the supervisor at %s: %s\n", sa.sun_path, strerror(errno));
		config_free(&c);
		return 1;
	}
	config_free(&c);
	if (write(fd, line, strlen(line)) < 0) {
		fprintf(stderr, "iotrules: %s\n", strerror(errno));
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
