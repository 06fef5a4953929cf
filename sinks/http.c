/* iotrules-sink-http: the http action (ACTIONS.md §2.8): the result POSTed
 * to the action's url with its headers, optionally SigV4-signed
 * (auth.sigv4) and batched (enableBatching, batchConfig), to URLs an
 * ENABLED topic rule destination of the pipeline config covers.  The
 * requests, verdicts, batches and destinations are sinks/lib/httpout's;
 * this file wires them to the sink runtime.
 *
 *   --config FILE   the pipeline config whose "destinations" list the
 *                   URLs that may be used (re-read on SIGHUP and when
 *                   the file changes); without it every URL is uncovered
 *                   and every delivery fails to the errorAction.
 *
 * The runtime's --retry-s is read here too (and left to the runtime): 0
 * means AWS's rules alone (3 quick tries within its 3 s request timeout),
 * more rides out outages for that long (httpout.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sinks/lib/httpout.h"

static struct {
	const char *config;
	int retry_s;
	httpout *out;
} H = {NULL, 3600, NULL};   /* 3600: the runtime's default --retry-s */

static int
option(void *state, int argc, char **argv, int *i)
{
	(void)state;
	if (strcmp(argv[*i], "--retry-s") == 0 && *i + 1 < argc) {
		H.retry_s = atoi(argv[*i + 1]);   /* the runtime checks the value */
		return 0;
	}
	if (strcmp(argv[*i], "--config") != 0)
		return 0;
	if (*i + 1 >= argc)
		return -1;
	H.config = argv[++*i];
	return 1;
}

static int
start(void *state)
{
	(void)state;
	char err[800];
	H.out = httpout_open(H.config, H.retry_s, err, sizeof(err));
	if (H.out == NULL) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	return httpout_prepare(H.out, j);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	httpout_send(H.out, jobs, n);
}

static void
tick(void *state)
{
	(void)state;
	httpout_tick(H.out);
}

static void
stop(void *state)
{
	(void)state;
	if (H.out)
		httpout_close(H.out);
	H.out = NULL;
}

int
main(int argc, char **argv)
{
	sink_ops ops = {
		.action = "http",
		.usage = "  --config FILE    the pipeline config: its \"destinations\" say which URLs may be\n"
			 "                   used (re-read on SIGHUP and when it changes)\n",
		.option = option,
		.start = start,
		.prepare = prepare,
		.send = send_jobs,
		.tick = tick,
		.stop = stop,
		/* Every job goes alone to httpout, which batches per action
		 * as its batchConfig says. */
		.batch_max = 1,
		.linger_ms = 0,
	};
	return sink_main(argc, argv, &ops);
}
