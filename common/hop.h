/* hop: one stage-to-stage link (DESIGN.md "Hops"), over one of two
 * transports behind this one interface.
 *
 * A hop has a name: "messages" (ingest -> evaluate), "jobs/<action>"
 * (evaluate -> that action's sink), "failures" (sinks -> error handler).
 * The transport is chosen by the environment, which the supervisor sets
 * from its config ("transport") and a user starting stages by hand sets
 * himself:
 *
 *   IOTRULES_AMQP unset or empty: NNG ipc sockets under <run_dir>/<hop>/
 *     (hopnng.h), the embedded default: every stage on this machine.
 *   IOTRULES_AMQP="amqp://user:pass@host:port[/vhost] ..." (several URLs,
 *     separated by spaces or commas: the nodes of one RabbitMQ cluster):
 *     the hop is the quorum queue <prefix>.<hop> (prefix:
 *     IOTRULES_AMQP_PREFIX, default "iotrules"), shared by every
 *     instance of the two stages on any machine (hopamqp.h).
 *
 * A request is one batch (envelope.h).  The receiver's handler answers
 * HOP_OK once it has taken responsibility for the whole batch, HOP_RETRY
 * if it could not (the sender, or the queue, gives it again after a
 * pause).  A sender keeps up to `window` batches in flight (not yet
 * accepted); hop_send blocks while the window is full, which is how
 * back-pressure travels upstream.  Either transport may deliver a batch
 * twice (a resend after a receiver or a connection died); none loses one
 * that was accepted. */
#ifndef IOTRULES_HOP_H
#define IOTRULES_HOP_H

#include <stddef.h>

enum { HOP_OK = 0, HOP_RETRY = 1 };

typedef struct hop_sender hop_sender;
typedef struct hop_receiver hop_receiver;

/* Called once per hop_send, from a transport thread, when the batch was
 * accepted downstream (status HOP_OK) or the sender was closed before
 * that (status -1). */
typedef void (*hop_done_fn)(void *arg, int status);

/* "amqp" or "nng": the transport the environment selects. */
const char *hop_transport(void);

/* The sending side of hop (e.g. "messages") for instance `name`.  NNG:
 * listens on <run_dir>/<hop>/<name>.ipc (the directory is created).
 * AMQP: connects to the first node that answers and declares the queue.
 * NULL on error, with a reason in err. */
hop_sender *hop_sender_open(const char *run_dir, const char *hop, const char *name, int window, char *err,
    size_t errcap);

/* Sends a copy of data (len bytes).  Blocks while the window is full.
 * 0, or -1 if the sender is closed.  done may be NULL. */
int hop_send(hop_sender *h, const void *data, size_t len, hop_done_fn done, void *arg);

/* Sends and waits until the batch is accepted: HOP_OK, or -1 if the
 * sender was closed first. */
int hop_send_wait(hop_sender *h, const void *data, size_t len);

/* Requests in flight (sent, not yet accepted). */
int hop_inflight(hop_sender *h);

/* Waits up to timeout_ms for every in-flight request to be accepted.
 * 0 when drained, -1 on timeout. */
int hop_drain(hop_sender *h, int timeout_ms);

/* Stops the sender without freeing it, from any thread: hop_send and
 * hop_send_wait return -1 from now on (also those blocked in them), and
 * requests in flight are abandoned (their done gets -1, within ~100 ms).
 * What a stage stops with must not hang on a downstream that is gone:
 * the batches abandoned stay unacknowledged upstream and are resent. */
void hop_sender_shutdown(hop_sender *h);

/* Closes the connection (unaccepted requests are abandoned: their done
 * is called with -1) and frees h. */
void hop_sender_close(hop_sender *h);

/* The handler gets one request's bytes (valid during the call) and
 * returns HOP_OK after taking responsibility, or HOP_RETRY. */
typedef int (*hop_handler)(void *arg, const void *data, size_t len);

/* The receiving side of hop, with `workers` requests handled
 * concurrently, each on its own thread.  NNG: dials every socket in
 * <run_dir>/<hop>/ (created if needed).  AMQP: one consumer per worker.
 * NULL on error. */
hop_receiver *hop_receiver_open(const char *run_dir, const char *hop, int workers, hop_handler fn, void *arg,
    char *err, size_t errcap);

/* Asks the receiver to stop taking requests and returns at once (the
 * handlers running finish on their own; hop_receiver_close joins them). */
void hop_receiver_stop(hop_receiver *h);

/* Stops taking requests, lets handlers that are running finish and
 * reply, then closes.  Requests not yet handled go back to their sender
 * or queue and are given to another receiver. */
void hop_receiver_close(hop_receiver *h);

#endif
