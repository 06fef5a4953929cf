/* hop: one stage-to-stage link over NNG (DESIGN.md "Hops").
 *
 * A hop is a directory.  The upstream side (hop_sender) listens on
 * <dir>/<name>.ipc with an NNG req socket; the downstream side
 * (hop_receiver) dials every *.ipc in the directory with a rep socket and
 * keeps rescanning it, so either side scales by starting processes.  NNG
 * load-balances requests over the connected receivers and resends a
 * request whose receiver went away.
 *
 * A request is one batch (envelope.h).  The reply is one status byte:
 * HOP_OK once the receiver has taken responsibility for the whole batch,
 * HOP_RETRY if it could not (the sender resends after a pause).  A sender
 * keeps up to `window` requests in flight; hop_send blocks while the
 * window is full, which is how back-pressure travels upstream. */
#ifndef IOTRULES_HOP_H
#define IOTRULES_HOP_H

#include <stddef.h>

enum { HOP_OK = 0, HOP_RETRY = 1 };

typedef struct hop_sender hop_sender;
typedef struct hop_receiver hop_receiver;

/* Called once per hop_send, from an NNG thread, when the batch was
 * accepted downstream (status HOP_OK) or the sender was closed before
 * that (status -1). */
typedef void (*hop_done_fn)(void *arg, int status);

/* Creates dir if needed and listens on dir/name.ipc.  NULL on error,
 * with a reason in err.  A socket file left by a dead process is
 * replaced; one a live process listens on is not touched (error "Address
 * in use"): a process never removes a socket it does not own. */
hop_sender *hop_sender_open(const char *dir, const char *name, int window, char *err, size_t errcap);

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

/* Closes the socket (unaccepted requests are abandoned: their done is
 * called with -1) and frees h. */
void hop_sender_close(hop_sender *h);

/* The handler gets one request's bytes (valid during the call) and
 * returns HOP_OK after taking responsibility, or HOP_RETRY. */
typedef int (*hop_handler)(void *arg, const void *data, size_t len);

/* Dials every socket in dir (created if needed) with `workers` requests
 * handled concurrently, each on its own thread.  NULL on error. */
hop_receiver *hop_receiver_open(const char *dir, int workers, hop_handler fn, void *arg, char *err, size_t errcap);

/* Asks the receiver to stop taking requests and returns at once (the
 * handlers running finish on their own; hop_receiver_close joins them). */
void hop_receiver_stop(hop_receiver *h);

/* Stops taking requests, lets handlers that are running finish and
 * reply, then closes.  Requests not yet handled go back to their sender
 * (NNG resends them to another receiver). */
void hop_receiver_close(hop_receiver *h);

#endif
