/* metrics: the supervisor's Prometheus endpoint (config metrics_listen,
 * "HOST:PORT", default 127.0.0.1:9641).
 *
 * GET (or HEAD) /metrics answers the text exposition format 0.0.4 with
 * the counters of supervisor/stats.h (names in metrics_render); any
 * other path is 404, any other method 405.  One request per connection
 * (Connection: close).
 *
 * Why a plain socket and not nng_http_server: the supervisor forks its
 * children and must never have used NNG before a fork (DESIGN.md), and
 * NNG's HTTP server runs threads.  So the listening socket and its
 * connections are non-blocking and polled by the supervisor's one
 * thread, with its control socket (metrics_pollfds, metrics_service).
 * Only the request line is read (up to 8 KiB of head); a client gets
 * 1 s to send its request and 5 s more to read the answer, so a silent
 * client never holds up supervision.  At most 8 connections are served
 * at once; further ones wait in the listen backlog.  A scrape waits
 * while the supervisor is busy with a blocking command (a rolling
 * restart).
 *
 * Port 0 binds any free port; the bound address ("HOST:PORT") is written
 * to <run_dir>/metrics.addr (removed at stop).  A bind that fails (port
 * taken, address not local) does not stop the pipeline: an error is
 * logged (again once a minute while it lasts) and the bind is retried
 * every 10 s. */
#ifndef IOTRULES_SUPERVISOR_METRICS_H
#define IOTRULES_SUPERVISOR_METRICS_H

#include <poll.h>

#include "common/buf.h"
#include "supervisor/stats.h"

/* Renders v in the Prometheus text format (appended to out):
 *   iotrules_rule_{matched,fired,no_result,sql_errors}_total{rule}
 *   iotrules_action_{delivered,failed,retried}_total{action}
 *   iotrules_action_delivery_seconds{action} (histogram)
 *   iotrules_stage_{in,out,failed,restarts}_total{stage}
 *   iotrules_stage_{instances,pending}{stage}
 *   iotrules_stage_spool_{messages,bytes,oldest_seconds}{stage}
 * each family with # HELP and # TYPE, label values escaped (\\, \", \n;
 * bytes that are not UTF-8 become U+FFFD).  Pure: no I/O. */
void metrics_render(const stats_view *v, buf *out);

/* Appends s as a label value (without the quotes) to out. */
void metrics_label_value(buf *out, const char *s);

/* Called for each scrape: renders the current figures into out. */
typedef void (*metrics_fill_fn)(buf *out, void *arg);

/* Starts the endpoint on listen ("HOST:PORT"; "[v6]:PORT"; NULL: no
 * endpoint, returns 0).  run_dir and listen are borrowed for the life of
 * the endpoint.  -1 when listen is not HOST:PORT (logged; no endpoint);
 * a bind failure is 0 (retried, see above). */
int metrics_start(const char *listen, const char *run_dir, metrics_fill_fn fill, void *arg);

/* Fills up to cap pollfds for the endpoint's sockets; returns how many. */
int metrics_pollfds(struct pollfd *p, int cap);

/* After poll: serves the sockets of p[0..n) (as filled by
 * metrics_pollfds), closes connections past their time and retries a
 * failed bind when due.  Call it every loop round, even when poll
 * returned nothing. */
void metrics_service(const struct pollfd *p, int n);

/* Closes every socket and removes metrics.addr. */
void metrics_stop(void);

#endif
