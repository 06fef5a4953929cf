/* Unit tests of the hop: a batch sent is handled once and acknowledged; a
 * receiver that answers RETRY gets it again; two receivers share the
 * load.  The NNG transport by default; with IOTRULES_AMQP set (as
 * tests/integration/amqp.t does) the same over RabbitMQ, where a batch is
 * accepted once the queue has it, before a receiver handled it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hop.h"
#include "tests/unit/tap.h"

static atomic_int handled, refused_once, acked;

static int
handler(void *arg, const void *data, size_t len)
{
	(void)arg;
	if (len == 5 && memcmp(data, "retry", 5) == 0 && atomic_fetch_add(&refused_once, 1) == 0)
		return HOP_RETRY;
	atomic_fetch_add(&handled, 1);
	return HOP_OK;
}

/* Waits up to 10 s for n batches handled. */
static int
handled_reaches(int n)
{
	for (int i = 0; i < 1000 && atomic_load(&handled) < n; i++)
		usleep(10000);
	return atomic_load(&handled) == n;
}

static void
done(void *arg, int status)
{
	(void)arg;
	if (status == HOP_OK)
		atomic_fetch_add(&acked, 1);
}

int
main(void)
{
	char dir[] = "/tmp/iotrules-hop-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char err[256];
	hop_sender *s = hop_sender_open(dir, "h", "up-1", 4, err, sizeof(err));
	ok(s != NULL, "sender listens");
	hop_receiver *r1 = hop_receiver_open(dir, "h", 2, handler, NULL, err, sizeof(err));
	hop_receiver *r2 = hop_receiver_open(dir, "h", 2, handler, NULL, err, sizeof(err));
	ok(r1 && r2, "two receivers dial");
	for (int i = 0; i < 200; i++)
		hop_send(s, "hello", 5, done, NULL);
	hop_send(s, "retry", 5, done, NULL);
	ok(hop_drain(s, 5000) == 0, "every request accepted");
	ok(handled_reaches(201) && atomic_load(&acked) == 201,
	    "201 sent, 201 handled, 201 acknowledged (%d, %d)", atomic_load(&handled), atomic_load(&acked));
	ok(atomic_load(&refused_once) >= 1, "a RETRY answer makes the sender resend");
	/* A receiver that goes away: the other takes the traffic. */
	hop_receiver_close(r1);
	for (int i = 0; i < 50; i++)
		hop_send(s, "hello", 5, done, NULL);
	ok(hop_drain(s, 5000) == 0 && atomic_load(&acked) == 251 && handled_reaches(251),
	    "after one receiver closed the other takes over");
	hop_receiver_close(r2);
	/* No receiver: requests wait in the window instead of failing. */
	hop_send(s, "hello", 5, done, NULL);
	usleep(200000);
	if (strcmp(hop_transport(), "nng") == 0)
		ok(hop_inflight(s) == 1, "with no receiver the request waits");
	else
		ok(hop_drain(s, 10000) == 0, "with no receiver the queue takes the request");
	hop_receiver *r3 = hop_receiver_open(dir, "h", 1, handler, NULL, err, sizeof(err));
	ok(hop_drain(s, 5000) == 0 && atomic_load(&acked) == 252 && handled_reaches(252), "a new receiver picks it up");
	hop_receiver_close(r3);
	hop_sender_close(s);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return done_testing();
}
