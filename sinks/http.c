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
 * The runtime's --retry-s is read too (and left to the runtime): 0 means
 * AWS's rules alone (3 quick tries within its 3 s request timeout), more
 * rides out outages for that long (httpout.h). */
#include "sinks/lib/httpout.h"

int
main(int argc, char **argv)
{
	sink_ops ops = {
		.action = "http",
		.usage = "  --config FILE    the pipeline config: its \"destinations\" say which URLs may be\n"
			 "                   used (re-read on SIGHUP and when it changes)\n",
	};
	httpout_sink_ops(&ops, 1, 0, NULL);
	return sink_main(argc, argv, &ops);
}
