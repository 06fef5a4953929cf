/* hopamqp: the hop transport across machines, over RabbitMQ quorum queues
 * (hop.h is the interface and says what every function means; only hop.c
 * calls this module).
 *
 * urls: one or more "amqp://user:pass@host:port[/vhost]" separated by
 * spaces or commas, the nodes of one cluster (rabbitmq-c's amqp_parse_url
 * reads each; user and password default to guest, the port to 5672).
 * "amqps://" (port 5671 by default) is TLS 1.2 or later with the server's
 * certificate and host name checked against IOTRULES_AMQP_CAFILE (else
 * the system's CAs) and, when IOTRULES_AMQP_CERTFILE and _KEYFILE are
 * set, a client certificate.
 * Every client connects to one node (the first that answers, then the
 * next one in the list after a failure, with a backoff from 100 ms
 * doubling to 5 s plus jitter: never a tight loop) and declares the
 * queue: durable, x-queue-type quorum (Raft, replicated on the cluster's
 * nodes: a publisher confirm means a majority has it on disk).
 *
 * Sender: one I/O thread owns the connection.  Each batch is one AMQP
 * message (persistent, message_id a fresh UUID kept across resends) sent
 * with publisher confirms; the batch is accepted (done gets HOP_OK) when
 * its confirm arrives.  A nack (the queue had no leader, e.g. during an
 * election) sends it again after a pause (100 ms doubling to 2 s); a lost
 * connection sends every unconfirmed batch again on the next node, so a
 * batch may be enqueued twice.
 *
 * Receiver: each worker thread has its own connection and consumer
 * (prefetch 16) and acknowledges a delivery only after the handler
 * returned HOP_OK; HOP_RETRY rejects it back to the queue after 50 ms.  A
 * delivery whose message_id this process accepted recently (the last
 * HOPAMQP_SEEN ids) is acknowledged without calling the handler: a batch
 * resent after a failover is handled once.  Deliveries not acknowledged
 * when a consumer's connection dies are given to another consumer by the
 * broker. */
#ifndef IOTRULES_HOPAMQP_H
#define IOTRULES_HOPAMQP_H

#include "common/hop.h"

enum { HOPAMQP_SEEN = 65536 };

typedef struct hopamqp_sender hopamqp_sender;
typedef struct hopamqp_receiver hopamqp_receiver;

/* Does not wait for a node: an unreachable cluster is retried by the I/O
 * thread (hop_send blocks once the window is full).  NULL only for a URL
 * that does not parse, a certificate without its key, or no memory, with
 * err set. */
hopamqp_sender *hopamqp_sender_open(const char *urls, const char *queue, int window, char *err, size_t errcap);
int hopamqp_send(hopamqp_sender *h, const void *data, size_t len, hop_done_fn done, void *arg);
int hopamqp_inflight(hopamqp_sender *h);
void hopamqp_sender_shutdown(hopamqp_sender *h);
void hopamqp_sender_close(hopamqp_sender *h);

hopamqp_receiver *hopamqp_receiver_open(const char *urls, const char *queue, int workers, hop_handler fn,
    void *arg, char *err, size_t errcap);
void hopamqp_receiver_stop(hopamqp_receiver *h);
void hopamqp_receiver_close(hopamqp_receiver *h);

#endif
