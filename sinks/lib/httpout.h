/* httpout: the http action's delivery (ACTIONS.md §2.8, ERRORS.md §2-3),
 * behind sinks/http.c.
 *
 * Requests: POST url, body the result text (or, with enableBatching, a
 * JSON array of results), Content-Type application/json for a JSON
 * result and application/octet-stream otherwise, replaced by a header
 * "content-type" of the action's own (any case; not for batches, whose
 * body is always JSON); the action's headers (resolved by evaluate) as
 * given; with auth.sigv4 the request goes through the AWS client
 * (common/aws.h), signed for signingRegion/serviceName.  TLS is verified
 * against the covering destination's ca_file, else AWS_CA_BUNDLE, else
 * the system CAs; plain http only when that destination has allow_http.
 * Each try has AWS's request timeout, 3,000 ms.
 *
 * Destinations (common/dest.h): a URL is delivered to only while an
 * ENABLED destination of the config covers it; otherwise the job fails
 * at once (errorAction: "no ENABLED topic rule destination covers URL").
 * The config is re-read on SIGHUP and whenever its modification time
 * changes (checked once a second), so `iotrules destination confirm`
 * (which sets ENABLED in the file) takes effect within a second.
 *
 * Verdicts (httpout_verdict): 2xx OK; 429 THROTTLED; 5xx RETRY; any other
 * status FATAL.  AWS's exceptions are final (FATAL) whatever the budget:
 * an answer whose body is larger than 16,384 bytes, an answer with
 * "Connection: close", and a connection the server closed without an
 * answer (they say the server had the request: a retry may repeat it).
 * Connection failures (refused, DNS, connect timeout) are RETRY.  With
 * the runtime's --retry-s 0 the runtime makes AWS's --tries (3) quick
 * tries, and a timed-out try or a total time over 3,000 ms since the
 * first try is FATAL too; with a budget (--retry-s > 0), 429, 5xx,
 * timeouts and connection failures are retried until it is spent.
 *
 * Batching (enableBatching, batchConfig): the runtime hands jobs over one
 * by one; here they gather per (rule, url, topic unless batchAcrossTopics,
 * batchConfig, auth), and a batch leaves as soon as it holds maxBatchSize
 * messages, the next message would make the body exceed maxBatchSizeBytes,
 * or it has been open maxBatchOpenMs.  Headers come from the last message
 * added.  A retried job joins a new batch.  A failed batch fails each of
 * its jobs with the same j->batch id, so the error handler sends one
 * document for the batch (ERRORS.md 2.2).
 *
 * Threads: httpout_prepare/send/tick run on the runtime's thread; one
 * thread of this module's drives libcurl and the batches; signed requests
 * complete on the AWS client's thread. */
#ifndef IOTRULES_HTTPOUT_H
#define IOTRULES_HTTPOUT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dest.h"
#include "sinks/lib/sink.h"

#define HTTPOUT_TIMEOUT_MS 3000      /* AWS's request timeout */
#define HTTPOUT_RETRY_BODY_MAX 16384 /* a larger answer stops retries */

typedef struct httpout httpout;

/* Opens the delivery: reads config_path's destinations (NULL: none, every
 * URL uncovered) and starts the thread.  retry_s is the runtime's
 * --retry-s (0: AWS's rules alone).  NULL with err set on a bad config. */
httpout *httpout_open(const char *config_path, int retry_s, char *err, size_t cap);
/* From now on every https URL may be used, no destination needed (the
 * salesforce action, whose URL is Salesforce's own); TLS as for a URL no
 * destination names (AWS_CA_BUNDLE, else the system CAs), no plain http.
 * Call before the first job. */
void httpout_any_url(httpout *h);
/* Completes every job still held or in flight (RETRY) and frees h. */
void httpout_close(httpout *h);

/* The sink_ops of a sink that is httpout and little else (sinks/http.c,
 * sinks/salesforce.c), for the process's one httpout: option (--config
 * FILE when with_config; the runtime's --retry-s is read, and left to the
 * runtime), start (httpout_open, then httpout_any_url when any_url),
 * prepare (pre first, when not NULL: it may rewrite j->params, or fail
 * the job like a prepare hook), send, tick and stop.  Sets batch_max 1
 * and linger_ms 0: batches are made here. */
void httpout_sink_ops(sink_ops *ops, int with_config, int any_url, int (*pre)(sink_job *j));

/* sink_ops hooks (see sinks/lib/sink.h). */
int httpout_prepare(httpout *h, sink_job *j);
void httpout_send(httpout *h, sink_job **jobs, int n);
void httpout_tick(httpout *h);

/* How a try ended, for httpout_verdict. */
typedef enum httpout_end {
	HTTPOUT_ANSWERED = 0,  /* a status came back */
	HTTPOUT_NO_CONNECT,    /* refused, DNS, connect timeout: the server never had it */
	HTTPOUT_CLOSED,        /* the server closed the connection without an answer */
	HTTPOUT_TIMEOUT,       /* the try took longer than the request timeout */
	HTTPOUT_TLS,           /* certificate or handshake failure */
	HTTPOUT_OTHER,
} httpout_end;

/* The verdict on one try (see above).  elapsed_ms: since the first try of
 * the job began.  why gets a short reason when the verdict is not OK. */
sink_status httpout_verdict(httpout_end end, long status, size_t body_len, int conn_close, int retry_s,
    int64_t elapsed_ms, char *why, size_t cap);

/* The load-time check for the rule loader: an http action's params as
 * written in the rule.  0 ok; 1 ok with a warning in msg (its url, or its
 * confirmationUrl, is literal and no ENABLED destination of dests covers
 * it: its deliveries fail until one does); -1 refused with msg (unknown
 * key, bad url, confirmationUrl not a prefix of url, a templated url
 * without confirmationUrl, headers, auth.sigv4 or batchConfig out of
 * AWS's shape and ranges). */
int httpout_check_action(const cJSON *params, const dest_list *dests, char *msg, size_t cap);

#endif
