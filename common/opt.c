#include "common/opt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"

static const char *opt_prog = "iotrules";
/* The rewritten argv: reachable until exit, so not a leak. */
static char **opt_argv;

void
opt_init(const char *prog, int *argc, char ***argv)
{
	opt_prog = prog;
	int n = *argc;
	char **in = *argv;
	opt_argv = calloc((size_t)n * 2 + 1, sizeof(char *));
	if (opt_argv == NULL)
		abort();
	int o = 0, rest = 0;
	for (int i = 0; i < n; i++) {
		char *a = in[i];
		if (i == 0 || rest) {
			opt_argv[o++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			rest = 1;
			opt_argv[o++] = a;
			continue;
		}
		if (strcmp(a, "--version") == 0) {
			printf("%s %s\n", prog, IOTRULES_VERSION);
			exit(0);
		}
		char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
		if (eq == NULL) {
			opt_argv[o++] = a;
			continue;
		}
		char *name = strndup(a, (size_t)(eq - a));
		if (name == NULL)
			abort();
		opt_argv[o++] = name;
		opt_argv[o++] = eq + 1;
	}
	opt_argv[o] = NULL;
	*argc = o;
	*argv = opt_argv;
}

void
opt_usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line, whatever the message held. */
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	fprintf(stderr, "%s: %s (see %s --help)\n", opt_prog, msg, opt_prog);
	exit(2);
}

const char *
opt_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		opt_usage_error("option %s needs a value", argv[*i]);
	return argv[++*i];
}

long long
opt_int(const char *o, const char *v, long long min, long long max)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (end == v || *end != 0 || errno != 0 || x < min || x > max)
		opt_usage_error("bad value for %s: '%s' (an integer from %lld to %lld)", o, v, min, max);
	return x;
}

int
opt_mqtt_version(const char *o, const char *v)
{
	if (strcmp(v, "3") != 0 && strcmp(v, "5") != 0)
		opt_usage_error("bad value for %s: '%s' (3 for MQTT 3.1.1, or 5)", o, v);
	return v[0] - '0';
}
