/* hopnng: the hop transport on one machine, over NNG ipc sockets (the
 * default; hop.h is the interface and says what every function means).
 *
 * The upstream side (hopnng_sender) listens on <dir>/<name>.ipc with an
 * NNG req socket; the downstream side (hopnng_receiver) dials every *.ipc
 * in the directory with a rep socket and keeps rescanning it (every
 * 200 ms), so either side scales by starting processes.  NNG
 * load-balances requests over the connected receivers and resends a
 * request whose receiver went away.  The reply is the one status byte
 * the handler returned.  Only hop.c calls this module. */
#ifndef IOTRULES_HOPNNG_H
#define IOTRULES_HOPNNG_H

#include "common/hop.h"

typedef struct hopnng_sender hopnng_sender;
typedef struct hopnng_receiver hopnng_receiver;

/* dir is created if needed.  A socket file left by a dead process is
 * replaced; one a live process listens on is not touched (error "Address
 * in use"): a process never removes a socket it does not own. */
hopnng_sender *hopnng_sender_open(const char *dir, const char *name, int window, char *err, size_t errcap);
int hopnng_send(hopnng_sender *h, const void *data, size_t len, hop_done_fn done, void *arg);
int hopnng_inflight(hopnng_sender *h);
void hopnng_sender_shutdown(hopnng_sender *h);
void hopnng_sender_close(hopnng_sender *h);

hopnng_receiver *hopnng_receiver_open(const char *dir, int workers, hop_handler fn, void *arg, char *err,
    size_t errcap);
void hopnng_receiver_stop(hopnng_receiver *h);
void hopnng_receiver_close(hopnng_receiver *h);

#endif
